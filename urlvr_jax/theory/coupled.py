"""Coupled-toy experiments: rise-then-fall and the Model Collapse Step as a trainability predictor.

Ingredients that produce rise-then-fall and a collapse step (see `COUPLED_DEFAULT`):
a shared "default answer" bias (kappa = 2 logits on an answer that is never correct), a shared but
saturating sharpening of the prior logits (t_max = 1: the rise), modest per-prompt capacity
(rho = 4), prompts streamed from a large pool (1024 prompts, 64 per step), N = 8, SGD lr 0.3.
Alignment is controlled by mu, the mean prior logit of the correct answer.
"""

from __future__ import annotations

from typing import Sequence

import jax
import numpy as np
from scipy.stats import spearmanr

from urlvr_jax.theory.dynamics import GRPOConfig, batched_train, collapse_step, stack_priors
from urlvr_jax.theory.toys import Prior, accuracy, aligned_share, coupled_prior, init_params, log_policy

COUPLED_DEFAULT = GRPOConfig(reward="majority_vote", num_rollouts=8, batch_size=64, lr=0.3,
                             rho=4.0, t_max=1.0, learn_shared=True, steps=400)
NUM_ANSWERS, KAPPA, POOL = 16, 2.0, 1024


def coupled_priors(mus: Sequence[float], pool: int = POOL, kappa: float = KAPPA, prior_seed: int = 1) -> Prior:
    """Coupled priors for several mu, stacked along a leading axis (same key: only mu differs)."""
    key = jax.random.PRNGKey(prior_seed)
    return stack_priors([coupled_prior(key, pool, NUM_ANSWERS, float(mu), kappa) for mu in mus])


def run_coupled_many(mus: Sequence[float], seeds: int = 2, pool: int = POOL,
                     config: GRPOConfig = COUPLED_DEFAULT, kappa: float = KAPPA, gt_steps: int = 64,
                     prior_seed: int = 1) -> list[dict]:
    """Majority-vote and ground-truth GRPO on several coupled priors in one call per reward
    (vmapped over priors x seeds, shared jitted runner). One dict per mu, as `run_coupled`;
    `gt_steps=0` skips the GT run (GT curves and gains are then NaN)."""
    priors = coupled_priors(mus, pool, kappa, prior_seed)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    _, m = batched_train(config)(keys, priors)
    m = jax.tree.map(np.asarray, m)
    if gt_steps > 0:
        _, g = batched_train(config._replace(reward="ground_truth", steps=gt_steps))(keys, priors)
        g = jax.tree.map(np.asarray, g)
    else:  # no GT run: NaN gains
        g = m._replace(accuracy=np.full(m.accuracy.shape[:2] + (1,), np.nan))
    cs = np.asarray(jax.vmap(jax.vmap(collapse_step))(m.reward_accuracy))
    out = []
    for i, mu in enumerate(mus):
        prior = jax.tree.map(lambda x: x[i], priors)
        acc0 = float(accuracy(*log_policy(init_params(prior), prior, config.rho, config.t_max), prior.c))
        out.append({
            "mu": float(mu), "aligned": float(aligned_share(prior)), "acc0": acc0,
            "accuracy": m.accuracy[i].mean(0), "mv_reward": m.proxy_reward[i].mean(0),
            "reward_accuracy": m.reward_accuracy[i].mean(0), "gt_accuracy": g.accuracy[i].mean(0),
            "accuracy_per_seed": m.accuracy[i], "mv_reward_per_seed": m.proxy_reward[i],
            "collapse_step": cs[i], "gt_gain": g.accuracy[i, :, -1] - acc0,
        })
    return out


def run_coupled(mu: float, seeds: int = 2, pool: int = POOL, config: GRPOConfig = COUPLED_DEFAULT,
                kappa: float = KAPPA, gt_steps: int = 64, prior_seed: int = 1) -> dict:
    """Majority-vote and ground-truth GRPO on one coupled prior, vmapped over seeds.

    Returns a dict of numpy arrays: curves of the MV run (mean over seeds, and per seed), collapse
    step per seed, GT gain (accuracy after `gt_steps` GT-GRPO steps minus initial accuracy) per seed.
    """
    return run_coupled_many([mu], seeds, pool, config, kappa, gt_steps, prior_seed)[0]


def collapse_step_experiment(mus: Sequence[float] = (0.0, 1.0, 1.5, 2.0, 2.5), seeds: int = 2,
                             **kwargs) -> list[dict]:
    """Per prior (mu): aligned share, mean collapse step (steps if none) and mean GT gain.

    This is the toy mode of the Model Collapse Step tool.
    """
    return [{"mu": out["mu"], "aligned": out["aligned"], "acc0": out["acc0"],
             "collapse_step": float(out["collapse_step"].mean()), "gt_gain": float(out["gt_gain"].mean())}
            for out in run_coupled_many(mus, seeds=seeds, **kwargs)]


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (ties get average ranks)."""
    return float(spearmanr(np.asarray(x), np.asarray(y)).statistic)


def rise_then_fall(acc: np.ndarray, min_rise: float = 0.05, min_fall: float = 0.1) -> tuple[bool, float, int, float]:
    """(holds, peak gain over start, peak step, drop from peak to the end)."""
    peak = int(np.argmax(acc))
    rise, fall = float(acc[peak] - acc[0]), float(acc[peak] - acc[-1])
    return (rise >= min_rise and fall >= min_fall), rise, peak, fall
