"""``RewardBatch``: everything a reward function may read about one batch of rollouts.

Arrays are host numpy (the batch is not jitted). B = rollouts, T = max new tokens.

* ``texts`` [B] decoded responses; ``answers`` [B] extracted final answers (None = no answer).
* ``group_ids`` [B] int, the prompt each rollout belongs to; rows of a group are in generation order.
* ``mask`` [B, T] bool, response tokens; ``logprobs``, ``entropy``, ``self_certainty``, ``margin``
  [B, T] float32 per-token statistics (see :mod:`urlvr_jax.sampling.rollout`), optional for rewards
  that do not need them; ``answer_mask`` [B, T] bool, the final-answer tokens (default: ``mask``).
* ``ground_truths`` [B] gold answers (optional), ``task_info`` [B] dicts (optional; e.g. Countdown
  ``numbers``/``target``, ``answer_type="number"``, ``verification`` texts), ``teacher_answers``
  {group id: the teacher's answers for that prompt} (optional, Co-rewarding-II).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

from urlvr_jax.rewards.answers import extract_answer, is_number_literal, normalize_answer
from urlvr_jax.rewards.clustering import group_rows
from urlvr_jax.sampling.rollout import STAT_NAMES

ExtractFn = Callable[[str], "str | None"]


@dataclasses.dataclass(frozen=True)
class RewardBatch:
    texts: list[str]
    answers: list[str | None]
    group_ids: np.ndarray
    mask: np.ndarray | None = None
    logprobs: np.ndarray | None = None
    entropy: np.ndarray | None = None
    self_certainty: np.ndarray | None = None
    margin: np.ndarray | None = None
    answer_mask: np.ndarray | None = None
    ground_truths: list[str | None] | None = None
    task_info: list[dict[str, Any]] | None = None
    teacher_answers: dict[int, list[str | None]] | None = None

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # frozen: only __post_init__ canonicalises fields

    def __post_init__(self) -> None:
        self._set("texts", list(self.texts))
        self._set("answers", list(self.answers))
        self._set("group_ids", np.asarray(self.group_ids).astype(np.int64))
        if self.group_ids.ndim != 1:
            raise ValueError(f"RewardBatch.group_ids must be 1-D [B], got shape {self.group_ids.shape}")
        size = len(self.texts)
        _check_length("answers", self.answers, size)
        _check_length("group_ids", self.group_ids, size)
        for name in ("ground_truths", "task_info"):
            value = getattr(self, name)
            if value is not None:
                self._set(name, list(value))
                _check_length(name, value, size)
        if self.task_info is not None and not all(isinstance(info, dict) for info in self.task_info):
            raise ValueError("RewardBatch.task_info must be a list of dicts, one per rollout")
        for name in ("mask", "answer_mask", *STAT_NAMES):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=bool if name.endswith("mask") else np.float32)
                if value.ndim != 2 or value.shape[0] != size:
                    raise ValueError(f"RewardBatch.{name} must have shape [B={size}, T], got {value.shape}")
                self._set(name, value)
        shapes = {name: getattr(self, name).shape for name in ("mask", "answer_mask", *STAT_NAMES)
                  if getattr(self, name) is not None}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"RewardBatch: token arrays disagree in shape: {shapes}")
        if shapes and self.mask is None:
            raise ValueError("RewardBatch.mask is required when token statistics are given")

    @property
    def batch_size(self) -> int:
        return len(self.texts)

    def token_stat(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(statistic [B, T], mask [B, T]); ``name`` is one of STAT_NAMES. Missing: ValueError."""
        if name not in STAT_NAMES:
            raise ValueError(f"unknown token statistic {name!r}; known: {STAT_NAMES}")
        value = getattr(self, name)
        if value is None or self.mask is None:
            raise ValueError(f"this reward needs RewardBatch.{name} and RewardBatch.mask (from the sampler)")
        mask = self.mask if name != "margin" or self.answer_mask is None else self.answer_mask & self.mask
        return value, mask

    def response_lengths(self) -> np.ndarray:
        """[B] number of response tokens (from ``mask``), or characters when there is no mask."""
        if self.mask is not None:
            return self.mask.sum(axis=1).astype(np.int64)
        return np.array([len(t) for t in self.texts], dtype=np.int64)

    def info(self, row: int, key: str, default: Any = None) -> Any:
        """``task_info[row][key]``, or ``default`` when there is no task_info or no such key."""
        return default if self.task_info is None else self.task_info[row].get(key, default)

    def require(self, name: str, reward: str) -> Any:
        """The optional field ``name``; a ValueError naming the reward when it is missing."""
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"reward {reward!r} needs RewardBatch.{name}, which is None")
        return value

    def graded_answers(self) -> list[str | None]:
        """Normalised ``answers`` with the reward-hacking guard applied: in a row whose ``task_info``
        says ``answer_type == "number"``, an answer that is not a number literal (``14+33``) is None."""
        answers = [normalize_answer(answer) for answer in self.answers]
        return [
            None if self.info(row, "answer_type") == "number" and not is_number_literal(answer) else answer
            for row, answer in enumerate(answers)
        ]

    @classmethod
    def from_texts(
        cls, texts: Sequence[str], group_ids: Sequence[int], extract_fn: ExtractFn = extract_answer, **fields: Any
    ) -> "RewardBatch":
        """A batch without token statistics; answers extracted with ``extract_fn``."""
        return cls(texts=list(texts), answers=[extract_fn(t) for t in texts], group_ids=np.asarray(group_ids),
                   **fields)

    @classmethod
    def from_rollout(
        cls, rollout: Any, texts: Sequence[str], extract_fn: ExtractFn = extract_answer, **fields: Any
    ) -> "RewardBatch":
        """A batch from a sampler :class:`~urlvr_jax.sampling.rollout.Rollout` and its decoded texts.

        ``fields`` may set ``answer_mask``, ``ground_truths``, ``task_info``, ``teacher_answers``.
        """
        arrays = {name: np.asarray(getattr(rollout, name)) for name in ("mask", *STAT_NAMES)}
        return cls.from_texts(texts, np.asarray(rollout.group_ids), extract_fn, **arrays, **fields)


def _check_length(name: str, value: Sequence, size: int) -> None:
    if len(value) != size:
        raise ValueError(f"RewardBatch.{name} has {len(value)} entries but there are {size} texts")


def select_first_m(group_ids: np.ndarray, m: int) -> np.ndarray:
    """Row indices keeping the first ``m`` rollouts of every group, in batch (generation) order.

    This is TTRL's "vote on N, train on the first M": compute rewards on all N, then keep these rows.
    """
    if m < 1:
        raise ValueError(f"select_first_m: m must be >= 1, got {m}")
    keep = []
    for group, rows in group_rows(group_ids).items():
        if len(rows) < m:
            raise ValueError(f"select_first_m: group {group} has {len(rows)} rollouts, fewer than m={m}")
        keep.append(rows[:m])
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)
