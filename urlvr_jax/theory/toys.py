"""Toy policies for the URLVR theory checks, as pure JAX functions.

Three toys share one parametrisation. A prompt m first emits a reasoning token z in {0..R-1},
then an answer a in {0..K-1}:

    log pi(z | m)    = log_softmax(s_z[m] + rho * u_z[m])
    log pi(a | m, z) = log_softmax(s_a[m, z] + rho * u_a[m, z] + b)

- tabular: R = 1 and the shared bias b is frozen (every prompt has its own logits);
- sequence: R >= 2, so token-level certainty rewards differ between samples;
- coupled: b is learnable and shared across prompts, so an update on one prompt moves all
  the others; b starts at kappa on answer 0, the "default answer" that is never correct.
s are frozen prior logits ("pretrained knowledge"), u are per-prompt learnable logits (capacity).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

DEFAULT_ANSWER = 0
W_INIT = 0.0  # the sharpening scale 1 + t_max * (2 sigmoid(w) - 1) starts at 1


class Prior(NamedTuple):
    """Frozen prior of a toy: logits s_z [P, R], s_a [P, R, K], correct answer c [P], bias b0 [K]."""

    s_z: jax.Array
    s_a: jax.Array
    c: jax.Array
    b0: jax.Array


class Params(NamedTuple):
    """Learnable parameters: per-prompt logits u_z [P, R], u_a [P, R, K], shared answer bias b [K],
    shared sharpening w (scalar): the prior answer logits are scaled by 1 + t_max (2 sigmoid(w) - 1)."""

    u_z: jax.Array
    u_a: jax.Array
    b: jax.Array
    w: jax.Array


def init_params(prior: Prior) -> Params:
    """Parameters at which the policy equals the prior."""
    return Params(jnp.zeros_like(prior.s_z), jnp.zeros_like(prior.s_a), prior.b0, jnp.asarray(W_INIT))


def log_policy(
    params: Params, prior: Prior, rho: float = 1.0, t_max: float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """Return log pi(z|m) [P, R] and log pi(a|m, z) [P, R, K]."""
    tau = 1.0 + t_max * (2.0 * jax.nn.sigmoid(params.w) - 1.0)
    lz = jax.nn.log_softmax(prior.s_z + rho * params.u_z, axis=-1)
    la = jax.nn.log_softmax(tau * prior.s_a + rho * params.u_a + params.b, axis=-1)
    return lz, la


def joint_probs(lz: jax.Array, la: jax.Array) -> jax.Array:
    """Joint pi(z, a | m) [P, R, K]."""
    return jnp.exp(lz[..., None] + la)


def answer_marginal(lz: jax.Array, la: jax.Array) -> jax.Array:
    """Answer marginal pi(a | m) [P, K]."""
    return joint_probs(lz, la).sum(-2)


def accuracy(lz: jax.Array, la: jax.Array, c: jax.Array) -> jax.Array:
    """Mean pass@1 = mean_m pi(c_m | m)."""
    p = answer_marginal(lz, la)
    return jnp.take_along_axis(p, c[:, None], -1).mean()


def tabular_prior(
    key: jax.Array, num_prompts: int, num_answers: int, aligned_frac: float, margin: float,
    num_forms: int = 1, num_reasoning: int = 1, noise: float = 0.5,
) -> tuple[Prior, jax.Array]:
    """Per-prompt prior with an exact share of aligned prompts (initial mode = correct).

    Each answer has `num_forms` surface forms; the policy's "answers" are the K*F forms and
    `form_to_answer` [K*F] maps a form to its answer class. Aligned prompts put the correct answer
    `margin` (in logits) above the best wrong one; misaligned prompts put a wrong answer `margin`
    above the correct one. Returns (prior over forms, form_to_answer).
    """
    k_c, k_w, k_n, k_z, k_f = jax.random.split(key, 5)
    K, F, P = num_answers, num_forms, num_prompts
    c = jax.random.randint(k_c, (P,), 1, K)
    wrong = (c + jax.random.randint(k_w, (P,), 1, K)) % K
    base = noise * jax.random.normal(k_n, (P, K))
    aligned = jnp.arange(P) < jnp.round(aligned_frac * P)
    top = base.max(-1) + margin
    mode = jnp.where(aligned, c, wrong)
    logits = base.at[jnp.arange(P), mode].set(top)
    second = jnp.where(aligned, wrong, c)
    logits = logits.at[jnp.arange(P), second].set(top - margin)
    # spread each answer's mass over its surface forms (log-weights inside the class)
    form_w = jax.nn.log_softmax(jax.random.normal(k_f, (P, K, F)), axis=-1)
    form_logits = (logits[:, :, None] + form_w).reshape(P, K * F)
    s_a = jnp.broadcast_to(form_logits[:, None, :], (P, num_reasoning, K * F))
    s_z = jax.random.normal(k_z, (P, num_reasoning))
    prior = Prior(s_z, s_a, c, jnp.zeros(K * F))
    return prior, jnp.repeat(jnp.arange(K), F)


def sequence_prior(
    key: jax.Array, num_prompts: int, num_reasoning: int, num_answers: int, scale: float = 1.5,
) -> Prior:
    """Random two-step prior: the reasoning token changes both the answer and its certainty."""
    k_z, k_a, k_t, k_c = jax.random.split(key, 4)
    P, R, K = num_prompts, num_reasoning, num_answers
    temp = jnp.exp(jax.random.normal(k_t, (P, R, 1)))  # per-branch sharpness
    s_a = scale * temp * jax.random.normal(k_a, (P, R, K))
    s_z = scale * jax.random.normal(k_z, (P, R))
    c = jax.random.randint(k_c, (P,), 0, K)
    return Prior(s_z, s_a, c, jnp.zeros(K))


def coupled_prior(
    key: jax.Array, num_prompts: int, num_answers: int, mu: float, kappa: float,
    sigma: float = 1.5, nu: float = 1.0,
) -> Prior:
    """Coupled-toy prior: correct logit g ~ N(mu, sigma), wrong logits ~ N(0, nu), default answer 0.

    Alignment (share of prompts whose initial mode is correct) grows with `mu` (prior knowledge)
    and falls with `kappa`, the initial shared bias on the default answer (attractor strength).
    """
    k_c, k_w, k_g = jax.random.split(key, 3)
    P, K = num_prompts, num_answers
    c = jax.random.randint(k_c, (P,), 1, K)
    s = nu * jax.random.normal(k_w, (P, K))
    g = mu + sigma * jax.random.normal(k_g, (P,))
    s = s.at[jnp.arange(P), c].set(g).at[:, DEFAULT_ANSWER].set(0.0)
    return Prior(jnp.zeros((P, 1)), s[:, None, :], c, jnp.zeros(K).at[DEFAULT_ANSWER].set(kappa))


def aligned_share(prior: Prior, form_to_answer: jax.Array | None = None) -> jax.Array:
    """Share of prompts whose initial answer-class mode is the correct answer."""
    lz, la = log_policy(init_params(prior), prior)
    p = answer_marginal(lz, la)
    if form_to_answer is not None:
        p = class_probs(p, form_to_answer)
    return (jnp.argmax(p, -1) == prior.c).mean()


def class_probs(p_forms: jax.Array, form_to_answer: jax.Array, num_classes: int | None = None) -> jax.Array:
    """Sum surface-form probabilities into answer-class probabilities [..., K] (pass `num_classes`
    under jit)."""
    K = int(form_to_answer.max()) + 1 if num_classes is None else num_classes
    return p_forms @ jax.nn.one_hot(form_to_answer, K)
