"""Continuous batching (``ContinuousSampler``): every rollout equals the static sampler's for the same sequence id,
greedy and sampled, on each model family, on one device and on a data x fsdp x tensor mesh; slots are refilled
(fewer decoded row-steps) with one compiled program; per-row ``max_lengths`` in both samplers."""

import jax
import numpy as np
import pytest

from sampler_fixtures import left_padded, tiny_model
from urlvr_jax import sharding as shd
from urlvr_jax.sampling.continuous import ContinuousSampler
from urlvr_jax.sampling.rollout import STAT_NAMES
from urlvr_jax.sampling.sampler import Sampler
from urlvr_jax.sampling.strategies import SamplingConfig

NEW = 12
LENGTHS = (5, 12, 1, 9)  # 4 prompts (bucket 16) x SAMPLES rollouts
SAMPLES = 3
ROWS = len(LENGTHS) * SAMPLES
STOPS = (5, 6)
EXACT = ("tokens", "mask", "lengths", "finished", "group_ids", "prompt_tokens", "prompt_mask")


def _inputs(cfg, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.permutation(1000)[:ROWS]  # out of order: a row's randomness follows its id
    limits = rng.integers(1, NEW + 1, ROWS)  # varied lengths, so slots are refilled at different steps
    return (*left_padded(LENGTHS, cfg.vocab_size, seed=1), jax.random.key(seed)), dict(
        num_samples=SAMPLES, sequence_ids=ids, max_lengths=limits)


def _pair(family, temperature, mesh=None, slots=4):
    """(static rollout, continuous rollout, row-steps decoded, continuous sampler) of the same rows."""
    _, cfg, params = tiny_model(family)
    sampling = SamplingConfig(max_new_tokens=NEW, temperature=temperature, stop_token_ids=STOPS)
    args, kwargs = _inputs(cfg)
    static = jax.tree.map(np.asarray, Sampler(cfg, sampling).generate(params, *args, **kwargs))
    sampler = ContinuousSampler(cfg, sampling, mesh=mesh, slots=slots)
    rollout, steps = sampler.generate_with_steps(params, *args, **kwargs)
    return static, rollout, int(steps), sampler


def _assert_same_rows(static, continuous):
    for name in EXACT:
        np.testing.assert_array_equal(np.asarray(getattr(continuous, name)), getattr(static, name), err_msg=name)
    for name in STAT_NAMES:
        np.testing.assert_allclose(np.asarray(getattr(continuous, name)), getattr(static, name), atol=1e-5,
                                   err_msg=name)


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3"])
def test_greedy_rows_equal_static(family):
    static, continuous, steps, sampler = _pair(family, 0.0)
    _assert_same_rows(static, continuous)
    assert len(set(static.lengths.tolist())) > 3  # ragged rows: slots were refilled at different steps
    # 4 slots (then 2, then 1 as rows run out) decode the 12 rows: fewer row-steps than the static batch's 12 rows x
    # its longest row
    assert static.lengths.sum() <= steps < ROWS * static.lengths.max()
    assert sampler.compile_counts() == (1, 1)


def test_sampled_rows_equal_static():
    """Temperature 1: the same tokens (the test bounds rounding flips at 1% of tokens; none happen here) and the
    same statistics to 1e-5 on each row up to its first differing token."""
    static, continuous, _, _ = _pair("llama", 1.0)
    assert len(set(map(tuple, static.tokens.tolist()))) > len(LENGTHS)  # samples of a prompt differ
    tokens = np.asarray(continuous.tokens)
    same = (tokens == static.tokens) | ~static.mask
    assert same.mean() >= 0.99
    agree = np.cumprod(same, axis=1).astype(bool) & static.mask
    for name in STAT_NAMES:
        np.testing.assert_allclose(np.asarray(getattr(continuous, name))[agree], getattr(static, name)[agree],
                                   atol=1e-5, err_msg=name)
    np.testing.assert_array_equal(np.asarray(continuous.finished), static.finished)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_rows_equal_static_on_a_mesh(temperature):
    """data 2 x fsdp 2 x tensor 2: 8 slots (2 per batch shard) against the unsharded static sampler; the rollout is
    batch-sharded like the static sampler's."""
    if jax.device_count() < 8:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8 (set by tests/conftest.py)")
    mesh = shd.make_mesh("data:2,fsdp:2,tensor:2")
    static, continuous, steps, sampler = _pair("llama", temperature, mesh=mesh, slots=8)
    assert sampler.num_slots(ROWS) == 8 and steps < ROWS * static.lengths.max()
    _assert_same_rows(static, continuous)
    assert continuous.tokens.sharding.is_equivalent_to(shd.batch_sharding(mesh, continuous.tokens.shape), 2)


def test_max_lengths_and_slots():
    """Rows stop at their max length as truncated (not finished) unless on a stop token; one slot decodes the rows
    one after another; bad max lengths and slot counts are one-line errors."""
    _, cfg, params = tiny_model("llama")
    sampling = SamplingConfig(max_new_tokens=NEW, temperature=0.0)  # no stop tokens: every row runs to its limit
    args, kwargs = _inputs(cfg, seed=3)
    limits = kwargs["max_lengths"]
    full = Sampler(cfg, sampling).generate(params, *args, num_samples=SAMPLES)
    for sampler in (Sampler(cfg, sampling), ContinuousSampler(cfg, sampling, slots=1)):
        rollout = jax.tree.map(np.asarray, sampler.generate(params, *args, **kwargs))
        np.testing.assert_array_equal(rollout.lengths, limits)
        assert not rollout.finished.any()
        np.testing.assert_array_equal(rollout.tokens, np.where(rollout.mask, np.asarray(full.tokens), 0))
    _, steps = ContinuousSampler(cfg, sampling, slots=1).generate_with_steps(params, *args, **kwargs)
    assert int(steps) == limits.sum()  # one slot: every step makes a token
    with pytest.raises(ValueError, match=r"max_lengths must be \[12\].*max_new_tokens=12.*range \[0, 5\]"):
        Sampler(cfg, sampling).generate(params, *args, num_samples=SAMPLES, max_lengths=np.arange(ROWS) % 6)
    with pytest.raises(ValueError, match="ContinuousSampler.slots=0"):
        ContinuousSampler(cfg, sampling, slots=0)
