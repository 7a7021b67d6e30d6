"""Advantage estimators: hand-computed values, numpy transcriptions of verl and TRL, jit and error handling."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy_reference import trl_advantages, verl_grpo_outcome_advantage, verl_rloo_outcome_advantage

from urlvr_jax.rl.advantages import (
    ADVANTAGE_ESTIMATORS,
    compute_advantages,
    contiguous_group_ids,
    get_advantage_fn,
)


@functools.partial(jax.jit, static_argnums=(0, 3), static_argnames="std_eps")
def _jit_adv(name, rewards, gids, num_groups, **opts):
    return compute_advantages(name, rewards, gids, num_groups, **opts)


def _adv(name, rewards, gids, num_groups, **opts):
    rewards, gids = jnp.asarray(rewards, jnp.float32), jnp.asarray(gids, jnp.int32)
    return np.asarray(_jit_adv(name, rewards, gids, num_groups, **opts))


def test_registered_names():
    assert set(ADVANTAGE_ESTIMATORS.names()) == {"grpo", "dr_grpo", "rloo", "batch_std"}


def test_grpo_hand_computed():
    # Group 0 = [1, 0, 0, 1]: mean 0.5, unbiased var = 4 * 0.25 / 3 = 1/3, std = 0.5773503,
    # A = +-0.5 / 0.5773503 = +-0.8660254. Group 1 = [3] is a singleton: verl uses mean 0, std 1 -> 3 / (1 + 1e-6).
    # Group 2 = [2, 2]: std 0 -> A = 0 / (0 + eps) = 0.
    out = _adv("grpo", [1, 0, 0, 1, 3, 2, 2], [0, 0, 0, 0, 1, 2, 2], 3)
    expected = [0.8660254, -0.8660254, -0.8660254, 0.8660254, 3 / (1 + 1e-6), 0.0, 0.0]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_grpo_std_eps_is_used():
    # [0, 1]: mean 0.5, std = sqrt(0.5) = 0.7071068; with eps 0.5: 0.5 / 1.2071068 = 0.4142136.
    out = _adv("grpo", [0, 1], [0, 0], 1, std_eps=0.5)
    np.testing.assert_allclose(out, [-0.4142136, 0.4142136], rtol=1e-5)


def test_dr_grpo_and_rloo_hand_computed():
    # [1, 2, 3, 6]: mean 3 -> Dr. GRPO [-2, -1, 0, 3].
    # RLOO: r_1 - mean(2, 3, 6) = 1 - 11/3 = -8/3; r_4 - mean(1, 2, 3) = 6 - 2 = 4 (= 4/3 * (r - 3)).
    rewards, gids = [1, 2, 3, 6, 5], [0, 0, 0, 0, 1]  # 5 is a singleton: A = r for both (verl)
    np.testing.assert_allclose(_adv("dr_grpo", rewards, gids, 2), [-2, -1, 0, 3, 5], rtol=1e-6)
    np.testing.assert_allclose(_adv("rloo", rewards, gids, 2), [-8 / 3, -4 / 3, 0, 4, 5], rtol=1e-6)


def test_batch_std_hand_computed():
    # Groups [1, 0] and [2, 2]: group means 0.5, 2. Batch [1, 0, 2, 2]: mean 1.25,
    # squared deviations 0.0625 + 1.5625 + 0.5625 + 0.5625 = 2.75, var = 2.75 / 3, std = 0.9574271.
    out = _adv("batch_std", [1, 0, 2, 2], [0, 0, 1, 1], 2, std_eps=0.0)
    np.testing.assert_allclose(out, [0.5 / 0.9574271, -0.5 / 0.9574271, 0, 0], rtol=1e-5)


@pytest.mark.parametrize("norm_by_std", [True, False])
def test_grpo_matches_verl_with_shuffled_groups(norm_by_std):
    rng = np.random.default_rng(0)
    gids = rng.permutation(np.repeat(np.arange(5), [4, 3, 1, 6, 2]))  # sizes differ, one singleton, shuffled
    rewards = rng.normal(size=gids.shape).astype(np.float32)
    ours = _adv("grpo", rewards, gids, 7) if norm_by_std else _adv("dr_grpo", rewards, gids, 7)  # 7 > 5 groups
    ref = verl_grpo_outcome_advantage(rewards.astype(np.float64), list(gids), 1e-6, norm_by_std)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


def test_rloo_matches_verl():
    rng = np.random.default_rng(1)
    gids = rng.permutation(np.repeat(np.arange(4), [5, 1, 2, 8]))
    rewards = rng.integers(0, 2, size=gids.shape).astype(np.float32)
    ref = verl_rloo_outcome_advantage(rewards.astype(np.float64), list(gids))
    np.testing.assert_allclose(_adv("rloo", rewards, gids, 4), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,scale", [("grpo", "group"), ("batch_std", "batch"), ("dr_grpo", "none")])
def test_matches_trl(name, scale):
    rng = np.random.default_rng(2)
    group_size, rewards = 8, rng.normal(size=48).astype(np.float32)
    gids = contiguous_group_ids(48, group_size)
    opts = {} if name == "dr_grpo" else {"std_eps": 1e-4}
    ref = trl_advantages(rewards.astype(np.float64), group_size, scale)
    np.testing.assert_allclose(_adv(name, rewards, gids, 6, **opts), ref, rtol=1e-4, atol=1e-5)


def test_rloo_is_leave_one_out_mean_by_definition():
    rng = np.random.default_rng(3)
    rewards = rng.normal(size=12).astype(np.float32)
    gids = contiguous_group_ids(12, 4)
    out = _adv("rloo", rewards, gids, 3)
    for i in range(12):
        others = [rewards[j] for j in range(12) if gids[j] == gids[i] and j != i]
        np.testing.assert_allclose(out[i], rewards[i] - np.mean(others), rtol=1e-5, atol=1e-6)


def test_jit_with_static_num_groups():
    fn = jax.jit(get_advantage_fn("grpo"), static_argnums=2)
    rewards = jnp.array([1.0, 0.0, 1.0, 1.0])
    out = fn(rewards, jnp.array([0, 0, 1, 1]), 2)
    np.testing.assert_allclose(out, [0.7071063, -0.7071063, 0.0, 0.0], rtol=1e-5, atol=1e-6)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown advantage estimator 'gae'.*batch_std, dr_grpo, grpo, rloo"):
        get_advantage_fn("gae")


def test_contiguous_group_ids():
    np.testing.assert_array_equal(contiguous_group_ids(6, 3), [0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="multiple"):
        contiguous_group_ids(7, 3)
