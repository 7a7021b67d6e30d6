"""One configuration dataclass for the decoder-only families the paper trains.

* ``llama``: Llama-3 / SmolLM2 — RMSNorm, RoPE (optionally Llama-3 frequency scaling), GQA, SwiGLU.
* ``qwen2``: Qwen2 / Qwen2.5 — as llama, with biases on the q/k/v projections.
* ``qwen3``: Qwen3 — as llama, with per-head RMSNorm on queries and keys (no biases).

Mistral checkpoints without a sliding window are Llama-shaped and load as ``llama``. Import refuses what these
families cannot compute (:func:`check_supported`), naming the ``config.json`` field: sliding-window layers,
activations other than SiLU, and biases a family lacks (Llama/Mistral/Qwen3 ``attention_bias`` also adds an
``o_proj`` bias, Llama ``mlp_bias`` biases the MLP).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

FAMILIES = ("llama", "qwen2", "qwen3")

# Hugging Face ``model_type`` / architecture name -> family.
HF_MODEL_TYPES = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "mistral": "llama"}
HF_ARCHITECTURES = {
    "LlamaForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "MistralForCausalLM": "llama",
}
EXPORT_ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}
SILU_NAMES = ("silu", "swish")  # transformers' ACT2FN maps both to SiLU
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
ATTENTIONS = ("auto", "reference", "splash", "cudnn")  # see urlvr_jax/model/attention_kernels.py
KV_LAYOUTS = ("auto", "head_major", "sequence_major")  # see urlvr_jax/model/transformer.py KVCache


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Shapes and numerics of a decoder-only transformer. Hashable, so it can be a static jit argument."""

    family: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_theta: float = 10000.0
    # Llama-3 scaling as a tuple of (key, value) pairs so the config stays hashable.
    rope_scaling: tuple[tuple[str, Any], ...] | None = None
    rms_norm_eps: float = 1e-6
    tie_embeddings: bool = False
    attention_bias: bool = False
    qk_norm: bool = False
    max_position_embeddings: int = 4096
    dtype: str = "float32"
    param_dtype: str = "float32"
    # > 0: attention runs over query chunks of this many positions, so scores take O(chunk * keys) memory.
    attention_chunk: int = 0
    # the forwards without cache: auto | reference | splash | cudnn (urlvr_jax/model/attention_kernels.py)
    attention: str = "auto"
    # the KV cache's layout: auto (head_major on CPU, else sequence_major) | head_major | sequence_major
    kv_layout: str = "auto"
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int = 0

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"ModelConfig.family={self.family!r} is not one of {FAMILIES}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"ModelConfig.num_heads={self.num_heads} must be a multiple of num_kv_heads={self.num_kv_heads}")
        for name in ("dtype", "param_dtype"):
            if getattr(self, name) not in DTYPES:
                raise ValueError(f"ModelConfig.{name}={getattr(self, name)!r} is not one of {tuple(DTYPES)}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"ModelConfig.attention={self.attention!r} is not one of {ATTENTIONS}")
        if self.kv_layout not in KV_LAYOUTS:
            raise ValueError(f"ModelConfig.kv_layout={self.kv_layout!r} is not one of {KV_LAYOUTS}")

    @property
    def compute_dtype(self):
        return DTYPES[self.dtype]

    @property
    def weight_dtype(self):
        return DTYPES[self.param_dtype]

    @property
    def rope_scaling_dict(self) -> dict[str, Any] | None:
        return dict(self.rope_scaling) if self.rope_scaling else None

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_hf(cls, hf: dict[str, Any], **overrides) -> "ModelConfig":
        """Builds a config from a Hugging Face ``config.json`` dict."""
        family = _family_of(hf)
        check_supported(hf, family)
        num_heads = hf["num_attention_heads"]
        head_dim = hf.get("head_dim") or hf["hidden_size"] // num_heads
        scaling = hf.get("rope_scaling") or (hf.get("rope_parameters") or None)
        theta = hf.get("rope_theta")
        if isinstance(scaling, dict):
            theta = theta or scaling.get("rope_theta")
            kind = scaling.get("rope_type", scaling.get("type"))
            if kind in (None, "default"):
                scaling = None
            elif kind != "llama3":
                raise ValueError(f"config.json field rope_scaling.rope_type={kind!r} is not supported "
                                 "(supported: default, llama3)")
            else:
                keys = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
                scaling = tuple((k, float(scaling[k])) for k in keys)
        eos = hf.get("eos_token_id")
        eos = tuple(eos) if isinstance(eos, (list, tuple)) else (() if eos is None else (eos,))
        pad = hf.get("pad_token_id")
        kwargs = dict(
            family=family,
            vocab_size=hf["vocab_size"],
            hidden_size=hf["hidden_size"],
            intermediate_size=hf["intermediate_size"],
            num_layers=hf["num_hidden_layers"],
            num_heads=num_heads,
            num_kv_heads=hf.get("num_key_value_heads") or num_heads,
            head_dim=head_dim,
            rope_theta=float(theta or 10000.0),
            rope_scaling=scaling,
            rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
            attention_bias=family == "qwen2",  # Qwen2's q/k/v biases are unconditional in transformers
            qk_norm=family == "qwen3",
            max_position_embeddings=int(hf.get("max_position_embeddings", 4096)),
            bos_token_id=hf.get("bos_token_id"),
            eos_token_ids=eos,
            pad_token_id=int(pad if pad is not None else (eos[0] if eos else 0)),
        )
        kwargs.update(overrides)
        return cls(**kwargs)

    def to_hf(self) -> dict[str, Any]:
        """The Hugging Face ``config.json`` dict of this config (for export)."""
        if self.attention_bias != (self.family == "qwen2") or self.qk_norm != (self.family == "qwen3"):
            raise ValueError(f"ModelConfig(family={self.family!r}, attention_bias={self.attention_bias}, "
                             f"qk_norm={self.qk_norm}) has no Hugging Face equivalent: q/k/v biases are Qwen2's, "
                             "q/k norms Qwen3's")
        arch = EXPORT_ARCHITECTURES[self.family]
        hf = {
            "architectures": [arch],
            "model_type": self.family,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_embeddings,
            "max_position_embeddings": self.max_position_embeddings,
            "hidden_act": "silu",
            "torch_dtype": self.param_dtype,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": list(self.eos_token_ids) if len(self.eos_token_ids) != 1 else self.eos_token_ids[0],
            "pad_token_id": self.pad_token_id,
        }
        if self.family in ("llama", "qwen3"):
            hf["attention_bias"] = False
        if self.family == "llama":
            hf["mlp_bias"] = False
        if self.rope_scaling:
            hf["rope_scaling"] = {"rope_type": "llama3", **self.rope_scaling_dict}
        return hf


def check_supported(hf: dict[str, Any], family: str) -> None:
    """Raises ValueError naming the ``config.json`` field when the checkpoint computes something ``family`` cannot."""
    act = hf.get("hidden_act", "silu")
    if act not in SILU_NAMES:
        raise ValueError(f"config.json field hidden_act={act!r} is not supported: the {family} family computes "
                         "SwiGLU with silu only")
    model_type = hf.get("model_type") or family
    if family != "qwen2" and hf.get("attention_bias"):
        raise ValueError(f"config.json field attention_bias=true is not supported for {model_type}: it adds biases "
                         "to q/k/v/o_proj, which this family has no parameters for")
    if hf.get("mlp_bias"):
        raise ValueError(f"config.json field mlp_bias=true is not supported for {model_type}: the MLP has no biases")
    window, layers, field = _sliding_window_layers(hf, model_type)
    max_positions = int(hf.get("max_position_embeddings", 4096))
    if layers and window is not None and int(window) < max_positions:
        shown = f"layers {layers[:8]}{' ...' if len(layers) > 8 else ''}"
        raise ValueError(f"config.json field {field} is not supported: sliding-window attention (sliding_window="
                         f"{window} < max_position_embeddings={max_positions}, on {shown}) is not implemented")


def _sliding_window_layers(hf: dict[str, Any], model_type: str) -> tuple[int | None, list[int], str]:
    """(window, layers that use it, the field that switches it on), as transformers decides them."""
    n = int(hf["num_hidden_layers"])
    window = hf.get("sliding_window")
    if model_type == "mistral":  # every layer, unless sliding_window is null
        return window, list(range(n)), f"sliding_window={window}"
    if not hf.get("use_sliding_window"):  # Qwen2/Qwen3: sliding_window is ignored when this is false
        return None, [], ""
    types = hf.get("layer_types")
    if types:
        layers = [i for i, t in enumerate(types) if t == "sliding_attention"]
    else:
        layers = [i for i in range(n) if i >= int(hf.get("max_window_layers", 28))]
    return window, layers, "use_sliding_window=true"


def _family_of(hf: dict[str, Any]) -> str:
    for arch in hf.get("architectures") or ():
        if arch in HF_ARCHITECTURES:
            return HF_ARCHITECTURES[arch]
    model_type = hf.get("model_type")
    if model_type in HF_MODEL_TYPES:
        return HF_MODEL_TYPES[model_type]
    raise ValueError(
        f"config.json: unknown architecture (architectures={hf.get('architectures')}, model_type={model_type!r}); "
        f"supported architectures: {sorted(HF_ARCHITECTURES)}")
