"""Tests of the theory module: each check must hold (or document a finding) on CPU."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from urlvr_jax.theory import checks, coupled, rewards
from urlvr_jax.theory.dynamics import GRPOConfig, collapse_step, make_train
from urlvr_jax.theory.toys import coupled_prior, tabular_prior


def test_theorem1():
    rows = checks.check_theorem1()
    assert all(r.holds for r in rows), rows


def test_unified_equals_direct():
    assert checks.check_unified().holds


@pytest.mark.parametrize("name", ["majority_vote", "self_consistency"])
def test_ensemble_rewards_sharpen_exactly(name):
    kl, _ = checks.sharpening_exact(name, num_prompts=100, steps=20)
    assert kl >= 0.99


def test_certainty_rewards_can_move_answer_mode():
    """Finding: token-level certainty rewards sharpen the sequence but may flip the answer mode."""
    kl, pg = checks.sharpening_exact("token_entropy", num_prompts=100, steps=20)
    assert min(kl, pg) < 0.99


def test_alignment():
    rows = checks.check_alignment(steps=40)
    assert all(r.holds for r in rows), rows


def test_sampled_flip_rate_depends_on_margin():
    assert checks.sampled_flip_rate(4, 0.1, steps=30, num_prompts=64) > checks.sampled_flip_rate(16, 1.0, steps=30, num_prompts=64)


def test_collapse_step_definition():
    ra = jnp.array([0.5, 0.2, 0.009, 0.5])
    assert int(collapse_step(ra)) == 2
    assert int(collapse_step(jnp.array([0.5, 0.5]))) == 2


def test_coupled_weak_prior_collapses_strong_does_not():
    cfg = coupled.COUPLED_DEFAULT._replace(steps=150)
    weak = coupled.run_coupled(0.0, seeds=1, config=cfg, gt_steps=16)
    strong = coupled.run_coupled(2.5, seeds=1, config=cfg, gt_steps=16)
    assert weak["collapse_step"][0] < 150 and weak["mv_reward"][-1] > 0.95
    assert strong["collapse_step"][0] == 150
    assert strong["gt_gain"][0] > weak["gt_gain"][0]


def test_grpo_gt_reward_improves_tabular():
    prior, _ = tabular_prior(jax.random.PRNGKey(0), 32, 4, 0.5, 0.5)
    cfg = GRPOConfig(reward="ground_truth", batch_size=32, learn_shared=False, rho=4.0, steps=30)
    _, m = jax.jit(make_train(cfg))(jax.random.PRNGKey(1), prior)
    assert float(m.accuracy[-1]) > float(m.accuracy[0]) + 0.2
