"""Exact sharpening on the two-step sequence toy: which distribution does each reward sharpen?

The paper's claim (Sec. 3, Prop. 1) is about the *initial distribution over full trajectories*
y = (z, a): a certainty reward that is monotone in pi(y) (probability, trajectory entropy) makes
confidence self-reinforcing, so the KL-optimal iteration keeps the argmax sequence and lowers the
sequence entropy. Ensemble rewards (majority vote, self-consistency) act on the answer marginal.
Both levels are measured here for every reward, under the exact KL iteration (the paper's update)
and under the exact expected policy-gradient flow on the softmax parametrisation (for reference).
"""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp

from urlvr_jax.theory import rewards as R
from urlvr_jax.theory.dynamics import exact_reward_fn, kl_iteration, pg_flow
from urlvr_jax.theory.toys import Prior, sequence_prior

LEVELS = ("trajectory", "answer")
DYNAMICS = ("kl", "pg")


def _entropy(p: jax.Array) -> jax.Array:
    return -(p * jnp.log(jnp.clip(p, 1e-30))).sum(-1)


def _kept_and_down(p0: jax.Array, p1: jax.Array) -> jax.Array:
    """Per-prompt [2, P]: (argmax kept, entropy strictly lower)."""
    return jnp.stack([jnp.argmax(p0, -1) == jnp.argmax(p1, -1), _entropy(p1) < _entropy(p0)])


def _levels(lzs: jax.Array, las: jax.Array) -> jax.Array:
    """[levels, 2, P] booleans from the first and last policy of a run."""
    joint = jnp.exp(lzs[:, :, :, None] + las)  # [T, P, R, K]
    traj = joint.reshape(*joint.shape[:2], -1)
    ans = joint.sum(-2)
    return jnp.stack([_kept_and_down(traj[0], traj[-1]), _kept_and_down(ans[0], ans[-1])])


@lru_cache(maxsize=None)
def _sweep_fn(names: tuple[str, ...], beta: float, lr: float, steps: int):
    """One jitted program for every reward and both dynamics (one compile per setting)."""
    def sweep(prior: Prior) -> jax.Array:
        out = []
        for name in names:
            fn = exact_reward_fn(name)
            kl = _levels(*kl_iteration(prior, fn, beta, steps))
            pg = _levels(*pg_flow(prior, fn, lr, steps))
            out.append(jnp.stack([kl, pg]))
        return jnp.stack(out)  # [names, dynamics, levels, 2, P]
    return jax.jit(sweep)


@lru_cache(maxsize=8)
def sharpening_table(names: tuple[str, ...] = R.INTRINSIC, num_prompts: int = 200, steps: int = 30,
                     beta: float = 1.0, lr: float = 1.0, seed: int = 3) -> dict:
    """{name: {(dynamics, level): (share argmax kept, share entropy down, share both)}}."""
    prior = sequence_prior(jax.random.PRNGKey(seed), num_prompts, 3, 5)
    flags = _sweep_fn(tuple(names), beta, lr, steps)(prior)
    both = flags.all(-2).mean(-1)
    share = flags.mean(-1)
    table = {}
    for i, name in enumerate(names):
        table[name] = {(d, lvl): (float(share[i, j, k, 0]), float(share[i, j, k, 1]), float(both[i, j, k]))
                       for j, d in enumerate(DYNAMICS) for k, lvl in enumerate(LEVELS)}
    return table
