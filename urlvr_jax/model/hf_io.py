"""Import from and export to Hugging Face formats (safetensors directories and GGUF files).

Loading is abstract-first: the config gives every tensor's shape, the mesh gives its sharding, every tensor
of the checkpoint is checked against the name table and its shape before any data is read, and each
device then reads only its own slice of the memory-mapped file (``jax.make_array_from_callback``).

The name table is shared by the three families (and Mistral, which loads as Llama), whose Hugging Face names
coincide; entries for q/k/v biases (Qwen2) and q/k norms (Qwen3) apply when the config has them. What a family
cannot compute is refused from config.json before any tensor is read (``ModelConfig.from_hf``). ``T`` entries are stored by
transformers as [out, in] and by us as [in, out] (with heads split out).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from typing import Callable

import jax
import numpy as np

from urlvr_jax.model import safetensors_io
from urlvr_jax.model.config import ModelConfig
from urlvr_jax.model.transformer import Params, abstract_params, param_shapes
from urlvr_jax.sharding import param_shardings
from urlvr_jax.utils.errors import UserError

_L = "model.layers.{i}."
# (our path, HF name, transform, HF shape from (V, D, H*Dh, Hkv*Dh, Dh, F))
NAME_TABLE = (
    ("embed", "model.embed_tokens.weight", "copy", lambda V, D, Q, K, Dh, F: (V, D)),
    ("final_norm", "model.norm.weight", "copy", lambda V, D, Q, K, Dh, F: (D,)),
    ("lm_head", "lm_head.weight", "T", lambda V, D, Q, K, Dh, F: (V, D)),
    ("layers/attn_norm", _L + "input_layernorm.weight", "copy", lambda V, D, Q, K, Dh, F: (D,)),
    ("layers/mlp_norm", _L + "post_attention_layernorm.weight", "copy", lambda V, D, Q, K, Dh, F: (D,)),
    ("layers/q", _L + "self_attn.q_proj.weight", "T", lambda V, D, Q, K, Dh, F: (Q, D)),
    ("layers/k", _L + "self_attn.k_proj.weight", "T", lambda V, D, Q, K, Dh, F: (K, D)),
    ("layers/v", _L + "self_attn.v_proj.weight", "T", lambda V, D, Q, K, Dh, F: (K, D)),
    ("layers/o", _L + "self_attn.o_proj.weight", "T", lambda V, D, Q, K, Dh, F: (D, Q)),
    ("layers/q_bias", _L + "self_attn.q_proj.bias", "copy", lambda V, D, Q, K, Dh, F: (Q,)),
    ("layers/k_bias", _L + "self_attn.k_proj.bias", "copy", lambda V, D, Q, K, Dh, F: (K,)),
    ("layers/v_bias", _L + "self_attn.v_proj.bias", "copy", lambda V, D, Q, K, Dh, F: (K,)),
    ("layers/q_norm", _L + "self_attn.q_norm.weight", "copy", lambda V, D, Q, K, Dh, F: (Dh,)),
    ("layers/k_norm", _L + "self_attn.k_norm.weight", "copy", lambda V, D, Q, K, Dh, F: (Dh,)),
    ("layers/gate", _L + "mlp.gate_proj.weight", "T", lambda V, D, Q, K, Dh, F: (F, D)),
    ("layers/up", _L + "mlp.up_proj.weight", "T", lambda V, D, Q, K, Dh, F: (F, D)),
    ("layers/down", _L + "mlp.down_proj.weight", "T", lambda V, D, Q, K, Dh, F: (D, F)),
)
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


def _flat_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    shapes = param_shapes(cfg)
    flat = {k: v for k, v in shapes.items() if k != "layers"}
    flat.update({f"layers/{k}": v for k, v in shapes["layers"].items()})
    return flat


def expected_tensors(cfg: ModelConfig) -> dict[str, tuple[str, int | None, str, tuple[int, ...]]]:
    """HF tensor name -> (our path, layer or None, transform, HF shape) for this config."""
    dims = (cfg.vocab_size, cfg.hidden_size, cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim,
            cfg.head_dim, cfg.intermediate_size)
    ours = _flat_shapes(cfg)
    expected = {}
    for path, hf, kind, shape_fn in NAME_TABLE:
        if path not in ours:
            continue
        layers = range(cfg.num_layers) if path.startswith("layers/") else [None]
        for i in layers:
            expected[hf.format(i=i)] = (path, i, kind, shape_fn(*dims))
    return expected


def _to_ours(array: np.ndarray, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    return (array.T if kind == "T" else array).reshape(shape)


def _to_hf(array: np.ndarray, kind: str, hf_shape: tuple[int, ...]) -> np.ndarray:
    if kind == "T":
        return array.reshape(hf_shape[::-1]).T
    return array.reshape(hf_shape)


def params_from_tensors(cfg: ModelConfig, read: Callable[[str], np.ndarray], shape_of: Callable[[str], tuple],
                        names: set[str], where: Callable[[str], str], mesh=None) -> Params:
    """Checks names and shapes against the config, then places each tensor with its sharding.

    ``read(name)`` returns the HF tensor (lazily, e.g. memory-mapped); ``where(name)`` names its file.
    """
    expected = expected_tensors(cfg)
    present = {n for n in names if not n.endswith(_IGNORED_SUFFIXES)}
    if cfg.tie_embeddings:
        present.discard("lm_head.weight")
    missing, extra = sorted(set(expected) - present), sorted(present - set(expected))
    if missing:
        raise ValueError(f"{where(missing[0])}: {len(missing)} tensor(s) required by the config are missing from the "
                         f"checkpoint: {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    if extra:
        raise ValueError(f"{where(extra[0])}: {len(extra)} unexpected tensor(s) not in the {cfg.family} name table: "
                         f"{extra[:8]}{' ...' if len(extra) > 8 else ''} (does config.json match the weights?)")
    for name, (_, _, _, hf_shape) in expected.items():
        if tuple(shape_of(name)) != tuple(hf_shape):
            raise ValueError(f"{where(name)}: tensor {name} has shape {tuple(shape_of(name))}, "
                             f"but the config implies {tuple(hf_shape)}")

    by_path: dict[str, dict] = {}
    for name, (path, layer, kind, _) in expected.items():
        by_path.setdefault(path, {})[layer] = (name, kind)
    abstract = abstract_params(cfg)
    shardings = param_shardings(abstract, mesh) if mesh is not None else jax.tree.map(
        lambda _: jax.sharding.SingleDeviceSharding(jax.devices()[0]), abstract)
    dtype = cfg.weight_dtype

    def build(path: str, leaf: jax.ShapeDtypeStruct, sharding) -> jax.Array:
        sources = by_path[path]
        stacked = path.startswith("layers/")
        unit = leaf.shape[1:] if stacked else leaf.shape

        def convert(layer):
            name, kind = sources[layer]
            return _to_ours(np.asarray(read(name)), kind, unit).astype(dtype)

        def callback(index):
            if not stacked:
                return convert(None)[index]
            layers = range(*index[0].indices(leaf.shape[0]))
            return np.stack([convert(i) for i in layers])[(slice(None),) + tuple(index[1:])]

        return jax.make_array_from_callback(leaf.shape, sharding, callback)

    flat_abstract = {k: v for k, v in abstract.items() if k != "layers"}
    params = {k: build(k, v, shardings[k]) for k, v in flat_abstract.items()}
    params["layers"] = {k: build(f"layers/{k}", v, shardings["layers"][k]) for k, v in abstract["layers"].items()}
    return params


def read_hf_config(directory: str) -> dict:
    path = os.path.join(directory, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{directory}: no config.json (expected a Hugging Face model directory)")
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: invalid JSON ({e})") from e


def load_hf(path: str, *, mesh=None, gguf_file: str | None = None, **config_overrides) -> tuple[ModelConfig, Params]:
    """Loads a Hugging Face model: a directory with config.json + safetensors, or a GGUF file.

    ``path`` may be a directory (optionally with ``gguf_file`` naming a GGUF file inside it) or a path to a
    ``.gguf`` file. ``config_overrides`` replace ModelConfig fields (e.g. ``dtype="bfloat16"``).
    """
    if path.endswith(".gguf") and gguf_file is None:
        path, gguf_file = os.path.dirname(path) or ".", os.path.basename(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"model path {path!r} is not a directory or a .gguf file")
    if gguf_file is not None:
        return _load_gguf(path, gguf_file, mesh, config_overrides)
    cfg = ModelConfig.from_hf(read_hf_config(path), **config_overrides)
    located = safetensors_io.open_checkpoint(path)
    params = params_from_tensors(cfg, lambda n: located[n].tensor(n), lambda n: located[n].shape(n),
                                 set(located), lambda n: located[n].path if n in located else path, mesh)
    return cfg, params


def require_gguf_extra(path: str) -> None:
    """A :class:`UserError` naming the packages of the ``gguf`` extra that are missing (transformers dequantises
    GGUF weights with torch and gguf, which urlvr_jax itself does not need)."""
    missing = [name for name in ("torch", "gguf") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"{path}: reading a GGUF model needs {' and '.join(missing)}, which "
                        f"{'is' if len(missing) == 1 else 'are'} not installed: pip install 'urlvr_jax[gguf]' "
                        f"(the CPU torch of requirements.txt first)")


def _load_gguf(directory: str, gguf_file: str, mesh, overrides) -> tuple[ModelConfig, Params]:
    """GGUF through transformers' dequantisation (to float32), then the same name table."""
    full = os.path.join(directory, gguf_file)
    if not os.path.exists(full):
        raise FileNotFoundError(f"GGUF file {full} does not exist")
    require_gguf_extra(full)
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_file, dtype=torch.float32)
    cfg = ModelConfig.from_hf(model.config.to_dict(), **overrides)
    tensors = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    del model
    return cfg, params_from_tensors(cfg, tensors.__getitem__, lambda n: tensors[n].shape, set(tensors),
                                    lambda n: full, mesh)


def hf_tensors(params: Params, cfg: ModelConfig, dtype=None) -> dict[str, np.ndarray]:
    """Our params as a dict of Hugging Face tensors (numpy, host memory)."""
    flat = {k: v for k, v in params.items() if k != "layers"}
    flat.update({f"layers/{k}": v for k, v in params["layers"].items()})
    host = {k: np.asarray(jax.device_get(v)) for k, v in flat.items()}
    out = {}
    for name, (path, layer, kind, hf_shape) in expected_tensors(cfg).items():
        array = host[path] if layer is None else host[path][layer]
        out[name] = np.ascontiguousarray(_to_hf(array, kind, hf_shape)).astype(dtype or array.dtype)
    return out


def save_hf(params: Params, cfg: ModelConfig, directory: str, dtype=None, max_shard_bytes: int = 4 << 30) -> str:
    """Writes ``config.json`` and safetensors (sharded with an index above ``max_shard_bytes``)."""
    os.makedirs(directory, exist_ok=True)
    tensors = hf_tensors(params, cfg, dtype)
    hf_cfg = cfg.to_hf()
    if dtype is not None:
        hf_cfg["torch_dtype"] = np.dtype(dtype).name
    total = sum(t.nbytes for t in tensors.values())
    if total <= max_shard_bytes:
        safetensors_io.save_file(tensors, os.path.join(directory, "model.safetensors"))
    else:
        shards, current, size = [], {}, 0
        for name in sorted(tensors):
            if current and size + tensors[name].nbytes > max_shard_bytes:
                shards.append(current)
                current, size = {}, 0
            current[name] = tensors[name]
            size += tensors[name].nbytes
        shards.append(current)
        weight_map = {}
        for i, shard in enumerate(shards):
            fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            safetensors_io.save_file(shard, os.path.join(directory, fname))
            weight_map.update({name: fname for name in shard})
        with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(hf_cfg, f, indent=2)
    return directory


def num_params(cfg: ModelConfig) -> int:
    return sum(math.prod(s) for s in jax.tree.leaves(param_shapes(cfg), is_leaf=lambda x: isinstance(x, tuple)))
