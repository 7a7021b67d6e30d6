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
import jax.numpy as jnp
import numpy as np
from scipy.stats import spearmanr

from urlvr_jax.theory.dynamics import GRPOConfig, collapse_step, make_train
from urlvr_jax.theory.toys import accuracy, aligned_share, coupled_prior, init_params, log_policy

COUPLED_DEFAULT = GRPOConfig(reward="majority_vote", num_rollouts=8, batch_size=64, lr=0.3,
                             rho=4.0, t_max=1.0, learn_shared=True, steps=400)
NUM_ANSWERS, KAPPA, POOL = 16, 2.0, 1024


def run_coupled(mu: float, seeds: int = 2, pool: int = POOL, config: GRPOConfig = COUPLED_DEFAULT,
                kappa: float = KAPPA, gt_steps: int = 64, prior_seed: int = 1) -> dict:
    """Majority-vote and ground-truth GRPO on one coupled prior, vmapped over seeds.

    Returns a dict of numpy arrays: curves of the MV run (mean over seeds), collapse step per seed,
    GT gain (accuracy after `gt_steps` GT-GRPO steps minus initial accuracy) per seed.
    """
    prior = coupled_prior(jax.random.PRNGKey(prior_seed), pool, NUM_ANSWERS, mu, kappa)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    mv = jax.jit(jax.vmap(make_train(config), (0, None)))
    gt = jax.jit(jax.vmap(make_train(config._replace(reward="ground_truth", steps=gt_steps)), (0, None)))
    _, m = mv(keys, prior)
    _, g = gt(keys, prior)
    acc0 = float(accuracy(*log_policy(init_params(prior), prior, config.rho, config.t_max), prior.c))
    return {
        "mu": mu, "aligned": float(aligned_share(prior)), "acc0": acc0,
        "accuracy": np.asarray(m.accuracy.mean(0)), "mv_reward": np.asarray(m.proxy_reward.mean(0)),
        "reward_accuracy": np.asarray(m.reward_accuracy.mean(0)),
        "gt_accuracy": np.asarray(g.accuracy.mean(0)),
        "collapse_step": np.asarray(jax.vmap(collapse_step)(m.reward_accuracy)),
        "gt_gain": np.asarray(g.accuracy[:, -1]) - acc0,
    }


def collapse_step_experiment(mus: Sequence[float] = (0.0, 1.0, 1.5, 2.0, 2.5), seeds: int = 2,
                             **kwargs) -> list[dict]:
    """Per prior (mu): aligned share, mean collapse step (steps if none) and mean GT gain.

    This is the toy mode of the Model Collapse Step tool.
    """
    rows = []
    for mu in mus:
        out = run_coupled(mu, seeds=seeds, **kwargs)
        rows.append({"mu": mu, "aligned": out["aligned"], "acc0": out["acc0"],
                     "collapse_step": float(out["collapse_step"].mean()),
                     "gt_gain": float(out["gt_gain"].mean())})
    return rows


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (ties get average ranks)."""
    return float(spearmanr(np.asarray(x), np.asarray(y)).statistic)


def rise_then_fall(acc: np.ndarray, min_rise: float = 0.05, min_fall: float = 0.1) -> tuple[bool, float, int, float]:
    """(holds, peak gain over start, peak step, drop from peak to the end)."""
    peak = int(np.argmax(acc))
    rise, fall = float(acc[peak] - acc[0]), float(acc[peak] - acc[-1])
    return (rise >= min_rise and fall >= min_fall), rise, peak, fall


def sweep_final_accuracy(mus: jax.Array, seeds: int, steps: int = 200, pool: int = 64,
                         config: GRPOConfig = COUPLED_DEFAULT) -> jax.Array:
    """Fully vectorised sweep: final MV accuracy [len(mus), seeds] (vmap over priors and seeds)."""
    cfg = config._replace(steps=steps, batch_size=min(config.batch_size, pool))
    train = make_train(cfg)

    def one(mu, key):
        prior = coupled_prior(jax.random.PRNGKey(1), pool, NUM_ANSWERS, mu, KAPPA)
        return train(key, prior)[1].accuracy[-1]

    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    return jax.jit(jax.vmap(jax.vmap(one, (None, 0)), (0, None)))(mus, keys)
