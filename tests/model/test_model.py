"""Logits parity with transformers, the KV cache, export round trips and bad inputs."""

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from hf_fixtures import FAMILY_CONFIGS, hf_logits, tiny_hf_model
from urlvr_jax import sharding
from urlvr_jax.model import hf_io, safetensors_io, transformer
from urlvr_jax.model.config import ModelConfig

FAMILIES = sorted(FAMILY_CONFIGS)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """family -> (transformers model, its saved directory)."""
    out = {}
    for family in FAMILIES:
        model = tiny_hf_model(family)
        path = str(tmp_path_factory.mktemp(family))
        model.save_pretrained(path)
        out[family] = (model, path)
    return out


def _batch(seed=0, vocab=97):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, (4, 12))
    mask = np.ones((4, 12), bool)
    mask[1, :3] = mask[2, :9] = mask[3, :11] = False  # left padding of several lengths
    return tokens, mask


@pytest.mark.parametrize("family", FAMILIES)
def test_logits_match_transformers_on_left_padded_batch(saved, family):
    model, path = saved[family]
    cfg, params = hf_io.load_hf(path)
    assert cfg.family == family
    tokens, mask = _batch()
    ours, _ = transformer.forward(params, jnp.asarray(tokens), token_mask=jnp.asarray(mask), cfg=cfg)
    np.testing.assert_allclose(np.asarray(ours)[mask], hf_logits(model, tokens, mask)[mask], atol=1e-4, rtol=0)


def test_config_features_are_read(saved):
    llama, _ = hf_io.load_hf(saved["llama"][1])
    assert llama.tie_embeddings and llama.rope_scaling and llama.rope_theta == 50000.0
    assert llama.num_kv_heads < llama.num_heads
    qwen2, params2 = hf_io.load_hf(saved["qwen2"][1])
    assert qwen2.attention_bias and not qwen2.tie_embeddings and "lm_head" in params2
    qwen3, params3 = hf_io.load_hf(saved["qwen3"][1])
    assert qwen3.qk_norm and qwen3.head_dim == 24 and params3["layers"]["q_norm"].shape == (2, 24)


@pytest.mark.parametrize("family", FAMILIES)
def test_kv_cache_decode_equals_full_forward(saved, family):
    cfg, params = hf_io.load_hf(saved[family][1])
    tokens, mask = _batch(1)
    full, _ = transformer.forward(params, jnp.asarray(tokens), token_mask=jnp.asarray(mask), cfg=cfg)
    prompt = 7
    cache = transformer.init_cache(cfg, batch=4, length=16)
    logits, cache = transformer.forward(params, jnp.asarray(tokens[:, :prompt]),
                                        token_mask=jnp.asarray(mask[:, :prompt]), cfg=cfg, cache=cache)
    steps = [logits]
    for t in range(prompt, tokens.shape[1]):
        step, cache = transformer.forward(params, jnp.asarray(tokens[:, t:t + 1]),
                                          token_mask=jnp.asarray(mask[:, t:t + 1]), cfg=cfg, cache=cache)
        steps.append(step)
    incremental = np.concatenate([np.asarray(s) for s in steps], axis=1)
    np.testing.assert_allclose(incremental[mask], np.asarray(full)[mask], atol=1e-5)
    assert int(cache.index) == tokens.shape[1]


def test_bfloat16_compute_is_close_to_float32(saved):
    cfg, params = hf_io.load_hf(saved["qwen3"][1])
    tokens, mask = _batch()
    f32, _ = transformer.forward(params, jnp.asarray(tokens), token_mask=jnp.asarray(mask), cfg=cfg)
    b16, _ = transformer.forward(params, jnp.asarray(tokens), token_mask=jnp.asarray(mask), cfg=cfg.replace(dtype="bfloat16"))
    assert b16.dtype == jnp.float32  # the LM head runs in float32 whatever the compute dtype
    assert np.abs(np.asarray(b16) - np.asarray(f32))[mask].max() < 0.05


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("shard_bytes", [1 << 40, 40_000])
def test_export_round_trip_loads_in_transformers(saved, tmp_path, family, shard_bytes):
    model, path = saved[family]
    cfg, params = hf_io.load_hf(path)
    out = hf_io.save_hf(params, cfg, str(tmp_path / "export"), max_shard_bytes=shard_bytes)
    assert os.path.exists(os.path.join(out, "model.safetensors.index.json")) == (shard_bytes < 1 << 40)
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    tokens, mask = _batch(2)
    np.testing.assert_array_equal(hf_logits(reloaded, tokens, mask), hf_logits(model, tokens, mask))
    cfg2, params2 = hf_io.load_hf(out)
    assert cfg2 == cfg
    jax.tree.map(np.testing.assert_array_equal, params2, params)


def test_sharded_load_gives_the_same_logits(saved):
    _, path = saved["qwen2"]
    cfg, params = hf_io.load_hf(path)
    mesh = sharding.make_mesh("data:2,fsdp:2,tensor:2")
    _, sharded = hf_io.load_hf(path, mesh=mesh)
    assert sharded["layers"]["q"].sharding.spec == jax.sharding.PartitionSpec(None, "fsdp", "tensor", None)
    tokens, mask = _batch()
    want, _ = transformer.forward(params, jnp.asarray(tokens), token_mask=jnp.asarray(mask), cfg=cfg)
    got = jax.jit(lambda p, t, m: transformer.forward(p, t, token_mask=m, cfg=cfg)[0])(
        sharded, jnp.asarray(tokens), jnp.asarray(mask))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


# ---------------------------------------------------------------- bad input


def _copy_checkpoint(src, dst, edit_config=None, edit_tensors=None):
    os.makedirs(dst, exist_ok=True)
    config = json.load(open(os.path.join(src, "config.json")))
    if edit_config:
        edit_config(config)
    json.dump(config, open(os.path.join(dst, "config.json"), "w"))
    st = safetensors_io.SafetensorsFile(os.path.join(src, "model.safetensors"))
    tensors = {n: np.array(st.tensor(n)) for n in st.entries}
    if edit_tensors:
        edit_tensors(tensors)
    safetensors_io.save_file(tensors, os.path.join(dst, "model.safetensors"))
    return dst


def test_unknown_architecture_is_refused(saved, tmp_path):
    def gpt2(c):
        c["architectures"], c["model_type"] = ["GPT2LMHeadModel"], "gpt2"
    path = _copy_checkpoint(saved["llama"][1], str(tmp_path / "m"), edit_config=gpt2)
    with pytest.raises(ValueError, match=r"config.json: unknown architecture.*GPT2LMHeadModel.*LlamaForCausalLM"):
        hf_io.load_hf(path)


def test_missing_tensor_is_named(saved, tmp_path):
    drop = lambda t: t.pop("model.layers.1.mlp.up_proj.weight")
    path = _copy_checkpoint(saved["qwen2"][1], str(tmp_path / "m"), edit_tensors=drop)
    with pytest.raises(ValueError, match=r"/m: 1 tensor\(s\) required by the config are missing from the checkpoint: "
                                         r"\['model.layers.1.mlp.up_proj.weight'\]"):
        hf_io.load_hf(path)


def test_extra_tensor_is_named(saved, tmp_path):
    def add(t):
        t["model.layers.0.self_attn.extra.weight"] = np.zeros((2, 2), np.float32)
    path = _copy_checkpoint(saved["qwen3"][1], str(tmp_path / "m"), edit_tensors=add)
    with pytest.raises(ValueError, match=r"unexpected tensor.*layers.0.self_attn.extra.weight"):
        hf_io.load_hf(path)


def test_wrong_shape_names_tensor_and_file(saved, tmp_path):
    def wider(c):
        c["intermediate_size"] = 128
    path = _copy_checkpoint(saved["llama"][1], str(tmp_path / "m"), edit_config=wider)
    with pytest.raises(ValueError, match=r"model.safetensors: tensor model.layers.0.mlp.gate_proj.weight has shape "
                                         r"\(112, 64\), but the config implies \(128, 64\)"):
        hf_io.load_hf(path)


def test_missing_files_and_bad_fields(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        hf_io.load_hf(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(FAMILY_CONFIGS["llama"]().to_dict()))
    with pytest.raises(FileNotFoundError, match="no \\*.safetensors"):
        hf_io.load_hf(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"\x05\x00")
    with pytest.raises(ValueError, match="model.safetensors: not a readable safetensors file"):
        hf_io.load_hf(str(tmp_path))
    with pytest.raises(ValueError, match="num_heads=6 must be a multiple of num_kv_heads=4"):
        ModelConfig("llama", 10, 8, 8, 1, 6, 4, 2)
    with pytest.raises(ValueError, match="family='gpt2'"):
        ModelConfig("gpt2", 10, 8, 8, 1, 2, 2, 4)


def test_mesh_specs():
    assert dict(sharding.make_mesh("2,2,2").shape) == {"data": 2, "fsdp": 2, "tensor": 2}
    assert dict(sharding.make_mesh("data:2,tensor:-1").shape) == {"data": 2, "fsdp": 1, "tensor": 4}
    assert dict(sharding.make_mesh(None).shape) == {"data": 1, "fsdp": 8, "tensor": 1}
    with pytest.raises(ValueError, match="asks for 12 devices"):
        sharding.make_mesh("3,2,2")
    with pytest.raises(ValueError, match="unknown axes"):
        sharding.make_mesh("data:2,model:4")


def test_query_chunked_attention_matches(saved):
    cfg, params = hf_io.load_hf(saved["qwen3"][1])
    tokens, mask = _batch(3)
    want, _ = transformer.forward(params, jnp.asarray(tokens), token_mask=jnp.asarray(mask), cfg=cfg)
    for chunk in (4, 5):  # divides S = 12, and does not
        got, _ = transformer.forward(params, jnp.asarray(tokens), token_mask=jnp.asarray(mask),
                                     cfg=cfg.replace(attention_chunk=chunk))
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_out_major_params_give_the_same_logits_and_cache(saved, family):
    """out_major_params (per-layer OutMajor weights, tied or untied head) changes the matmul form, not the model."""
    cfg, params = hf_io.load_hf(saved[family][1])
    tokens, mask = _batch(4)
    cache = transformer.init_cache(cfg, batch=4, length=16)
    out_major = transformer.out_major_params(params)
    assert isinstance(out_major["lm_head"], transformer.OutMajor)
    assert out_major["lm_head"].t.shape == (cfg.vocab_size, cfg.hidden_size)
    assert isinstance(out_major["layers"][0]["o"], transformer.OutMajor)
    assert transformer.out_major_params(out_major) == out_major  # already laid out: unchanged
    want, want_cache = transformer.forward(params, jnp.asarray(tokens), token_mask=jnp.asarray(mask), cfg=cfg,
                                           cache=cache)
    got, got_cache = jax.jit(functools.partial(transformer.forward, cfg=cfg))(
        out_major, jnp.asarray(tokens), token_mask=jnp.asarray(mask), cache=cache)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)
    np.testing.assert_allclose(np.asarray(got_cache.v), np.asarray(want_cache.v), atol=1e-5)


def test_unstacked_layers_give_the_same_logits_and_cache(saved):
    cfg, params = hf_io.load_hf(saved["llama"][1])
    tokens, mask = _batch(4)
    cache = transformer.init_cache(cfg, batch=4, length=16)
    want, want_cache = transformer.forward(params, jnp.asarray(tokens), token_mask=jnp.asarray(mask), cfg=cfg,
                                           cache=cache)
    got, got_cache = transformer.forward(transformer.unstack_layers(params), jnp.asarray(tokens),
                                         token_mask=jnp.asarray(mask), cfg=cfg, cache=cache)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)
    np.testing.assert_allclose(np.asarray(got_cache.k), np.asarray(want_cache.k), atol=1e-6)


def test_rope_table_lookup_equals_per_element_and_is_computed_once(saved):
    """With a bound on the positions, RoPE's cos/sin come from one [positions, Dh] table: the same values as the
    per-element path, and one cos in the compiled forward (XLA fused the per-element cos into each q/k consumer
    of every layer, forward and backward)."""
    cfg, params = hf_io.load_hf(saved["llama"][1])
    inv_freq = transformer.rope_inv_freq(cfg)
    positions = jnp.asarray(np.random.default_rng(0).integers(0, 40, (3, 7)))
    direct = transformer.rope_tables(positions, inv_freq, jnp.float32)
    looked_up = transformer.rope_tables(positions, inv_freq, jnp.float32, num_positions=40)
    for want, got in zip(direct, looked_up):
        assert got.shape == want.shape == (3, 7, 1, cfg.head_dim)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))

    tokens, mask = _batch(5)
    loss = lambda p: jnp.sum(transformer.forward(p, jnp.asarray(tokens), token_mask=jnp.asarray(mask), cfg=cfg)[0])
    unrolled = transformer.unstack_layers(params)  # a scan would share the tables across layers anyway
    hlo = jax.jit(jax.grad(loss)).lower(unrolled).compile().as_text()
    assert cfg.num_layers >= 2 and hlo.count(" cosine(") == 1  # per element: 10 on this model
