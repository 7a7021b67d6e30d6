"""Training dynamics on the toys: exact KL iteration, expected policy-gradient flow, sampled GRPO.

All three are pure functions built on `lax.scan`; GRPO follows purejaxrl's `make_train(config)`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from urlvr_jax.theory import rewards as R
from urlvr_jax.theory.toys import Params, Prior, answer_marginal, init_params, log_policy
from urlvr_jax.utils.xla_options import YNN_NONE, compiler_options

RewardFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]  # (lz, la, c) -> r [R, K]


def exact_reward_fn(name: str) -> RewardFn:
    """Reward table with exact (N -> infinity) votes."""
    return lambda lz, la, c: R.exact_reward_table(name, lz, la, c)


def split_joint(logj: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Joint log pi(z, a) [..., R, K] -> (log pi(z), log pi(a | z))."""
    lz = jax.nn.logsumexp(logj, -1)
    return lz, logj - lz[..., None]


def kl_step(lz: jax.Array, la: jax.Array, c: jax.Array, reward_fn: RewardFn, beta: float):
    """One KL-optimal step for one prompt: pi_{k+1} ∝ pi_k exp(r_k / beta) on the joint."""
    logj = lz[:, None] + la + reward_fn(lz, la, c) / beta
    return split_joint(logj - jax.nn.logsumexp(logj))


def kl_iteration(prior: Prior, reward_fn: RewardFn, beta: float, steps: int):
    """Iterate the KL-optimal update on every prompt; returns stacked (lz, la) [steps + 1, ...]."""
    lz0, la0 = log_policy(init_params(prior), prior)
    step = jax.vmap(lambda lz, la, c: kl_step(lz, la, c, reward_fn, beta))

    def body(carry, _):
        nxt = step(*carry, prior.c)
        return nxt, nxt

    _, (lzs, las) = jax.lax.scan(body, (lz0, la0), None, length=steps)
    return jnp.concatenate([lz0[None], lzs]), jnp.concatenate([la0[None], las])


def pg_flow(prior: Prior, reward_fn: RewardFn, lr: float, steps: int, rho: float = 1.0):
    """Exact expected policy gradient ascent on E_pi[sg(r)] (Euler steps of the flow).

    Returns stacked (lz, la) [steps + 1, ...].
    """
    def objective(params: Params) -> jax.Array:
        lz, la = log_policy(params, prior, rho)
        r = jax.lax.stop_gradient(jax.vmap(reward_fn)(lz, la, prior.c))
        return (jnp.exp(lz[..., None] + la) * r).sum()

    p0 = init_params(prior)

    def body(params, _):
        g = jax.grad(objective)(params)
        params = jax.tree.map(lambda p, d: p + lr * d, params, g)
        params = params._replace(b=prior.b0, w=p0.w)  # the tabular flow keeps shared parameters frozen
        return params, log_policy(params, prior, rho)

    _, (lzs, las) = jax.lax.scan(body, p0, None, length=steps)
    lz0, la0 = log_policy(p0, prior, rho)
    return jnp.concatenate([lz0[None], lzs]), jnp.concatenate([la0[None], las])


class GRPOConfig(NamedTuple):
    """Sampled GRPO on a toy; one step = one rollout batch of `batch_size` prompts x N rollouts."""

    reward: str = "majority_vote"
    num_rollouts: int = 8
    batch_size: int = 64
    num_minibatches: int = 1
    lr: float = 0.3
    clip_eps: float = 0.2
    rho: float = 8.0  # per-prompt capacity: effective per-prompt lr scales as rho^2
    t_max: float = 0.0  # shared, saturating sharpening capacity (0 = none)
    learn_shared: bool = True  # coupled toy; False = tabular (shared b and w frozen)
    steps: int = 200
    std_eps: float = 1e-6


class Metrics(NamedTuple):
    """Per-step metrics (each [steps])."""

    accuracy: jax.Array  # pool pass@1 after the step
    proxy_reward: jax.Array  # mean intrinsic reward of the rollouts
    gt_reward: jax.Array  # mean ground-truth reward of the rollouts
    reward_accuracy: jax.Array  # share of rollouts with proxy reward == GT reward
    mode_kept: jax.Array  # share of pool prompts whose answer mode equals the initial mode
    entropy: jax.Array  # mean answer-marginal entropy over the pool


def _rows(params: Params, prior: Prior, start: jax.Array, size: int, rho: tuple[float, float]):
    """Policy of prompts [start, start + size): a dynamic slice (its gradient is a cheap update-slice;
    a gather/scatter over random indices costs seconds of XLA compile time on CPU)."""
    cut = lambda x: jax.lax.dynamic_slice_in_dim(x, start, size)
    sub_prior = Prior(cut(prior.s_z), cut(prior.s_a), cut(prior.c), prior.b0)
    sub_params = Params(cut(params.u_z), cut(params.u_a), params.b, params.w)
    return log_policy(sub_params, sub_prior, *rho)


def _cdf(p: jax.Array) -> jax.Array:
    return jax.lax.associative_scan(jnp.add, p, axis=-1)  # jnp.cumsum lowers to a slow reduce-window on CPU


def _cdf_index(cdf: jax.Array, u: jax.Array) -> jax.Array:
    """First index whose cumulative probability reaches u, for cdf [..., V] and u [...]."""
    return jnp.minimum((cdf < u[..., None]).sum(-1), cdf.shape[-1] - 1)


def inverse_cdf(p: jax.Array, u: jax.Array) -> jax.Array:
    """Sample index from probabilities p [..., V] with one uniform u [...] each (cheap on CPU)."""
    return _cdf_index(_cdf(p), u)


def rollout_counts(lz: jax.Array, la: jax.Array, u: jax.Array) -> jax.Array:
    """Counts [B, R, K] of N rollouts (z, a) per prompt, drawn from the joint with uniforms u [B, N].

    Every per-rollout quantity of GRPO on a toy (reward, advantage, ratio, clipped objective) is a
    function of the outcome (z, a) and of the group's votes, which are themselves counts; so a group
    is summarised exactly by its outcome counts, and the step works on [B, R, K] tables instead of
    [B, N, R, K] one-hots (N times less work; same samples as drawing rollout by rollout).
    """
    B, R, K = la.shape
    cdf = _cdf(jnp.exp(lz[..., None] + la).reshape(B, R * K))  # once per prompt, shared by its N draws
    idx = _cdf_index(cdf[:, None, :], u)  # [B, N] joint outcome
    return (idx[..., None] == jnp.arange(R * K)).sum(1).reshape(B, R, K).astype(la.dtype)


def group_mean(counts: jax.Array, table: jax.Array) -> jax.Array:
    """Mean over each group's rollouts of a per-outcome table [B, R, K] -> [B]."""
    return (counts * table).sum((-2, -1)) / counts.sum((-2, -1))


def group_advantages(counts: jax.Array, r: jax.Array, std_eps: float) -> jax.Array:
    """GRPO advantages (r - mean) / (std + eps) per outcome [B, R, K]; population std over the group's
    rollouts, as `jnp.std` over the N rewards."""
    mean = group_mean(counts, r)[:, None, None]
    std = jnp.sqrt(group_mean(counts, jnp.square(r - mean)))[:, None, None]
    return (r - mean) / (std + std_eps)


def clipped_objective(logj: jax.Array, old: jax.Array, adv: jax.Array, counts: jax.Array, clip_eps: float):
    """PPO/GRPO clipped surrogate, mean over all rollouts, from outcome tables [B, R, K]: joint log-probs
    now (`logj`) and at sampling (`old`), advantages, and rollout counts."""
    # unsampled outcomes carry no weight; keep their exponent at 0 so nothing overflows
    ratio = jnp.exp(jnp.where(counts > 0, logj - old, 0.0))
    clipped = jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps)
    return (counts * jnp.minimum(ratio * adv, clipped * adv)).sum() / counts.sum()


def make_train(config: GRPOConfig):
    """Build a jittable `train(key, prior) -> (final params, Metrics)`."""
    cfg = config
    caps = (cfg.rho, cfg.t_max)

    def train(key: jax.Array, prior: Prior):
        P = prior.c.shape[0]
        B, N = min(cfg.batch_size, P), cfg.num_rollouts
        Bm = B // cfg.num_minibatches
        mode0 = jnp.argmax(answer_marginal(*log_policy(init_params(prior), prior, *caps)), -1)

        def step(params: Params, key):
            k_idx, k_roll = jax.random.split(key)
            # one of the P // B fixed blocks of prompts, uniformly (prompts of a toy prior are i.i.d.)
            start = B * jax.random.randint(k_idx, (), 0, P // B)
            lz, la = _rows(params, prior, start, B, caps)
            c = jax.lax.dynamic_slice_in_dim(prior.c, start, B)
            counts = rollout_counts(lz, la, jax.random.uniform(k_roll, (B, N)))
            votes = counts.sum(1) / N
            table = lambda name: jax.vmap(lambda *x: R.reward_table(name, *x))(lz, la, c, votes)
            r = table(cfg.reward)
            gt = table("ground_truth")
            r_mv = r if cfg.reward == "majority_vote" else table("majority_vote")
            adv = group_advantages(counts, r, cfg.std_eps)
            old = lz[..., None] + la

            def loss(p: Params, off: jax.Array) -> jax.Array:
                lz_n, la_n = _rows(p, prior, start + off, Bm, caps)
                n_b, old_b, adv_b = (jax.lax.dynamic_slice_in_dim(x, off, Bm) for x in (counts, old, adv))
                return -clipped_objective(lz_n[..., None] + la_n, old_b, adv_b, n_b, cfg.clip_eps)

            def mb_step(p: Params, mb):
                g = jax.grad(loss)(p, mb)
                g = g._replace(b=g.b * cfg.learn_shared, w=g.w * cfg.learn_shared)
                return jax.tree.map(lambda x, d: x - cfg.lr * d, p, g), None

            if cfg.num_minibatches == 1:
                params, _ = mb_step(params, jnp.int32(0))
            else:
                params, _ = jax.lax.scan(mb_step, params, Bm * jnp.arange(cfg.num_minibatches))
            pool = answer_marginal(*log_policy(params, prior, *caps))
            metrics = Metrics(
                accuracy=jnp.take_along_axis(pool, prior.c[:, None], -1).mean(),
                proxy_reward=group_mean(counts, r).mean(), gt_reward=group_mean(counts, gt).mean(),
                reward_accuracy=group_mean(counts, (r_mv == gt).astype(r.dtype)).mean(),
                mode_kept=(jnp.argmax(pool, -1) == mode0).mean(),
                entropy=R.entropy(jnp.log(jnp.clip(pool, 1e-30))).mean(),
            )
            return params, metrics

        return jax.lax.scan(step, init_params(prior), jax.random.split(key, cfg.steps))

    return train


@lru_cache(maxsize=None)
def batched_train(config: GRPOConfig):
    """Shared jitted runner `(keys [S, 2], priors [M, ...]) -> (params, Metrics [M, S, steps])`.

    Priors are array inputs (vmapped, not static), so one compile per config serves every prior and
    seed; the cache is keyed by the (hashable) config and shared by checks, tests and notebooks.
    """
    train = make_train(config)
    # Toy arrays are many tiny rows (K ~ 8 answers), where XLA:CPU's YNNPACK fusions are slower than its own loops.
    return jax.jit(jax.vmap(jax.vmap(train, (0, None)), (None, 0)),
                   compiler_options=compiler_options(ynn_fusions=YNN_NONE))


def stack_priors(priors: list[Prior]) -> Prior:
    """Stack same-shape priors along a new leading axis (for `batched_train`)."""
    return jax.tree.map(lambda *x: jnp.stack(x), *priors)


def collapse_step(reward_accuracy: jax.Array, threshold: float = 0.01) -> jax.Array:
    """Model Collapse Step: first step with reward accuracy < threshold; len(steps) if never."""
    below = reward_accuracy < threshold
    return jnp.where(below.any(), jnp.argmax(below), reward_accuracy.shape[-1])
