"""Sampling in chunks of rows (``Sampler.max_rows_per_chunk``): every row equals the one sampled all at once,
greedy and sampled, on one device and on a data x fsdp mesh; the chunk shapes and their errors."""

import jax
import numpy as np
import pytest

from sampler_fixtures import left_padded, tiny_model
from urlvr_jax import sharding as shd
from urlvr_jax.sampling.rollout import STAT_NAMES
from urlvr_jax.sampling.sampler import Sampler
from urlvr_jax.sampling.strategies import SamplingConfig

NEW = 8
LENGTHS = (5, 12, 1, 9)  # 4 prompts; bucket 16
EXACT = ("tokens", "mask", "lengths", "finished", "group_ids", "prompt_tokens", "prompt_mask")


def _generate(cfg, params, sampling, max_rows, num_samples, mesh=None, sequence_ids=None):
    sampler = Sampler(cfg, sampling, mesh=mesh, max_rows_per_chunk=max_rows)
    tokens, mask = left_padded(LENGTHS, cfg.vocab_size, seed=1)
    rollout = sampler.generate(params, tokens, mask, jax.random.key(7), num_samples=num_samples,
                               sequence_ids=sequence_ids)
    return sampler, rollout


def _assert_same_rows(chunked, whole):
    for name in EXACT:
        np.testing.assert_array_equal(np.asarray(getattr(chunked, name)), np.asarray(getattr(whole, name)),
                                      err_msg=name)
    for name in STAT_NAMES:
        np.testing.assert_allclose(np.asarray(getattr(chunked, name)), np.asarray(getattr(whole, name)),
                                   atol=1e-5, err_msg=name)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_chunked_rows_equal_unchunked(temperature):
    """4 prompts x 4 samples: chunks of 2 prompts (8 rows), and of 2 samples of one prompt (limit 3); sequence ids
    given out of order, so a row's randomness follows its id, not its position in a chunk."""
    _, cfg, params = tiny_model("llama")
    sampling = SamplingConfig(max_new_tokens=NEW, temperature=temperature, stop_token_ids=(5,))
    ids = np.random.default_rng(0).permutation(1000)[:16]
    _, whole = _generate(cfg, params, sampling, 0, 4, sequence_ids=ids)
    distinct = len(set(map(tuple, np.asarray(whole.tokens))))  # varied rows, so a shuffled join would show
    assert distinct == 4 if temperature == 0.0 else distinct > 4  # greedy: one completion per prompt
    for max_rows, shape in ((8, (2, 4)), (3, (1, 2))):
        sampler, chunked = _generate(cfg, params, sampling, max_rows, 4, sequence_ids=ids)
        assert sampler.chunk_shape(4, 4) == shape
        assert sampler.compile_counts() == (1, 1)  # equal chunks: one program for all of them
        _assert_same_rows(chunked, whole)


def test_chunked_rows_equal_unchunked_on_a_mesh():
    """data 2 x fsdp 2 x tensor 2: 4 prompts x 4 samples in chunks of 8 rows, each chunk sharded 4 ways; the joined
    rollout is batch-sharded like the unchunked one."""
    if jax.device_count() < 8:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8 (set by tests/conftest.py)")
    _, cfg, params = tiny_model("llama")
    mesh = shd.make_mesh("data:2,fsdp:2,tensor:2")
    sampling = SamplingConfig(max_new_tokens=NEW, temperature=1.0, stop_token_ids=(5,))
    _, whole = _generate(cfg, params, sampling, 0, 4)
    _, chunked = _generate(cfg, params, sampling, 8, 4, mesh=mesh)
    _assert_same_rows(chunked, whole)
    assert chunked.tokens.sharding.is_equivalent_to(shd.batch_sharding(mesh, chunked.tokens.shape), 2)


def test_chunk_shapes():
    _, cfg, _ = tiny_model("llama")
    sampler = lambda limit: Sampler(cfg, SamplingConfig(max_new_tokens=NEW), max_rows_per_chunk=limit)  # noqa: E731
    assert sampler(0).chunk_shape(64, 8) == (64, 8)  # 0: all at once
    assert sampler(512).chunk_shape(64, 8) == (64, 8)
    assert sampler(128).chunk_shape(64, 8) == (16, 8)
    assert sampler(100).chunk_shape(64, 8) == (8, 8)  # the largest divisor of 64 prompts with <= 100 rows
    assert sampler(16).chunk_shape(7, 8) == (1, 8)  # 7 prompts: no divisor but 1 fits twice
    assert sampler(6).chunk_shape(7, 8) == (1, 4)  # fewer rows than one prompt's samples: split them
    with pytest.raises(ValueError, match="max_rows_per_chunk=-1"):
        sampler(-1).chunk_shape(4, 2)
