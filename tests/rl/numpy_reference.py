"""Plain numpy transcriptions of TRL's and verl's GRPO formulas, written from their published descriptions
(TRL ``GRPOTrainer`` / verl ``core_algos.py``; see shared/reference/rewards_and_grpo_reference.md, section 1).

They keep each library's own conventions on purpose (loops over groups, dicts keyed by uid, the exact
denominators), so the tests compare our vectorised JAX code against an independent formulation.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

# ----------------------------------------------------------------------------- TRL


def trl_advantages(rewards: np.ndarray, num_generations: int, scale_rewards: str = "group") -> np.ndarray:
    """TRL: rewards laid out prompt by prompt in groups of ``num_generations``; std with ddof=1, eps 1e-4."""
    grouped = rewards.reshape(-1, num_generations)
    mean = np.repeat(grouped.mean(axis=1), num_generations)
    advantages = rewards - mean
    if scale_rewards == "group":
        std = np.repeat(grouped.std(axis=1, ddof=1), num_generations)
    elif scale_rewards == "batch":
        std = np.full_like(rewards, rewards.std(ddof=1))
    elif scale_rewards == "none":
        return advantages
    else:
        raise ValueError(scale_rewards)
    return advantages / (std + 1e-4)


def trl_per_token_loss(
    logps: np.ndarray,
    old_logps: np.ndarray,
    advantages: np.ndarray,
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    ref_logps: np.ndarray | None = None,
) -> np.ndarray:
    """TRL token-level importance sampling: -min(w A, clip(w, 1-eps_low, 1+eps_high) A) + beta * k3."""
    epsilon_high = epsilon_low if epsilon_high is None else epsilon_high
    coef_1 = np.exp(logps - old_logps)
    coef_2 = np.clip(coef_1, 1 - epsilon_low, 1 + epsilon_high)
    adv = advantages[:, None]
    per_token_loss = -np.minimum(coef_1 * adv, coef_2 * adv)
    if beta != 0.0:
        per_token_kl = np.exp(ref_logps - logps) - (ref_logps - logps) - 1
        per_token_loss = per_token_loss + beta * per_token_kl
    return per_token_loss


def trl_aggregate(per_token_loss: np.ndarray, mask: np.ndarray, loss_type: str, max_completion_length: int) -> float:
    """TRL ``loss_type`` on one process with no gradient accumulation."""
    if loss_type == "grpo":
        return float(((per_token_loss * mask).sum(-1) / np.maximum(mask.sum(-1), 1.0)).mean())
    if loss_type == "bnpo":
        return float((per_token_loss * mask).sum() / max(mask.sum(), 1.0))
    if loss_type == "dr_grpo":
        return float((per_token_loss * mask).sum() / (per_token_loss.shape[0] * max_completion_length))
    raise ValueError(loss_type)


# ----------------------------------------------------------------------------- verl


def verl_grpo_outcome_advantage(
    scores: np.ndarray, index: list, epsilon: float = 1e-6, norm_adv_by_std_in_grpo: bool = True
) -> np.ndarray:
    """verl ``compute_grpo_outcome_advantage`` on outcome scores [B] grouped by ``index`` (uid)."""
    id2score = defaultdict(list)
    for i, idx in enumerate(index):
        id2score[idx].append(scores[i])
    id2mean, id2std = {}, {}
    for idx, group in id2score.items():
        if len(group) == 1:
            id2mean[idx], id2std[idx] = 0.0, 1.0
        else:
            id2mean[idx], id2std[idx] = np.mean(group), np.std(group, ddof=1)
    out = np.empty_like(scores)
    for i, idx in enumerate(index):
        out[i] = scores[i] - id2mean[idx]
        if norm_adv_by_std_in_grpo:
            out[i] /= id2std[idx] + epsilon
    return out


def verl_rloo_outcome_advantage(scores: np.ndarray, index: list) -> np.ndarray:
    """verl ``compute_rloo_outcome_advantage``: r * n/(n-1) - mean * n/(n-1); singletons keep r."""
    id2score = defaultdict(list)
    for i, idx in enumerate(index):
        id2score[idx].append(scores[i])
    out = scores.copy()
    for i, idx in enumerate(index):
        n = len(id2score[idx])
        if n > 1:
            mean = np.mean(id2score[idx])
            out[i] = scores[i] * n / (n - 1) - mean * n / (n - 1)
    return out


def verl_policy_loss_vanilla(
    old_log_prob: np.ndarray,
    log_prob: np.ndarray,
    advantages: np.ndarray,
    cliprange_low: float = 0.2,
    cliprange_high: float = 0.2,
    clip_ratio_c: float = 3.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """verl vanilla PPO loss matrix (before ``agg_loss``), the clipped indicator and the dual-clip indicator."""
    negative_approx_kl = np.clip(log_prob - old_log_prob, -20.0, 20.0)
    ratio = np.exp(negative_approx_kl)
    pg_losses1 = -advantages * ratio
    pg_losses2 = -advantages * np.clip(ratio, 1 - cliprange_low, 1 + cliprange_high)
    clip_pg_losses1 = np.maximum(pg_losses1, pg_losses2)
    clipped = pg_losses2 > pg_losses1
    pg_losses3 = -advantages * clip_ratio_c
    clip_pg_losses2 = np.minimum(pg_losses3, clip_pg_losses1)
    dual = (clip_pg_losses1 > pg_losses3) & (advantages < 0)
    pg_losses = np.where(advantages < 0, clip_pg_losses2, clip_pg_losses1)
    return pg_losses, clipped, dual


def verl_agg_loss(loss_mat: np.ndarray, loss_mask: np.ndarray, loss_agg_mode: str) -> float:
    """verl ``agg_loss`` on one micro-batch (masked_mean for token-mean)."""
    if loss_agg_mode == "token-mean":
        return float((loss_mat * loss_mask).sum() / loss_mask.sum())
    seq_losses = (loss_mat * loss_mask).sum(-1)
    if loss_agg_mode == "seq-mean-token-sum":
        return float(seq_losses.mean())
    if loss_agg_mode == "seq-mean-token-mean":
        return float((seq_losses / loss_mask.sum(-1)).mean())
    if loss_agg_mode == "seq-mean-token-sum-norm":
        return float(seq_losses.sum() / loss_mask.shape[-1])
    raise ValueError(loss_agg_mode)


def verl_kl_penalty(logprob: np.ndarray, ref_logprob: np.ndarray, kl_penalty: str) -> np.ndarray:
    """verl ``kl_penalty_forward`` for kl/k1, mse/k2 and low_var_kl/k3."""
    if kl_penalty in ("kl", "k1"):
        return logprob - ref_logprob
    if kl_penalty in ("mse", "k2"):
        return 0.5 * (logprob - ref_logprob) ** 2
    if kl_penalty in ("low_var_kl", "k3"):
        kl = np.clip(ref_logprob - logprob, -20, 20)
        ratio = np.exp(kl)
        return np.clip(ratio - kl - 1, -10, 10)
    raise NotImplementedError(kl_penalty)
