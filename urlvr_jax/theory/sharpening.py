"""Exact sharpening on the two-step sequence toy: which distribution does each reward sharpen?

The paper's claim (Sec. 3, Prop. 1) is about the *initial distribution over full trajectories*
y = (z, a): a certainty reward that is monotone in pi(y) (probability, trajectory entropy) makes
confidence self-reinforcing, so the KL-optimal iteration keeps the argmax sequence and lowers the
sequence entropy. Ensemble rewards (majority vote, self-consistency) act on the answer marginal.
Both levels are measured here for every reward, under the exact KL iteration (the paper's update)
and under the exact expected policy-gradient flow on the softmax parametrisation (for reference).

Why self-certainty and token entropy keep the argmax on only about half of the prompts (a property of these
rewards, not a bug): their reward r(z, a) = f(pi(.|z)) scores the *distribution* the model is in after the prefix
z, never the token it samples, so it is constant in the answer a. The KL tilt pi_{k+1} ∝ pi_k e^{r/beta} then
leaves pi(a|z) unchanged and re-weights only the branches: pi_k(z) ∝ pi_0(z) e^{k f(pi_0(.|z))/beta}. Mass moves
to the most *certain* branch, whatever its probability, and the argmax sequence (and answer) changes whenever it
lay in a less certain branch. Prop. 1 needs r monotone in pi(y), which these rewards are not.
`argmax_flip_example` works this out on 2 branches x 3 answers; `certainty_tilt_shares` checks the closed form
on the report's sequence toy.
"""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp

from urlvr_jax.theory import rewards as R
from urlvr_jax.theory.dynamics import exact_reward_fn, kl_iteration, pg_flow
from urlvr_jax.theory.toys import Prior, init_params, log_policy, sequence_prior

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


# Worked example: branch 0 is likely but unsure, branch 1 unlikely but sure; answer 0 (A) is correct.
FLIP_PI_Z = (0.7, 0.3)
FLIP_PI_A = ((0.7, 0.2, 0.1), (0.02, 0.96, 0.02))
FLIP_REWARDS = ("majority_vote", "probability", "self_certainty", "token_entropy")


def argmax_flip_example(names: tuple[str, ...] = FLIP_REWARDS, steps: int = 4, beta: float = 1.0) -> dict:
    """Exact KL iteration on one prompt with 2 reasoning branches z and 3 answers (`FLIP_PI_Z`, `FLIP_PI_A`).

    Initially the likeliest sequence is (z=0, A) = 0.49 and the answer marginal is A 0.496 > B 0.428 > C 0.076,
    but B sits in the low-entropy branch z=1. Returns plain numbers: for each reward, the reward per branch and
    answer, and per step pi(z), the answer marginal, the argmax sequence (z, a) and the argmax answer, plus the
    first step at which each argmax differs from the initial one (None if never).
    """
    prior = Prior(jnp.log(jnp.array(FLIP_PI_Z))[None], jnp.log(jnp.array(FLIP_PI_A))[None], jnp.array([0]),
                  jnp.zeros(len(FLIP_PI_A[0])))
    lz, la = log_policy(init_params(prior), prior)
    K = la.shape[-1]
    out = {"pi_z": list(FLIP_PI_Z), "pi_a_given_z": [list(r) for r in FLIP_PI_A], "correct": 0,
           "entropy_a_given_z": [float(x) for x in R.entropy(la[0])], "rewards": {}}
    for name in names:
        fn = exact_reward_fn(name)
        lzs, las = kl_iteration(prior, fn, beta, steps)
        joint = jnp.exp(lzs[:, 0, :, None] + las[:, 0])  # [steps + 1, R, K]
        traj = [divmod(int(i), K) for i in jnp.argmax(joint.reshape(steps + 1, -1), -1)]
        ans = [int(i) for i in jnp.argmax(joint.sum(-2), -1)]
        first = lambda xs: next((k for k, x in enumerate(xs) if x != xs[0]), None)
        out["rewards"][name] = {
            "reward": [[float(v) for v in row] for row in fn(lz[0], la[0], prior.c[0])],
            "pi_z": [[float(v) for v in row] for row in jnp.exp(lzs[:, 0])],
            "answer": [[float(v) for v in row] for row in joint.sum(-2)],
            "argmax_sequence": traj, "argmax_answer": ans,
            "sequence_flip_step": first(traj), "answer_flip_step": first(ans)}
    return out


def certainty_tilt_shares(name: str = "self_certainty", num_prompts: int = 200, steps: int = 30, beta: float = 1.0,
                          seed: int = 3) -> dict:
    """For a branch-level reward (self-certainty, token entropy) on the report's sequence toy (same prior and
    settings as `sharpening_table`): the share of prompts whose argmax sequence is kept after `steps` KL steps, by
    the iteration and by the closed form pi_k(z) ∝ pi_0(z) e^{k r(z)/beta}, pi_k(a|z) = pi_0(a|z); the k -> infinity
    limit (the argmax sequence already lies in the most certain branch); and the largest change of pi(a|z) during
    the iteration (~0: the answer step is never sharpened)."""
    prior = sequence_prior(jax.random.PRNGKey(seed), num_prompts, 3, 5)
    lz, la = log_policy(init_params(prior), prior)
    table = jax.vmap(exact_reward_fn(name))(lz, la, prior.c)  # [P, R, K]
    if float(jnp.ptp(table, -1).max()) > 1e-6:
        raise ValueError(f"{name!r} depends on the sampled answer; the closed form is for branch-level rewards")
    r = table[..., 0]  # [P, R]
    lzs, las = kl_iteration(prior, exact_reward_fn(name), beta, steps)
    flat = lambda lz_, la_: jnp.argmax((lz_[..., None] + la_).reshape(num_prompts, -1), -1)
    start = flat(lz, la)
    closed = flat(jax.nn.log_softmax(lz + steps * r / beta, -1), la)
    return {"kept_iteration": float((flat(lzs[-1], las[-1]) == start).mean()),
            "kept_closed_form": float((closed == start).mean()),
            "kept_limit": float((start // la.shape[-1] == jnp.argmax(r, -1)).mean()),
            "answer_step_change": float(jnp.abs(jnp.exp(las[-1]) - jnp.exp(la)).max())}
