"""Toy rewards: every intrinsic reward of the paper plus ground truth, for one prompt.

A reward is a table r[z, a] over the toy's outcomes (reasoning token z, answer a), computed from
the current policy (log pi(z) [R], log pi(a|z) [R, K]) and an answer distribution `p_vote` [K]
used by the ensemble rewards: the exact answer marginal (N -> infinity) or the empirical vote
shares of N rollouts. A sampled rollout's reward is the table's entry at its outcome.

Each reward is written twice: directly (`reward_table`) and in the paper's unified form
r = psi(sigma / |I| * sum_{i in I} H(q_i, pi_i)) (`unified_reward_table`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

INTRINSIC = ("majority_vote", "self_consistency", "self_certainty", "token_entropy",
             "trajectory_entropy", "probability")
REWARDS = INTRINSIC + ("ground_truth",)


def entropy(logp: jax.Array) -> jax.Array:
    """Shannon entropy over the last axis."""
    return -(jnp.exp(logp) * logp).sum(-1)


def cross_entropy(q: jax.Array, logp: jax.Array) -> jax.Array:
    """H(q, p) = -sum_v q(v) log p(v) over the last axis."""
    return -(q * logp).sum(-1)


def kl_uniform(logp: jax.Array) -> jax.Array:
    """KL(U || p) over the last axis."""
    V = logp.shape[-1]
    return -logp.mean(-1) - jnp.log(V)


def reward_table(name: str, lz: jax.Array, la: jax.Array, c: jax.Array, p_vote: jax.Array) -> jax.Array:
    """Direct definitions; returns r [R, K]."""
    R, K = la.shape
    if name == "majority_vote":
        r = (jnp.arange(K) == jnp.argmax(p_vote)).astype(la.dtype)
        return jnp.broadcast_to(r, (R, K))
    if name == "self_consistency":
        return jnp.broadcast_to(p_vote, (R, K))
    if name == "ground_truth":
        return jnp.broadcast_to((jnp.arange(K) == c).astype(la.dtype), (R, K))
    if name == "self_certainty":
        r = 0.5 * (kl_uniform(lz) + kl_uniform(la))
        return jnp.broadcast_to(r[:, None], (R, K))
    if name == "token_entropy":
        r = -0.5 * (entropy(lz) + entropy(la))
        return jnp.broadcast_to(r[:, None], (R, K))
    if name == "trajectory_entropy":
        return 0.5 * (lz[:, None] + la)
    if name == "probability":
        return jnp.exp(lz[:, None] + la)
    raise ValueError(f"unknown reward {name!r}")


def unified_reward_table(name: str, lz: jax.Array, la: jax.Array, c: jax.Array, p_vote: jax.Array) -> jax.Array:
    """Unified form psi(sigma * mean_{i in I} H(q_i, pi_i)); returns r [R, K].

    Token-level I = {z, a}: anchors U (sigma=+1, self-certainty), pi_t itself (token entropy),
    delta at the generated token (trajectory entropy; probability = exp of the sum).
    Answer-level I = {A} with pi_A = p_vote: anchor delta_a (self-consistency: psi = exp;
    majority vote: psi(x) = 1[x >= max_b log p_vote(b)]). Ground truth: anchor delta_c on pi_A = delta_a.
    """
    R, K = la.shape
    eye_z, eye_a = jnp.eye(R), jnp.eye(K)
    if name == "self_certainty":
        h = 0.5 * (cross_entropy(jnp.full(R, 1.0 / R), lz)[None] + cross_entropy(jnp.full(K, 1.0 / K), la))
        psi = h - 0.5 * (jnp.log(R) + jnp.log(K))  # psi: shift by the constant log|V|
        return jnp.broadcast_to(psi[:, None], (R, K))
    if name == "token_entropy":
        h = 0.5 * (cross_entropy(jnp.exp(lz), lz) + cross_entropy(jnp.exp(la), la))
        return jnp.broadcast_to(-h[:, None], (R, K))
    # delta anchors at the generated tokens: H(delta_y, pi) = -log pi(y)
    h_z = cross_entropy(eye_z[:, None, :], lz[None, None, :])  # [R, 1]
    h_a = cross_entropy(eye_a[None, :, :], la[:, None, :])  # [R, K]
    h_tok = 0.5 * (h_z + h_a)
    if name == "trajectory_entropy":
        return -h_tok
    if name == "probability":
        return jnp.exp(-2.0 * h_tok)  # psi = exp(|I| x): a sum, not a mean
    log_vote = jnp.log(jnp.clip(p_vote, 1e-30))
    h_ans = cross_entropy(eye_a, log_vote[None, :])  # [K]: H(delta_a, p_vote)
    if name == "self_consistency":
        return jnp.broadcast_to(jnp.exp(-h_ans), (R, K))
    if name == "majority_vote":
        r = (-h_ans >= log_vote.max()).astype(la.dtype)
        return jnp.broadcast_to(r, (R, K))
    if name == "ground_truth":
        h_gt = cross_entropy(eye_a[c], jnp.log(jnp.clip(eye_a, 1e-30)))  # H(delta_c, delta_a)
        return jnp.broadcast_to((h_gt < 1.0).astype(la.dtype), (R, K))
    raise ValueError(f"unknown reward {name!r}")


def exact_reward_table(name: str, lz: jax.Array, la: jax.Array, c: jax.Array) -> jax.Array:
    """Reward table with N -> infinity votes (p_vote = exact answer marginal)."""
    p_vote = jnp.exp(lz[:, None] + la).sum(0)
    return reward_table(name, lz, la, c, p_vote)
