"""Tests of the theory module on CPU: claims hold, or fail only as documented findings.

Settings are the report's quick settings, so compiled programs are shared across tests
(`batched_train` and the check helpers cache by static config).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from urlvr_jax.theory import checks, coupled
from urlvr_jax.theory import rewards as R
from urlvr_jax.theory.dynamics import (GRPOConfig, batched_train, clipped_objective, collapse_step,
                                       group_advantages, inverse_cdf, rollout_counts)
from urlvr_jax.theory.toys import tabular_prior

QUICK_STEPS, GT_STEPS = checks.QUICK["coupled_steps"], checks.QUICK["gt_steps"]


@functools.lru_cache(maxsize=None)
def sharpening_rows():
    return {r.claim: r for r in checks.check_sharpening()}


def test_theorem1():
    rows = checks.check_theorem1()
    assert all(r.holds for r in rows), rows


def test_unified_equals_direct():
    assert checks.check_unified().holds


def test_sharpening_paper_level_holds_where_prop1_applies():
    """Ensemble rewards sharpen the answer marginal; probability / trajectory entropy the sequences."""
    rows = sharpening_rows()
    for name in checks.ENSEMBLE:
        assert rows[f"Sharpening of the answer marginal (KL iteration): {name}"].holds
    for name in checks.MONOTONE_IN_PI_Y:
        assert rows[f"Sharpening of pi(y), y=(z,a) sequences (KL iteration): {name}"].holds


def test_certainty_rewards_answer_marginal_is_a_finding():
    """Finding: certainty rewards prefer the most confident reasoning branch, not the likeliest answer."""
    rows = sharpening_rows()
    for name in checks.CERTAINTY:
        row = rows[f"Answer marginal also sharpens (not claimed by the paper): {name}"]
        assert not row.holds and row.finding and row.status == "NO (finding)"
    assert all(r.holds or r.finding for r in rows.values())


def test_alignment():
    rows = checks.check_alignment()
    assert all(r.holds for r in rows), rows


def test_sampled_flip_rate_depends_on_margin():
    small, large = checks.sampled_flip_rates(4, (0.1, 1.0), steps=30, num_prompts=64)
    assert small > large


def test_inverse_cdf_sampling_matches_probabilities():
    p = jnp.array([0.1, 0.6, 0.3])
    draws = inverse_cdf(jnp.broadcast_to(p, (20_000, 3)), jax.random.uniform(jax.random.PRNGKey(0), (20_000,)))
    assert np.allclose(np.bincount(np.asarray(draws), minlength=3) / 20_000, p, atol=0.02)


def test_counts_step_equals_rollout_by_rollout_grpo():
    """The counts-based step == GRPO written per rollout (gathers, jnp.std over the group): same samples,
    loss and gradient, for a sequence toy (R = 3) and the majority-vote and self-certainty rewards."""
    B, N, Rz, K = 5, 8, 3, 4
    kz, ka, ku, kc = jax.random.split(jax.random.PRNGKey(3), 4)
    uz, ua = jax.random.normal(kz, (B, Rz)), jax.random.normal(ka, (B, Rz, K))
    c = jax.random.randint(kc, (B,), 0, K)
    policy = lambda uz, ua: (jax.nn.log_softmax(uz), jax.nn.log_softmax(ua))
    lz, la = policy(uz, ua)
    u = jax.random.uniform(ku, (B, N))
    counts = rollout_counts(lz, la, u)
    joint = inverse_cdf(jnp.exp(lz[..., None] + la).reshape(B, 1, Rz * K), u)  # [B, N], rollout by rollout
    z, a = joint // K, joint % K
    np.testing.assert_array_equal(counts.sum((1, 2)), N)
    np.testing.assert_array_equal(
        counts, jax.vmap(lambda j: jnp.bincount(j, length=Rz * K))(joint).reshape(B, Rz, K))
    rows = jnp.arange(B)[:, None]
    for name in ("majority_vote", "self_certainty"):
        votes = jax.vmap(lambda x: jnp.bincount(x, length=K) / N)(a)
        table = jax.vmap(lambda *x: R.reward_table(name, *x))(lz, la, c, votes)
        r = table[rows, z, a]
        adv_ref = (r - r.mean(1, keepdims=True)) / (r.std(1, keepdims=True) + 1e-6)
        old = jax.lax.stop_gradient(lz[..., None] + la)

        def per_rollout(uz2, ua2):
            lz2, la2 = policy(uz2, ua2)
            ratio = jnp.exp(lz2[rows, z] + la2[rows, z, a] - old[rows, z, a])
            return jnp.minimum(ratio * adv_ref, jnp.clip(ratio, 0.8, 1.2) * adv_ref).mean()

        def counted(uz2, ua2):
            lz2, la2 = policy(uz2, ua2)
            return clipped_objective(lz2[..., None] + la2, old, group_advantages(counts, table, 1e-6), counts, 0.2)

        shifted = (uz + 0.3, ua - 0.2 * ua)  # ratios away from 1, so clipping is active for some rollouts
        for args in ((uz, ua), shifted):
            np.testing.assert_allclose(counted(*args), per_rollout(*args), rtol=1e-5, atol=1e-6)
            for g1, g2 in zip(jax.grad(counted, (0, 1))(*args), jax.grad(per_rollout, (0, 1))(*args)):
                np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-6)


def test_collapse_step_definition():
    ra = jnp.array([0.5, 0.2, 0.009, 0.5])
    assert int(collapse_step(ra)) == 2
    assert int(collapse_step(jnp.array([0.5, 0.5]))) == 2


def test_coupled_rows_hold_quick():
    rows = checks.check_coupling(steps=QUICK_STEPS, gt_steps=GT_STEPS)
    assert all(r.holds for r in rows), rows


def test_coupled_weak_prior_collapses_strong_does_not():
    runs = checks.coupled_runs(checks.COUPLED_MUS, 4, QUICK_STEPS, GT_STEPS)
    weak, strong = runs[0], runs[-1]
    assert (weak["collapse_step"] < QUICK_STEPS).all() and weak["mv_reward"][-1] > 0.95
    assert (strong["collapse_step"] == QUICK_STEPS).all()
    assert strong["gt_gain"].mean() > weak["gt_gain"].mean()


def test_collapse_step_experiment_api():
    # same shapes and config as the report's small-pool run, so the compiled runner is reused
    cfg = coupled.COUPLED_DEFAULT._replace(steps=QUICK_STEPS)
    rows = coupled.collapse_step_experiment((1.0,), seeds=4, config=cfg, gt_steps=0, pool=32)
    assert [r["mu"] for r in rows] == [1.0]
    assert set(rows[0]) == {"mu", "aligned", "acc0", "collapse_step", "gt_gain"}


def test_grpo_gt_reward_improves_tabular():
    prior, _ = tabular_prior(jax.random.PRNGKey(0), 32, 4, 0.5, 0.5)
    cfg = GRPOConfig(reward="ground_truth", batch_size=32, learn_shared=False, rho=4.0, steps=30)
    _, m = batched_train(cfg)(jax.random.PRNGKey(1)[None], jax.tree.map(lambda x: x[None], prior))
    assert float(m.accuracy[0, 0, -1]) > float(m.accuracy[0, 0, 0]) + 0.2
