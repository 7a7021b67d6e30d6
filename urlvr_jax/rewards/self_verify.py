"""Self-verification: the policy judges its own Countdown solutions (the paper's external reward).

The training loop passes its sampler as ``generate_fn(prompts) -> texts`` (one verification per
solution). The verification rollouts are only parsed into scores here: they never enter the
training batch, so they are never trained on.

Verdict parsing (:func:`parse_verdict`): the last ``\\boxed{...}`` decides (True/yes/correct -> 1,
False/no/incorrect -> 0); otherwise a keyword fallback on the whole text: any negative word
(false, incorrect, invalid, wrong) -> 0, else any positive word (true, correct, valid) -> 1;
otherwise 0. Word matching is whole-word and case-insensitive.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import numpy as np

from urlvr_jax.rewards.answers import extract_boxed

GenerateFn = Callable[[list[str]], list[str]]

COUNTDOWN_VERIFY_TEMPLATE = """You are checking a solution to a Countdown puzzle.
Numbers: {numbers}
Target: {target}

Solution:
{solution}

Check the final answer of the solution carefully:
1. It uses only the given numbers.
2. It uses each given number exactly once.
3. It is an arithmetic expression using + - * / and parentheses, not an equation.
4. It evaluates exactly to the target.
Reason step by step, then reply \\boxed{{True}} if all four checks pass and \\boxed{{False}} otherwise."""

MAX_SOLUTION_CHARS = 4000

_POSITIVE_BOX = {"true", "yes", "correct", "valid", "1"}
_NEGATIVE_BOX = {"false", "no", "incorrect", "invalid", "wrong", "0"}
_NEGATIVE_WORD = re.compile(r"\b(?:false|incorrect|invalid|wrong)\b", re.IGNORECASE)
_POSITIVE_WORD = re.compile(r"\b(?:true|correct|valid)\b", re.IGNORECASE)
_BOX_WORD = re.compile(r"\\(?:text|textbf|mathrm)\s*\{([^{}]*)\}")


def parse_verdict(text: str) -> float:
    """1.0 for a True verdict, 0.0 for False or no verdict (see the module docstring)."""
    boxed = extract_boxed(text)
    if boxed is not None:
        word = _BOX_WORD.sub(r"\1", boxed).strip().strip(".").lower()
        if word in _POSITIVE_BOX:
            return 1.0
        if word in _NEGATIVE_BOX:
            return 0.0
    if _NEGATIVE_WORD.search(text):
        return 0.0
    return 1.0 if _POSITIVE_WORD.search(text) else 0.0


def verification_prompts(
    solutions: Sequence[str],
    task_info: Sequence[dict[str, Any]],
    template: str = COUNTDOWN_VERIFY_TEMPLATE,
    max_solution_chars: int = MAX_SOLUTION_CHARS,
) -> list[str]:
    """One verification prompt per solution; ``task_info`` rows need ``numbers`` and ``target``.

    A solution longer than ``max_solution_chars`` keeps only its end (where the answer is).
    """
    if len(solutions) != len(task_info):
        raise ValueError(f"verification_prompts: {len(solutions)} solutions but {len(task_info)} task_info rows")
    prompts = []
    for row, (solution, info) in enumerate(zip(solutions, task_info)):
        missing = [key for key in ("numbers", "target") if key not in info]
        if missing:
            raise ValueError(f"self_verify: task_info[{row}] has no {missing} (needed by the prompt template)")
        numbers = ", ".join(str(n) for n in info["numbers"])
        prompts.append(template.format(numbers=numbers, target=info["target"],
                                       solution=solution[-max_solution_chars:]))
    return prompts


def self_verify_scores(
    solutions: Sequence[str],
    task_info: Sequence[dict[str, Any]],
    generate_fn: GenerateFn,
    template: str = COUNTDOWN_VERIFY_TEMPLATE,
) -> np.ndarray:
    """[B] float32 verdicts of ``generate_fn`` on the verification prompts of ``solutions``."""
    prompts = verification_prompts(solutions, task_info, template)
    verdicts = list(generate_fn(prompts))
    if len(verdicts) != len(prompts):
        raise ValueError(f"self_verify: generate_fn returned {len(verdicts)} texts for {len(prompts)} prompts")
    return np.array([parse_verdict(v) for v in verdicts], dtype=np.float32)
