"""Intrinsic ensemble-based rewards, over the N rollouts of each prompt (rows sharing a group id).

All of them use the equivalence clusters of :mod:`urlvr_jax.rewards.clustering` and the answers
after the reward-hacking guard (:meth:`RewardBatch.graded_answers`). Conventions, explicitly:

* **no answer** (None/empty): never votes for anything, forms its own cluster, and gets reward 0
  from every ensemble reward (TTRL would let "" win a vote of empties; here it cannot);
* **majority label**: the largest cluster of answered rollouts; a **tie** goes to the cluster seen
  first in generation order (TTRL's ``Counter.most_common``); the label is that cluster's first answer;
  if no rollout answered, the label is None and every reward of the group is 0;
* **ratios** (majority ratio, SRT threshold, cluster frequencies) divide by all N rollouts that voted,
  those without an answer included.

Rewards:

* ``majority_vote`` (TTRL): 1[answer ≡ label], the label voted over the first ``n_votes`` rollouts of
  the group (all by default); reward every row, then keep rows with :func:`batch.select_first_m`;
* ``self_consistency`` (EM-RL): |cluster(i)| / N;
* ``semantic_cluster`` (EMPO): |cluster(i)| / N, but 0 for the whole group when all N rollouts are in
  different clusters (semantic entropy = log N), which includes a group where nobody answered;
* ``srt_threshold`` (SRT): majority vote, but only in groups whose majority ratio >= ``threshold``;
* ``srt_soft`` (SRT soft): sum over answered clusters c of (|c| / N) * 1[answer ≡ representative(c)]
  (equals self-consistency when equivalence is transitive);
* ``co_rewarding_teacher`` (Co-rewarding-II): 1[answer ≡ majority label of the teacher's answers],
  the teacher's rollouts given as ``RewardBatch.teacher_answers`` {group id: answers}.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import numpy as np

from urlvr_jax.rewards.answers import extract_answer, is_number_literal, normalize_answer
from urlvr_jax.rewards.batch import RewardBatch, select_first_m
from urlvr_jax.rewards.clustering import answered_mask, cluster_groups, cluster_sizes, group_rows
from urlvr_jax.rewards.grading import DEFAULT_TIMEOUT_S, equivalent_many
from urlvr_jax.rewards.registry import register_reward


@dataclasses.dataclass(frozen=True)
class Vote:
    """The outcome of one group's majority vote."""

    label: str | None  # the winning answer (normalised); None if nobody answered
    count: int  # rollouts in the winning cluster
    n_votes: int  # rollouts that voted, those without an answer included
    distinct: int = 0  # distinct answers (clusters) among the answered rollouts

    @property
    def ratio(self) -> float:
        return self.count / self.n_votes if self.n_votes else 0.0


def _vote(answers: Sequence[str | None], cluster_ids: np.ndarray, answer_type: str | None = None) -> Vote:
    """Majority vote of one group given its cluster ids (ids numbered by first appearance)."""
    answered = answered_mask(answers, [answer_type] * len(answers))
    if not answered.any():
        return Vote(None, 0, len(answers))
    counts = np.bincount(cluster_ids[answered])
    winner = int(np.argmax(counts))  # first maximum = the cluster seen first
    first_row = int(np.flatnonzero(cluster_ids == winner)[0])
    return Vote(normalize_answer(answers[first_row]), int(counts[winner]), len(answers), int(np.count_nonzero(counts)))


def vote_groups(
    answers: Sequence[str | None], group_ids: np.ndarray, timeout_s: float = DEFAULT_TIMEOUT_S,
    answer_types: Sequence[str | None] | None = None,
) -> dict[int, Vote]:
    """{group id: Vote} over all rows of each group (``answer_types``: one per row, see clustering)."""
    cluster_ids = cluster_groups(answers, group_ids, timeout_s, answer_types)
    return {
        group: _vote([answers[r] for r in rows], cluster_ids[rows], answer_types[rows[0]] if answer_types else None)
        for group, rows in group_rows(group_ids).items()
    }


def answer_types(batch: RewardBatch) -> list[str | None]:
    """[B] each row's ``task_info`` ``answer_type`` (None where there is none)."""
    return [batch.info(row, "answer_type") for row in range(batch.batch_size)]


def _voting_rows(group_ids: np.ndarray, n_votes: int | None) -> np.ndarray:
    """Rows that vote: the first ``n_votes`` of each group (all if None)."""
    if n_votes is None:
        return np.arange(len(group_ids))
    return select_first_m(group_ids, n_votes)


def group_votes(batch: RewardBatch, n_votes: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
                ) -> dict[int, Vote]:
    """{group id: Vote} of the batch, voting over the first ``n_votes`` rollouts of each group."""
    rows = _voting_rows(batch.group_ids, n_votes)
    answers, types = batch.graded_answers(), answer_types(batch)
    return vote_groups([answers[r] for r in rows], batch.group_ids[rows], timeout_s, [types[r] for r in rows])


def majority_labels(batch: RewardBatch, n_votes: int | None = None) -> tuple[dict[int, str | None], dict[int, float]]:
    """({group id: voted label}, {group id: majority ratio}), groups in order of first appearance."""
    votes = group_votes(batch, n_votes)
    return {g: v.label for g, v in votes.items()}, {g: v.ratio for g, v in votes.items()}


def _match_labels(batch: RewardBatch, labels: dict[int, str | None], timeout_s: float) -> np.ndarray:
    """[B] float32 1[answer_i ≡ label of its group] (0 where the label is None)."""
    pairs = [(answer, labels[int(g)]) for answer, g in zip(batch.graded_answers(), batch.group_ids)]
    return np.asarray(equivalent_many(pairs, answer_types(batch), timeout_s), dtype=np.float32)


@register_reward("majority_vote", kind="ensemble")
def majority_vote(batch: RewardBatch, n_votes: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
                  ) -> np.ndarray:
    """TTRL: 1 if the answer is equivalent to the group's majority label."""
    labels = {g: v.label for g, v in group_votes(batch, n_votes, timeout_s).items()}
    return _match_labels(batch, labels, timeout_s)


def _cluster_fractions(batch: RewardBatch, timeout_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """([B] cluster ids, [B] |cluster| / N, [B] answered) within each group."""
    answers, types = batch.graded_answers(), answer_types(batch)
    cluster_ids = cluster_groups(answers, batch.group_ids, timeout_s, types)
    fractions = np.zeros(batch.batch_size, dtype=np.float32)
    for rows in group_rows(batch.group_ids).values():
        fractions[rows] = cluster_sizes(cluster_ids[rows]) / len(rows)
    return cluster_ids, fractions, answered_mask(answers, types)


@register_reward("self_consistency", kind="ensemble")
def self_consistency(batch: RewardBatch, timeout_s: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
    """Share of the group whose answer is equivalent to this one (itself included); 0 if no answer."""
    _, fractions, answered = _cluster_fractions(batch, timeout_s)
    return np.where(answered, fractions, 0.0).astype(np.float32)


@register_reward("semantic_cluster", kind="ensemble")
def semantic_cluster(batch: RewardBatch, timeout_s: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
    """EMPO: the probability of the answer's semantic cluster; 0 when all answers differ."""
    cluster_ids, fractions, answered = _cluster_fractions(batch, timeout_s)
    rewards = np.where(answered, fractions, 0.0).astype(np.float32)
    for rows in group_rows(batch.group_ids).values():
        if len(np.unique(cluster_ids[rows])) == len(rows):  # H_sem == log N
            rewards[rows] = 0.0
    return rewards


@register_reward("srt_threshold", kind="ensemble")
def srt_threshold(batch: RewardBatch, threshold: float = 0.6, n_votes: int | None = None,
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
    """SRT: majority vote, but the whole group gets 0 when its majority ratio is below ``threshold``."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"srt_threshold: threshold must be in [0, 1], got {threshold}")
    votes = group_votes(batch, n_votes, timeout_s)
    labels = {g: v.label if v.ratio >= threshold else None for g, v in votes.items()}
    return _match_labels(batch, labels, timeout_s)


@register_reward("srt_soft", kind="ensemble")
def srt_soft(batch: RewardBatch, timeout_s: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
    """SRT soft reward: sum over answer clusters c of freq(c) * 1[answer ≡ representative of c]."""
    answers, types = batch.graded_answers(), answer_types(batch)
    cluster_ids = cluster_groups(answers, batch.group_ids, timeout_s, types)
    answered = answered_mask(answers, types)
    pairs, weights, owners = [], [], []
    for rows in group_rows(batch.group_ids).values():
        ids = cluster_ids[rows]
        for cluster in np.unique(ids[answered[rows]]):
            members = rows[ids == cluster]
            representative = answers[members[0]]
            for row in rows:
                pairs.append((answers[row], representative))
                weights.append(len(members) / len(rows))
                owners.append(row)
    verdicts = np.asarray(equivalent_many(pairs, [types[row] for row in owners], timeout_s), dtype=np.float32)
    return np.bincount(np.asarray(owners, dtype=np.int64), weights=verdicts * np.asarray(weights),
                       minlength=batch.batch_size).astype(np.float32)


def teacher_answers_from_texts(texts: Sequence[str], group_ids: Sequence[int],
                               extract_fn: Callable[[str], str | None] = extract_answer
                               ) -> dict[int, list[str | None]]:
    """{group id: extracted answers} from the teacher's rollout texts, for ``teacher_answers``."""
    answers: dict[int, list[str | None]] = {}
    for text, group in zip(texts, np.asarray(group_ids).tolist()):
        answers.setdefault(int(group), []).append(extract_fn(text))
    return answers


def ema_update(teacher_params: Any, policy_params: Any, alpha: float) -> Any:
    """Co-rewarding-II's teacher update: teacher <- alpha * policy + (1 - alpha) * teacher."""
    return jax.tree.map(lambda t, p: (1.0 - alpha) * t + alpha * p, teacher_params, policy_params)


@register_reward("co_rewarding_teacher", kind="ensemble")
def co_rewarding_teacher(batch: RewardBatch, timeout_s: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
    """Co-rewarding-II: 1 if the answer is equivalent to the teacher's majority label."""
    teacher = batch.require("teacher_answers", "co_rewarding_teacher")
    rows_by_group = group_rows(batch.group_ids)
    missing = [g for g in rows_by_group if g not in teacher]
    if missing:
        raise ValueError(f"co_rewarding_teacher: teacher_answers has no entry for groups {missing[:10]}")
    answers, ids, types = [], [], []
    for group, rows in rows_by_group.items():
        answer_type = batch.info(int(rows[0]), "answer_type")
        for answer in teacher[group]:
            answer = normalize_answer(answer)
            answers.append(None if answer_type == "number" and not is_number_literal(answer) else answer)
            ids.append(group)
            types.append(answer_type)
    votes = vote_groups(answers, np.asarray(ids, dtype=np.int64), timeout_s, types)
    labels = {g: votes[g].label if g in votes else None for g in rows_by_group}
    return _match_labels(batch, labels, timeout_s)
