"""URLVR metrics as pure functions (numpy), plus :func:`urlvr_metrics` for the training loop.

Per-prompt metrics return one value per group (groups in order of first appearance), per-rollout
ones one value per row; the loop logs their means. Definitions follow TTRL's metrics:

* label accuracy: 1[voted label ≡ ground truth] per prompt (no label -> 0);
* reward accuracy: 1[proxy reward == ground-truth reward] per rollout (``atol`` for real rewards);
* majority ratio: size of the winning cluster / N per prompt;
* pass@k: the unbiased estimator 1 - C(n-c, k) / C(n, k) per prompt; avg@k: mean correctness;
* point-biserial correlation between the proxy reward and the binary ground-truth reward
  (Pearson's r; NaN when either is constant, as in scipy);
* pseudo-label accuracy (certainty rewards): ground-truth correctness of the top-proxy rollout of each
  prompt (ties: the first in generation order).

Failure-mode metrics (the paper's collapse modes, logged every step): response length (length collapse
under the probability reward), repetition (repeated n-grams within a response, rep-n of Welleck et al. 2019:
what entropy-minimising rewards drive up) and distinct answers per prompt (the answer diversity that every
intrinsic reward sharpens away).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from urlvr_jax.rewards.batch import RewardBatch
from urlvr_jax.rewards.clustering import group_rows
from urlvr_jax.rewards.ensemble import group_votes
from urlvr_jax.rewards.grading import equivalent_many


def pass_at_k(n: int | np.ndarray, c: int | np.ndarray, k: int) -> np.ndarray:
    """Unbiased pass@k for ``n`` samples with ``c`` correct: 1 - prod_{i=n-c+1}^{n} (1 - k / i)."""
    n_arr, c_arr = np.broadcast_arrays(np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64))
    if k < 1 or np.any(n_arr < k):
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got k={k}, n={n}")
    if np.any(c_arr < 0) or np.any(c_arr > n_arr):
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got c={c}, n={n}")
    out = np.ones(n_arr.shape, dtype=np.float64)
    for index in np.ndindex(n_arr.shape):
        ni, ci = int(n_arr[index]), int(c_arr[index])
        if ni - ci >= k:
            out[index] = 1.0 - np.prod(1.0 - k / np.arange(ni - ci + 1, ni + 1, dtype=np.float64))
    return out


def group_counts(correct: np.ndarray, group_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([G] rollouts per group, [G] correct rollouts per group)."""
    correct = np.asarray(correct, dtype=np.float64)
    rows = group_rows(group_ids).values()
    return (np.array([len(r) for r in rows], dtype=np.int64),
            np.array([int(np.sum(correct[r] > 0.5)) for r in rows], dtype=np.int64))


def avg_at_k(correct: np.ndarray, group_ids: np.ndarray) -> np.ndarray:
    """[G] mean correctness of each prompt's rollouts (avg@k with k = rollouts per prompt)."""
    correct = np.asarray(correct, dtype=np.float64)
    return np.array([correct[r].mean() for r in group_rows(group_ids).values()])


def label_accuracy(labels: Sequence[str | None], gold: Sequence[str | None],
                   answer_types: Sequence[str | None] | None = None) -> np.ndarray:
    """[G] 1 where the voted label is equivalent to the gold answer (a None label scores 0)."""
    if len(labels) != len(gold):
        raise ValueError(f"label_accuracy: {len(labels)} labels but {len(gold)} gold answers")
    return np.asarray(equivalent_many(list(zip(labels, gold)), answer_types), dtype=np.float64)


def reward_accuracy(proxy: np.ndarray, gt: np.ndarray, atol: float = 0.0) -> np.ndarray:
    """[B] 1 where the proxy reward equals the ground-truth reward (within ``atol``)."""
    proxy, gt = np.asarray(proxy, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if proxy.shape != gt.shape:
        raise ValueError(f"reward_accuracy: proxy shape {proxy.shape} != gt shape {gt.shape}")
    return (np.abs(proxy - gt) <= atol).astype(np.float64)


def majority_ratio(batch: RewardBatch, n_votes: int | None = None) -> np.ndarray:
    """[G] share of each prompt's voting rollouts in the winning answer cluster."""
    return np.array([vote.ratio for vote in group_votes(batch, n_votes).values()])


def point_biserial(proxy: np.ndarray, gt: np.ndarray) -> float:
    """Pearson correlation between a real proxy reward and a binary ground-truth reward."""
    proxy, gt = np.asarray(proxy, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if proxy.shape != gt.shape or proxy.ndim != 1:
        raise ValueError(f"point_biserial: need two equal 1-D arrays, got {proxy.shape} and {gt.shape}")
    dp, dg = proxy - proxy.mean(), gt - gt.mean()
    denominator = np.sqrt(np.sum(dp**2) * np.sum(dg**2))
    return float(np.sum(dp * dg) / denominator) if denominator > 0 else float("nan")


def pseudo_label_accuracy(proxy: np.ndarray, gt: np.ndarray, group_ids: np.ndarray) -> np.ndarray:
    """[G] ground-truth reward of the highest-proxy rollout of each prompt (first on ties)."""
    proxy, gt = np.asarray(proxy, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    return np.array([gt[r[int(np.argmax(proxy[r]))]] for r in group_rows(group_ids).values()])


def mean_response_length(mask: np.ndarray) -> float:
    """Mean number of response tokens (``mask`` [B, T]) or mean of given lengths (``[B]``)."""
    mask = np.asarray(mask)
    lengths = mask.sum(axis=1) if mask.ndim == 2 else mask
    return float(np.mean(lengths)) if lengths.size else 0.0


def repetition_rate(tokens: np.ndarray, lengths: np.ndarray, n: int = 4) -> float:
    """Share of the batch's response n-grams that repeat an earlier n-gram of the same response.

    ``tokens`` [B, T] (a response is ``tokens[r, :lengths[r]]``); pooled over the batch, so long responses
    weigh more; 0.0 when no response has ``n`` tokens.
    """
    tokens, lengths = np.asarray(tokens), np.asarray(lengths, dtype=np.int64)
    repeated = total = 0
    for row, length in zip(tokens, lengths):
        if length < n:
            continue
        grams = np.lib.stride_tricks.sliding_window_view(row[:length], n)
        total += len(grams)
        repeated += len(grams) - len(np.unique(grams, axis=0))
    return repeated / total if total else 0.0


def distinct_answers(batch: RewardBatch, n_votes: int | None = None) -> np.ndarray:
    """[G] number of distinct (equivalence-clustered) answers among each prompt's answered rollouts."""
    return np.array([vote.distinct for vote in group_votes(batch, n_votes).values()], dtype=np.float64)


def urlvr_metrics(batch: RewardBatch, proxy_rewards: np.ndarray, gt_rewards: np.ndarray | None = None,
                  n_votes: int | None = None, votes: bool = True, atol: float = 0.0) -> dict[str, float]:
    """The per-step metrics; ground-truth ones only where ``gt_rewards`` / ``ground_truths`` exist.

    ``votes=False`` skips the majority vote (majority ratio, label accuracy) to save grading time.
    """
    proxy = np.asarray(proxy_rewards, dtype=np.float64)
    if proxy.shape != (batch.batch_size,):
        raise ValueError(f"urlvr_metrics: proxy_rewards shape {proxy.shape}, expected ({batch.batch_size},)")
    metrics = {"proxy_reward": float(proxy.mean()), "response_length": mean_response_length(batch.response_lengths())}
    if votes:
        vote_by_group = group_votes(batch, n_votes)
        metrics["majority_ratio"] = float(np.mean([v.ratio for v in vote_by_group.values()]))
        metrics["distinct_answers"] = float(np.mean([v.distinct for v in vote_by_group.values()]))
        if batch.ground_truths is not None:
            rows = group_rows(batch.group_ids)
            gold = [batch.ground_truths[int(r[0])] for r in rows.values()]
            types = [batch.info(int(r[0]), "answer_type") for r in rows.values()]
            labels = [v.label for v in vote_by_group.values()]
            metrics["label_accuracy"] = float(label_accuracy(labels, gold, types).mean())
    if gt_rewards is not None:
        gt = np.asarray(gt_rewards, dtype=np.float64)
        n, c = group_counts(gt, batch.group_ids)
        k = int(n.min())
        metrics.update({
            "ground_truth_reward": float(gt.mean()),
            "reward_accuracy": float(reward_accuracy(proxy, gt, atol).mean()),
            "point_biserial": point_biserial(proxy, gt),
            "pseudo_label_accuracy": float(pseudo_label_accuracy(proxy, gt, batch.group_ids).mean()),
            f"pass@{k}": float(pass_at_k(n, c, k).mean()),
            f"avg@{k}": float(avg_at_k(gt, batch.group_ids).mean()),
        })
    return metrics
