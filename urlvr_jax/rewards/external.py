"""External rewards (ground truth, Countdown verifier, self-verification) and control rewards."""

from __future__ import annotations

import numpy as np

from urlvr_jax.rewards.answers import extract_boxed, normalize_answer
from urlvr_jax.rewards.batch import RewardBatch
from urlvr_jax.rewards.countdown import check_countdown, extract_countdown_answer
from urlvr_jax.rewards.grading import DEFAULT_TIMEOUT_S, equivalent_many
from urlvr_jax.rewards.registry import register_reward
from urlvr_jax.rewards.self_verify import COUNTDOWN_VERIFY_TEMPLATE, GenerateFn, parse_verdict, self_verify_scores


@register_reward("ground_truth", kind="external")
def ground_truth(batch: RewardBatch, timeout_s: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
    """1 if the answer is equivalent to the gold answer (supervised RLVR oracle), else 0.

    Rows whose ``task_info`` has ``answer_type="number"`` need a number literal (reward-hacking guard);
    Countdown rows (``answer_type="expression"`` with ``numbers``) are judged by the Countdown verifier.
    """
    golds = batch.require("ground_truths", "ground_truth")
    missing = [row for row, gold in enumerate(golds) if gold is None]
    if missing:
        raise ValueError(f"ground_truth: RewardBatch.ground_truths is None at rows {missing[:10]}")
    types = [batch.info(row, "answer_type") for row in range(batch.batch_size)]
    verdicts = equivalent_many(list(zip(batch.answers, golds)), types, timeout_s)
    for row, answer_type in enumerate(types):
        if answer_type == "expression" and batch.info(row, "numbers") is not None:
            numbers, target = _countdown_task(batch, row, "ground_truth")
            verdicts[row] = batch.answers[row] is not None and check_countdown(batch.answers[row], numbers, target)
    return np.asarray(verdicts, dtype=np.float32)


def _countdown_task(batch: RewardBatch, row: int, reward: str) -> tuple[list[int], int]:
    info = batch.require("task_info", reward)[row]
    missing = [key for key in ("numbers", "target") if key not in info]
    if missing:
        raise ValueError(f"{reward}: task_info[{row}] has no {missing}")
    return list(info["numbers"]), int(info["target"])


@register_reward("countdown", kind="external")
def countdown(batch: RewardBatch) -> np.ndarray:
    """1 if the response's ``<answer>`` (or ``\\boxed{}``) expression solves the Countdown task."""
    scores = np.zeros(batch.batch_size, dtype=np.float32)
    for row, text in enumerate(batch.texts):
        numbers, target = _countdown_task(batch, row, "countdown")
        expression = extract_countdown_answer(text)
        scores[row] = float(expression is not None and check_countdown(expression, numbers, target))
    return scores


@register_reward("self_verify", kind="external")
def self_verify(
    batch: RewardBatch, generate_fn: GenerateFn | None = None, template: str = COUNTDOWN_VERIFY_TEMPLATE
) -> np.ndarray:
    """The policy's own verdict on each solution (1 True, 0 False).

    Verdict texts come from ``task_info[i]["verification"]`` when every row has one, else from
    ``generate_fn`` (the sampler) on the verification prompts; neither is trained on.
    """
    info = batch.require("task_info", "self_verify")
    if all("verification" in row for row in info):
        return np.array([parse_verdict(row["verification"]) for row in info], dtype=np.float32)
    if generate_fn is None:
        raise ValueError("self_verify: give generate_fn, or task_info[i]['verification'] for every row")
    for row in range(batch.batch_size):
        _countdown_task(batch, row, "self_verify")
    return self_verify_scores(batch.texts, info, generate_fn, template)


@register_reward("random", kind="control")
def random(batch: RewardBatch, seed: int = 0) -> np.ndarray:
    """U(0, 1) noise, a spurious-reward control (pass a different ``seed`` each step)."""
    return np.random.default_rng(seed).random(batch.batch_size).astype(np.float32)


@register_reward("format", kind="control")
def format_reward(batch: RewardBatch, require: str = "boxed") -> np.ndarray:
    """1 if the response has a non-empty ``\\boxed{}`` (``require="boxed"``) or an extracted answer
    (``require="answer"``), else 0: a control that rewards the format, not the content."""
    if require == "boxed":
        found = [normalize_answer(extract_boxed(text)) is not None for text in batch.texts]
    elif require == "answer":
        found = [normalize_answer(answer) is not None for answer in batch.answers]
    else:
        raise ValueError(f"format: unknown require={require!r}; known: 'boxed', 'answer'")
    return np.asarray(found, dtype=np.float32)
