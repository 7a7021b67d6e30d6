"""The continuous sampler's program on a data x fsdp x tensor mesh holds its slot cache once: refills and shrinks run
per batch shard, so no shrink's gathered cache is replicated on every device (issue 30: the paper config's rollout
compiled 30x its estimated temporaries). Also the paper config's named presets."""

import jax
import jax.numpy as jnp
import pytest

from urlvr_jax import sharding as shd
from urlvr_jax.model.config import ModelConfig
from urlvr_jax.model.transformer import abstract_params, init_cache
from urlvr_jax.plan.build import device_bytes, with_shardings
from urlvr_jax.sampling.continuous import ContinuousSampler
from urlvr_jax.sampling.strategies import SamplingConfig
from urlvr_jax.utils.config import load_config

CFG = ModelConfig(family="llama", vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
                  num_kv_heads=2, head_dim=16, max_position_embeddings=4096)


def test_mesh_program_holds_the_slot_cache_once():
    """8 prompts x 4 samples, 16 slots (4 per batch shard), 2,048 new tokens: the compiled temporaries are 1.35x
    the per-device slot cache plus the replicated [rows, T] output buffers (measured: 4.98 MB against 2.12 MB of
    cache + 1.57 MB of buffers); with GSPMD's shrinks and refills (commit fd757c7) they were 2.76x (10.18 MB)."""
    if jax.device_count() < 8:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8 (set by tests/conftest.py)")
    mesh = shd.make_mesh("data:2,fsdp:2,tensor:2")
    batch, bucket, samples, new = 8, 16, 4, 2048
    sampler = ContinuousSampler(CFG, SamplingConfig(max_new_tokens=new, temperature=1.0), mesh, buckets=(bucket,),
                                slots=16)
    params = with_shardings(abstract_params(CFG), shd.param_shardings(abstract_params(CFG), mesh))
    sds = jax.ShapeDtypeStruct
    rows = batch * samples
    args = (params, sds((batch, bucket), jnp.int32), sds((batch, bucket), bool), sds((rows,), jnp.uint32),
            jax.eval_shape(jax.random.key, 0), sds((rows,), jnp.int32))
    temp = sampler._jitted_continuous(batch, bucket, samples).fn.lower(*args).compile().memory_analysis(
        ).temp_size_in_bytes
    cache = jax.eval_shape(lambda: init_cache(CFG, 16, bucket + new))
    slot_cache = device_bytes(with_shardings(cache, shd.cache_shardings(cache, mesh)))
    buffers = rows * new * 6 * 4  # tokens, uniforms and 4 statistics, replicated inside the loop
    assert temp < 1.6 * (slot_cache + buffers)


def test_paper_config_presets():
    """``--config paper_qwen3_1p7b:<preset>`` sets the target's mesh; an unknown preset names the presets."""
    assert load_config("paper_qwen3_1p7b").mesh == ""
    assert load_config("paper_qwen3_1p7b:8x80gb").mesh == "data:2,fsdp:2,tensor:2"
    assert load_config("paper_qwen3_1p7b:v5e-64").mesh == "fsdp:16,tensor:4"
    with pytest.raises(ValueError, match="unknown preset; presets are '', '8x80gb', 'v5e-64'"):
        load_config("paper_qwen3_1p7b:v4-32")
