"""GRPO policy loss, loss aggregation and the combined loss terms, as pure functions of arrays.

Shapes: ``logprobs``, ``old_logprobs``, ``ref_logprobs``, ``entropy``, ``mask`` are [B, T] (mask bool or 0/1);
``advantages`` is [B] (one scalar per completion, broadcast over tokens) or [B, T].

**Aggregation returns (sum, denominator).** The loss of a batch is ``sum / denominator``. Both parts are additive
over rows, so micro-batches accumulate sums and denominators separately and divide once at the end, which gives
exactly the full-batch loss and gradient (the denominators do not depend on the parameters). Modes (m = mask,
L = per-token loss, i = sequence, t = token):

* ``token-mean``:              (sum_i,t m L,                         sum_i,t m)   = verl token-mean, TRL ``dapo``
* ``seq-mean-token-mean``:     (sum_i (sum_t m L / sum_t m),         n_seq)       = verl, TRL ``grpo``
* ``seq-mean-token-sum``:      (sum_i,t m L,                         n_seq)       = verl
* ``seq-mean-token-sum-norm``: (sum_i,t m L / norm_length,           n_seq)       = TRL ``dr_grpo``, Dr. GRPO

``n_seq`` counts rows with at least one valid token, so all-padding rows (used to keep shapes static) do not
dilute the mean (``count_empty_rows=True``: every row counts, n_seq = B, as TRL's ``.mean()`` over rows).
``norm_length`` is a *constant*, the maximum response length (Dr. GRPO's MAX_TOKENS, verl's ``L_const``, TRL's
``max_completion_length``); it defaults to T = mask.shape[-1], so pass it explicitly when micro-batches may be
padded to different widths (the training loop passes ``rollout.max_new_tokens``). verl's ``seq-mean-token-sum-norm``
divides by ``norm_length`` only (not by the number of sequences), i.e. it equals ours times n_seq; we follow TRL's
``dr_grpo`` and the Dr. GRPO paper (1 / (B L)).

**Policy loss** ``vanilla`` (alias ``ppo_clip``, verl ``compute_policy_loss_vanilla``): with
w = exp(clamp(log pi - log pi_old, +-log_ratio_clamp)),
L = max(-A w, -A clip(w, 1 - eps_low, 1 + eps_high)); with ``dual_clip_c`` = c and A < 0, L = min(L, -A c).

**Total loss** = policy + kl_coef * KL(pi || pi_ref) - entropy_coef * entropy, all aggregated with the same mode
and mask, so they share one denominator and ``terms["loss"]`` is again a (sum, denominator) pair whose sum a
train step differentiates per micro-batch (see :func:`grpo_loss_terms`). With ``kl_ratio`` (TRL's
``use_bias_correction_kl``) the per-token KL is multiplied by the importance ratio w (not stopped: its gradient is
part of the term, so even on-policy, w = 1, the gradient differs by KL * grad log pi).

**Peers' conventions** (see :mod:`urlvr_jax.rl.conventions`): ``count_empty_rows``, ``kl_ratio`` and
``normalize_per_micro_batch`` (each micro-batch's loss is its own sum / denominator, and the update averages the
micro-batches: TRL's ``bnpo`` divided by ``gradient_accumulation_steps``) reproduce TRL's objective; all three off
(the defaults) normalise once over the whole mini-batch.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from urlvr_jax.rl.kl import KL_ESTIMATORS, kl_penalty
from urlvr_jax.rl.registry import Registry

Pair = tuple[jax.Array, jax.Array]
# fn(per_token [B, T], mask [B, T] float, norm_length, count_empty_rows) -> (sum, denominator)
AggregationFn = Callable[[jax.Array, jax.Array, float, bool], Pair]

AGGREGATIONS: Registry[AggregationFn] = Registry("loss aggregation mode")
register_aggregation = AGGREGATIONS.register


def _seq_stats(per_token: jax.Array, mask: jax.Array, count_empty_rows: bool
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(per-sequence masked sums [B], per-sequence token counts [B], number of sequences: the non-empty ones, or
    all B rows with ``count_empty_rows``)."""
    seq_sum = jnp.sum(per_token * mask, axis=-1)
    seq_len = jnp.sum(mask, axis=-1)
    n_seq = float(mask.shape[0]) if count_empty_rows else jnp.sum((seq_len > 0).astype(jnp.float32))
    return seq_sum, seq_len, n_seq


@register_aggregation("token-mean")
def _token_mean(per_token: jax.Array, mask: jax.Array, norm_length: float, count_empty_rows: bool) -> Pair:
    return jnp.sum(per_token * mask), jnp.sum(mask)


@register_aggregation("seq-mean-token-mean")
def _seq_mean_token_mean(per_token: jax.Array, mask: jax.Array, norm_length: float, count_empty_rows: bool) -> Pair:
    seq_sum, seq_len, n_seq = _seq_stats(per_token, mask, count_empty_rows)
    return jnp.sum(seq_sum / jnp.maximum(seq_len, 1.0)), n_seq


@register_aggregation("seq-mean-token-sum")
def _seq_mean_token_sum(per_token: jax.Array, mask: jax.Array, norm_length: float, count_empty_rows: bool) -> Pair:
    seq_sum, _, n_seq = _seq_stats(per_token, mask, count_empty_rows)
    return jnp.sum(seq_sum), n_seq


@register_aggregation("seq-mean-token-sum-norm")
def _seq_mean_token_sum_norm(per_token: jax.Array, mask: jax.Array, norm_length: float,
                             count_empty_rows: bool) -> Pair:
    seq_sum, _, n_seq = _seq_stats(per_token, mask, count_empty_rows)
    return jnp.sum(seq_sum) / norm_length, n_seq


def aggregate(per_token: jax.Array, mask: jax.Array, mode: str, *, norm_length: float | None = None,
              count_empty_rows: bool = False, normalize_per_micro_batch: bool = False) -> Pair:
    """Aggregates a per-token [B, T] quantity into a (sum, denominator) pair of float32 scalars (see module doc).

    ``normalize_per_micro_batch``: returns (sum / denominator, 1) (0 for an empty denominator), so accumulating
    micro-batches averages their losses instead of pooling their denominators.
    """
    fn = AGGREGATIONS.get(mode)
    mask = jnp.asarray(mask, jnp.float32)
    per_token = jnp.where(mask > 0, jnp.asarray(per_token, jnp.float32), 0.0)  # no NaN/inf leaks from padding
    length = float(mask.shape[-1]) if norm_length is None else norm_length
    total, denom = fn(per_token, mask, length, count_empty_rows)
    denom = jnp.asarray(denom, jnp.float32)
    if normalize_per_micro_batch:
        return jnp.where(denom > 0, total / jnp.where(denom > 0, denom, 1.0), 0.0), jnp.ones((), jnp.float32)
    return total, denom


def masked_mean(x: jax.Array, mask: jax.Array) -> Pair:
    """Token-weighted (sum, count) pair, used for metrics."""
    return aggregate(x, mask, "token-mean")


@dataclasses.dataclass(frozen=True)
class GRPOLossConfig:
    """Static (hashable) configuration of the GRPO loss. Names follow verl / TRL."""

    policy_loss: str = "vanilla"
    eps_low: float = 0.2
    eps_high: float | None = None  # None: same as eps_low
    dual_clip_c: float | None = None  # e.g. 3.0 (verl clip_ratio_c); must be > 1
    log_ratio_clamp: float = 20.0
    loss_agg_mode: str = "token-mean"
    norm_length: float | None = None  # constant for seq-mean-token-sum-norm; None: T of the batch
    kl_coef: float = 0.0  # beta
    kl_estimator: str = "k3"
    entropy_coef: float = 0.0
    # peers' conventions (urlvr_jax.rl.conventions): TRL's use_bias_correction_kl, TRL's row count, TRL's bnpo scope
    kl_ratio: bool = False  # per-token KL times the importance ratio w
    count_empty_rows: bool = False  # seq-mean modes divide by all B rows, empty ones included
    normalize_per_micro_batch: bool = False  # each micro-batch normalised alone; the update averages them

    def __post_init__(self):
        POLICY_LOSSES.check(self.policy_loss)
        AGGREGATIONS.check(self.loss_agg_mode)
        KL_ESTIMATORS.check(self.kl_estimator)
        if self.dual_clip_c is not None and self.dual_clip_c <= 1.0:
            raise ValueError(f"dual_clip_c must be > 1 (or None), got {self.dual_clip_c}")
        if self.eps_low < 0 or (self.eps_high is not None and self.eps_high < 0):
            raise ValueError(f"clip ranges must be >= 0, got eps_low={self.eps_low}, eps_high={self.eps_high}")

    @property
    def clip_high(self) -> float:
        return self.eps_low if self.eps_high is None else self.eps_high


PolicyLossFn = Callable[
    [jax.Array, jax.Array, jax.Array, GRPOLossConfig], tuple[jax.Array, dict[str, jax.Array]]
]
POLICY_LOSSES: Registry[PolicyLossFn] = Registry("policy loss")
register_policy_loss_fn = POLICY_LOSSES.register


@register_policy_loss_fn("vanilla", "ppo_clip")
def ppo_clip_loss(
    logprobs: jax.Array, old_logprobs: jax.Array, advantages: jax.Array, config: GRPOLossConfig
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Per-token PPO clipped loss [B, T] (optionally dual-clipped) and per-token metric values [B, T].

    ``advantages`` must already be [B, T]. Metrics: ``ratio``, ``clip_frac`` (the clipped branch is the max),
    ``dual_clip_frac`` (the dual clip is active), ``ppo_kl`` (-log w, verl's ``ppo_kl``).
    """
    log_ratio = jnp.clip(logprobs - old_logprobs, -config.log_ratio_clamp, config.log_ratio_clamp)
    ratio = jnp.exp(log_ratio)
    loss_unclipped = -advantages * ratio
    loss_clipped = -advantages * jnp.clip(ratio, 1.0 - config.eps_low, 1.0 + config.clip_high)
    loss = jnp.maximum(loss_unclipped, loss_clipped)
    clipped = loss_clipped > loss_unclipped
    dual = jnp.zeros_like(clipped)
    if config.dual_clip_c is not None:
        loss_dual = -advantages * config.dual_clip_c
        dual = (advantages < 0) & (loss > loss_dual)
        loss = jnp.where(advantages < 0, jnp.minimum(loss, loss_dual), loss)
    metrics = {
        "ratio": ratio,
        "clip_frac": clipped.astype(jnp.float32),
        "dual_clip_frac": dual.astype(jnp.float32),
        "ppo_kl": -log_ratio,
    }
    return loss, metrics


def policy_loss(
    logprobs: jax.Array,
    old_logprobs: jax.Array,
    advantages: jax.Array,
    config: GRPOLossConfig = GRPOLossConfig(),
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Per-token policy loss of ``config.policy_loss``; [B] advantages are broadcast over tokens."""
    logprobs = jnp.asarray(logprobs, jnp.float32)
    adv = jnp.asarray(advantages, jnp.float32)
    adv = jnp.broadcast_to(adv[:, None] if adv.ndim == 1 else adv, logprobs.shape)
    return POLICY_LOSSES.get(config.policy_loss)(logprobs, jnp.asarray(old_logprobs, jnp.float32), adv, config)


# Terms combined with max / min (not +) across micro-batches; see accumulate_terms.
_EXTREMA: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "ratio_max": jnp.maximum,
    "ratio_min": jnp.minimum,
}


def grpo_loss_terms(
    logprobs: jax.Array,
    old_logprobs: jax.Array | None,
    advantages: jax.Array,
    mask: jax.Array,
    config: GRPOLossConfig = GRPOLossConfig(),
    *,
    ref_logprobs: jax.Array | None = None,
    entropy: jax.Array | None = None,
) -> dict[str, Pair]:
    """All loss terms and metrics of one (micro-)batch as (sum, denominator) pairs.

    Args:
      logprobs: [B, T] log pi_theta of the sampled tokens (differentiable, float32).
      old_logprobs: [B, T] log pi_old; None means ``stop_gradient(logprobs)`` (ratio 1, one update per batch).
      advantages: [B] or [B, T].
      mask: [B, T] valid completion tokens.
      config: a :class:`GRPOLossConfig`.
      ref_logprobs: [B, T] log pi_ref; required iff ``config.kl_coef != 0``.
      entropy: [B, T] per-token entropy (differentiable); required iff ``config.entropy_coef != 0``.

    Returns a dict with ``policy``, ``kl`` (if kl_coef != 0), ``entropy`` (if entropy_coef != 0) and ``loss`` =
    policy + kl_coef * kl - entropy_coef * entropy (all with the aggregation's denominator), plus token-mean metrics
    ``ratio_mean``, ``clip_frac``, ``dual_clip_frac``, ``ppo_kl`` and extrema ``ratio_max`` / ``ratio_min``
    (denominator 1). Differentiate ``terms["loss"][0]`` per micro-batch, add the gradients and divide by the summed
    denominator; combine term dicts with :func:`accumulate_terms` and turn them into scalars with :func:`finalize`.
    """
    mask = jnp.asarray(mask, jnp.float32)
    if old_logprobs is None:
        old_logprobs = jax.lax.stop_gradient(logprobs)
    agg = dict(mode=config.loss_agg_mode, norm_length=config.norm_length, count_empty_rows=config.count_empty_rows,
               normalize_per_micro_batch=config.normalize_per_micro_batch)

    per_token, token_metrics = policy_loss(logprobs, old_logprobs, advantages, config)
    terms: dict[str, Pair] = {"policy": aggregate(per_token, mask, **agg)}
    loss_sum, denom = terms["policy"]
    if config.kl_coef != 0.0:
        if ref_logprobs is None:
            raise ValueError("kl_coef != 0 needs ref_logprobs")
        per_token_kl = kl_penalty(logprobs, ref_logprobs, config.kl_estimator)
        if config.kl_ratio:  # TRL use_bias_correction_kl: w * KL, w differentiable (TRL's coef_1)
            log_ratio = jnp.clip(logprobs - old_logprobs, -config.log_ratio_clamp, config.log_ratio_clamp)
            per_token_kl = per_token_kl * jnp.exp(log_ratio)
        terms["kl"] = aggregate(per_token_kl, mask, **agg)
        loss_sum = loss_sum + config.kl_coef * terms["kl"][0]
    if config.entropy_coef != 0.0:
        if entropy is None:
            raise ValueError("entropy_coef != 0 needs entropy")
        terms["entropy"] = aggregate(entropy, mask, **agg)
        loss_sum = loss_sum - config.entropy_coef * terms["entropy"][0]
    terms["loss"] = (loss_sum, denom)

    ratio = jax.lax.stop_gradient(token_metrics.pop("ratio"))
    terms["ratio_mean"] = masked_mean(ratio, mask)
    for name, value in token_metrics.items():
        terms[name] = masked_mean(jax.lax.stop_gradient(value), mask)
    one = jnp.ones((), jnp.float32)
    terms["ratio_max"] = (jnp.max(jnp.where(mask > 0, ratio, -jnp.inf)), one)
    terms["ratio_min"] = (jnp.min(jnp.where(mask > 0, ratio, jnp.inf)), one)
    return terms


def accumulate_terms(acc: dict[str, Pair] | None, new: dict[str, Pair]) -> dict[str, Pair]:
    """Combines the terms of two micro-batches: sums add, denominators add, extrema take max / min."""
    if acc is None:
        return dict(new)
    if acc.keys() != new.keys():
        raise ValueError(f"term names differ: {sorted(acc)} vs {sorted(new)}")
    out = {}
    for name, (s, d) in new.items():
        combine = _EXTREMA.get(name)
        out[name] = (combine(acc[name][0], s), d) if combine else (acc[name][0] + s, acc[name][1] + d)
    return out


def finalize(terms: dict[str, Pair]) -> dict[str, jax.Array]:
    """sum / denominator for every term (0 where the denominator is 0); ``"loss"`` is the total loss."""
    return {name: jnp.where(d > 0, s / jnp.where(d > 0, d, 1.0), 0.0) for name, (s, d) in terms.items()}
