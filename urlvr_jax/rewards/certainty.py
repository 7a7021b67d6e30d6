"""Intrinsic certainty-based rewards, from the sampler's per-token statistics.

Each score is a pure, jittable ``(stat [B, T], mask [B, T]) -> [B]`` function; positions where
``mask`` is False are ignored (an empty response gets a mean of 0 and a probability of 1):

* self-certainty  mean_t [logsumexp z_t - mean z_t]  = mean_t KL(U || pi_t) + log V (Intuitor);
  pass ``vocab_size`` to subtract the constant log V (it cancels in GRPO's group normalisation);
* token-level entropy  -mean_t H(pi_t) (EM-RL token, RENT);
* trajectory-level entropy  mean_t log pi(y_t) (EM-RL sequence);
* probability  exp(sum_t log pi(y_t)) (RLSC; underflows to 0 in float32 for long responses, as in
  the reference code);
* probability disparity  mean over answer tokens of top-1 minus top-2 probability (RLSF); the
  tokens are ``answer_mask`` & ``mask`` (the whole response by default); no answer token gives 0.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from urlvr_jax.rewards.batch import RewardBatch
from urlvr_jax.rewards.registry import register_reward

ScoreFn = Callable[[jax.Array, jax.Array], jax.Array]


def masked_sum(x: jax.Array, mask: jax.Array) -> jax.Array:
    """[B] sum over the last axis of ``x`` where ``mask``."""
    return jnp.sum(jnp.where(mask, x.astype(jnp.float32), 0.0), axis=-1)


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """[B] mean over the last axis of ``x`` where ``mask`` (0 for an all-False row)."""
    count = jnp.sum(mask.astype(jnp.float32), axis=-1)
    return masked_sum(x, mask) / jnp.maximum(count, 1.0)


@jax.jit
def self_certainty_score(self_certainty: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean over response tokens of logsumexp(z) - mean(z) (= KL(U || pi_t) + log V)."""
    return masked_mean(self_certainty, mask)


@jax.jit
def token_entropy_score(entropy: jax.Array, mask: jax.Array) -> jax.Array:
    """Minus the mean per-token entropy H(pi_t)."""
    return -masked_mean(entropy, mask)


@jax.jit
def trajectory_entropy_score(logprobs: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean log-probability of the sampled tokens (minus the Monte-Carlo trajectory entropy)."""
    return masked_mean(logprobs, mask)


@jax.jit
def probability_score(logprobs: jax.Array, mask: jax.Array) -> jax.Array:
    """Probability of the whole response, exp(sum_t log pi(y_t))."""
    return jnp.exp(masked_sum(logprobs, mask))


@jax.jit
def probability_disparity_score(margin: jax.Array, answer_mask: jax.Array) -> jax.Array:
    """Mean top-1 minus top-2 probability over the answer tokens."""
    return masked_mean(margin, answer_mask)


def _score(batch: RewardBatch, stat: str, score_fn: ScoreFn) -> np.ndarray:
    value, mask = batch.token_stat(stat)
    return np.asarray(score_fn(jnp.asarray(value), jnp.asarray(mask)), dtype=np.float32)


@register_reward("self_certainty", kind="certainty")
def self_certainty(batch: RewardBatch, vocab_size: int | None = None) -> np.ndarray:
    """Self-certainty; with ``vocab_size`` the exact mean KL(U || pi_t) (log V subtracted)."""
    scores = _score(batch, "self_certainty", self_certainty_score)
    if vocab_size is not None:
        if vocab_size < 1:
            raise ValueError(f"self_certainty: vocab_size must be >= 1, got {vocab_size}")
        has_tokens = batch.token_stat("self_certainty")[1].any(axis=1)
        scores = np.where(has_tokens, scores - np.float32(math.log(vocab_size)), 0.0).astype(np.float32)
    return scores


@register_reward("token_entropy", kind="certainty")
def token_entropy(batch: RewardBatch) -> np.ndarray:
    """Token-level entropy reward, -mean_t H(pi_t)."""
    return _score(batch, "entropy", token_entropy_score)


@register_reward("trajectory_entropy", kind="certainty")
def trajectory_entropy(batch: RewardBatch) -> np.ndarray:
    """Trajectory-level entropy reward, mean_t log pi(y_t)."""
    return _score(batch, "logprobs", trajectory_entropy_score)


@register_reward("probability", kind="certainty")
def probability(batch: RewardBatch) -> np.ndarray:
    """Probability reward, prod_t pi(y_t)."""
    return _score(batch, "logprobs", probability_score)


@register_reward("probability_disparity", kind="certainty")
def probability_disparity(batch: RewardBatch) -> np.ndarray:
    """Probability disparity over the answer tokens (``answer_mask``, default the response)."""
    return _score(batch, "margin", probability_disparity_score)
