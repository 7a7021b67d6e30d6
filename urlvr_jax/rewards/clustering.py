"""Equivalence clustering of answers, shared by every ensemble reward.

Greedy, as in EMPO: answers are visited in order; each joins the first existing cluster whose
representative (its first member) it is equivalent to (``is_equivalent(answer, representative)``),
otherwise it opens a new cluster. Identical strings always share a cluster. A missing answer
(None or "") forms its own singleton cluster and never joins another one; :func:`answered_mask`
tells rewards which rows had no answer, so that "no answer" is never rewarded as agreement.

Cluster ids are numbered in order of first appearance. :func:`cluster_groups` clusters every group of
a batch after one batched call to the grader that covers all the comparisons greedy might need.
Answers are compared in the canonical spelling of their ``answer_type`` (see
:func:`~urlvr_jax.rewards.grading.canonical_answer`): ``(B)`` and ``B`` are one choice answer, and a
choice answer that is no letter counts as no answer.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from urlvr_jax.rewards.grading import DEFAULT_TIMEOUT_S, canonical_answer, equivalent_many

AnswerTypes = Sequence["str | None"] | None  # one answer_type per row (None: all "math")


def _types(answer_types: AnswerTypes, n: int) -> list[str | None]:
    if answer_types is None:
        return [None] * n
    if len(answer_types) != n:
        raise ValueError(f"clustering: {n} answers but {len(answer_types)} answer_types")
    return list(answer_types)


def answered_mask(answers: Sequence[str | None], answer_types: AnswerTypes = None) -> np.ndarray:
    """[N] bool, True where there is a (non-empty) answer in its type's canonical spelling."""
    types = _types(answer_types, len(answers))
    return np.array([canonical_answer(a, t) is not None for a, t in zip(answers, types)], dtype=bool)


def _distinct_answers(normalized: Sequence[str | None]) -> list[str]:
    """The distinct (already normalised) answers, in order of first appearance."""
    return list(dict.fromkeys(a for a in normalized if a is not None))


def _candidate_pairs(distinct: list[str]) -> list[tuple[str, str]]:
    """Every (later, earlier) pair greedy clustering could ask about."""
    return [(distinct[j], distinct[i]) for j in range(len(distinct)) for i in range(j)]


def cluster_answers(answers: Sequence[str | None], timeout_s: float = DEFAULT_TIMEOUT_S,
                    answer_type: str | None = None) -> np.ndarray:
    """[N] int cluster ids (0, 1, ... by first appearance); missing answers are singletons."""
    normalized = [canonical_answer(a, answer_type) for a in answers]
    distinct = _distinct_answers(normalized)
    pairs = _candidate_pairs(distinct)
    verdicts = dict(zip(pairs, equivalent_many(pairs, [answer_type] * len(pairs), timeout_s)))
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
    answers: Sequence[str | None], group_ids: np.ndarray, timeout_s: float = DEFAULT_TIMEOUT_S,
    answer_types: AnswerTypes = None,
) -> np.ndarray:
    """[B] cluster ids within each group (see :func:`cluster_answers`), one grader batch for all.

    A group is clustered with the ``answer_type`` of its first row.
    """
    types = _types(answer_types, len(answers))
    rows_by_group = group_rows(group_ids)
    pairs, pair_types = [], []
    for rows in rows_by_group.values():
        answer_type = types[rows[0]]
        group_pairs = _candidate_pairs(_distinct_answers([canonical_answer(answers[r], answer_type) for r in rows]))
        pairs += group_pairs
        pair_types += [answer_type] * len(group_pairs)
    equivalent_many(pairs, pair_types, timeout_s)  # fills the cache for the per-group calls
    ids = np.empty(len(answers), dtype=np.int64)
    for rows in rows_by_group.values():
        ids[rows] = cluster_answers([answers[r] for r in rows], timeout_s, types[rows[0]])
    return ids


def cluster_sizes(cluster_ids: np.ndarray) -> np.ndarray:
    """[N] the size of each row's cluster."""
    _, inverse, counts = np.unique(cluster_ids, return_inverse=True, return_counts=True)
    return counts[inverse]
