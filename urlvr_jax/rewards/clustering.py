"""Equivalence clustering of answers, shared by every ensemble reward.

Greedy, as in EMPO: answers are visited in order; each joins the first existing cluster whose
representative (its first member) it is equivalent to (``is_equivalent(answer, representative)``),
otherwise it opens a new cluster. Identical strings always share a cluster. A missing answer
(None or "") forms its own singleton cluster and never joins another one; :func:`answered_mask`
tells rewards which rows had no answer, so that "no answer" is never rewarded as agreement.

Cluster ids are numbered in order of first appearance. :func:`cluster_groups` clusters every group of
a batch after one batched call to the grader that covers all the comparisons greedy might need.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from urlvr_jax.rewards.answers import normalize_answer
from urlvr_jax.rewards.grading import DEFAULT_TIMEOUT_S, equivalent_many


def answered_mask(answers: Sequence[str | None]) -> np.ndarray:
    """[N] bool, True where there is a (non-empty) answer."""
    return np.array([normalize_answer(a) is not None for a in answers], dtype=bool)


def _distinct_answers(normalized: Sequence[str | None]) -> list[str]:
    """The distinct (already normalised) answers, in order of first appearance."""
    return list(dict.fromkeys(a for a in normalized if a is not None))


def _candidate_pairs(distinct: list[str]) -> list[tuple[str, str]]:
    """Every (later, earlier) pair greedy clustering could ask about."""
    return [(distinct[j], distinct[i]) for j in range(len(distinct)) for i in range(j)]


def cluster_answers(answers: Sequence[str | None], timeout_s: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
    """[N] int cluster ids (0, 1, ... by first appearance); missing answers are singletons."""
    normalized = [normalize_answer(a) for a in answers]
    distinct = _distinct_answers(normalized)
    pairs = _candidate_pairs(distinct)
    verdicts = dict(zip(pairs, equivalent_many(pairs, timeout_s=timeout_s)))
    representatives: list[str] = []
    cluster_of: dict[str, int] = {}
    for answer in distinct:
        for cluster, representative in enumerate(representatives):
            if verdicts[(answer, representative)]:
                cluster_of[answer] = cluster
                break
        else:
            cluster_of[answer] = len(representatives)
            representatives.append(answer)
    ids = np.empty(len(answers), dtype=np.int64)
    next_id = len(representatives)
    first_seen: dict[int, int] = {}
    for row, answer in enumerate(normalized):
        raw = cluster_of[answer] if answer is not None else next_id + row
        ids[row] = first_seen.setdefault(raw, len(first_seen))
    return ids


def group_rows(group_ids: np.ndarray) -> dict[int, np.ndarray]:
    """Row indices of each group, groups in order of first appearance, rows in batch order."""
    group_ids = np.asarray(group_ids)
    if group_ids.ndim != 1:
        raise ValueError(f"group_ids must be 1-D, got shape {group_ids.shape}")
    rows: dict[int, list[int]] = {}
    for row, group in enumerate(group_ids.tolist()):
        rows.setdefault(int(group), []).append(row)
    return {group: np.asarray(r, dtype=np.int64) for group, r in rows.items()}


def cluster_groups(
    answers: Sequence[str | None], group_ids: np.ndarray, timeout_s: float = DEFAULT_TIMEOUT_S
) -> np.ndarray:
    """[B] cluster ids within each group (see :func:`cluster_answers`), one grader batch for all."""
    rows_by_group = group_rows(group_ids)
    pairs = []
    for rows in rows_by_group.values():
        pairs += _candidate_pairs(_distinct_answers([normalize_answer(answers[r]) for r in rows]))
    equivalent_many(pairs, timeout_s=timeout_s)  # fills the cache for the per-group calls
    ids = np.empty(len(answers), dtype=np.int64)
    for rows in rows_by_group.values():
        ids[rows] = cluster_answers([answers[r] for r in rows], timeout_s)
    return ids


def cluster_sizes(cluster_ids: np.ndarray) -> np.ndarray:
    """[N] the size of each row's cluster."""
    _, inverse, counts = np.unique(cluster_ids, return_inverse=True, return_counts=True)
    return counts[inverse]
