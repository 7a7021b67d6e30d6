"""Countdown with 3-4 numbers: combine every given number exactly once with ``+ - * /`` to hit a target.

Instances are solvable by construction, as in Countdown-Tasks-3to4: draw 3-4 numbers in 1..99, build a
random expression tree over them with random operators, and take its value as the target (kept only if
it is an integer in ``[min_target, max_target]`` and every division is exact). The response must give
an expression inside ``<answer>...</answer>``; checking is done by
``urlvr_jax.rewards.countdown.check_countdown(expression, numbers, target)``.
"""

from __future__ import annotations

import dataclasses
import random
from typing import ClassVar, Sequence

from urlvr_jax.tasks.base import Example, extract_last_tag, register_task
from urlvr_jax.tasks.expr import Node, evaluate, random_tree, render


def countdown_question(numbers: Sequence[int], target: int) -> str:
    """The Countdown question text (the user message, before any template)."""
    listed = ", ".join(str(int(x)) for x in numbers)
    return (
        f"Using the numbers [{listed}], write an arithmetic expression that equals {int(target)}. "
        "Use each number exactly once, combined with +, -, *, / and parentheses. "
        "Think it through first, then give only the expression inside <answer> </answer> tags, "
        "for example <answer>(1 + 2) * 3</answer>."
    )


def compact_question(numbers: Sequence[int], target: int) -> str:
    """The compact question (``fmt="compact"``, for tiny character-level models): ``"3 5 7>22:"``."""
    return " ".join(str(int(x)) for x in numbers) + f">{int(target)}:"


def _all_divisions_exact(node: Node) -> bool:
    if node.is_leaf:
        return True
    if node.op == "/":
        value = evaluate(node)
        if value.denominator != 1:
            return False
    return _all_divisions_exact(node.left) and _all_divisions_exact(node.right)


def _check_countdown(expression: str, numbers: Sequence[int], target: int) -> bool:
    try:
        from urlvr_jax.rewards.countdown import check_countdown
    except ImportError as err:
        raise ImportError(
            "Countdown verification needs urlvr_jax.rewards.countdown.check_countdown, which is not available"
        ) from err
    return bool(check_countdown(expression, numbers, target))


@dataclasses.dataclass(frozen=True)
class CountdownTask:
    """Solvable Countdown instances with ``min_numbers``..``max_numbers`` numbers in ``[1, max_number]``."""

    name: ClassVar[str] = "countdown"
    min_numbers: int = 3
    max_numbers: int = 4
    max_number: int = 99
    min_target: int = 1
    max_target: int = 100
    ops: str = "+-*/"
    max_tries: int = 10_000
    fmt: str = "text"  # text: the full question; compact: "3 5 7>22:" (the answer format is the same)

    def __post_init__(self):
        if not 2 <= self.min_numbers <= self.max_numbers <= 6:
            raise ValueError(f"need 2 <= min_numbers <= max_numbers <= 6, got {self.min_numbers}, {self.max_numbers}")
        if self.max_number < 1 or self.min_target > self.max_target:
            raise ValueError("countdown needs max_number >= 1 and min_target <= max_target")
        if self.fmt not in ("text", "compact"):
            raise ValueError(f"countdown fmt must be 'text' or 'compact', got {self.fmt!r}")
        if not self.ops or set(self.ops) - set("+-*/"):
            raise ValueError(f"countdown ops must be a non-empty subset of '+-*/', got {self.ops!r}")

    def sample_instance(self, rng: random.Random) -> tuple[list[int], Node]:
        """(numbers in presentation order, a solution tree) for one solvable instance."""
        count = rng.randint(self.min_numbers, self.max_numbers)
        for _ in range(self.max_tries):
            numbers = [rng.randint(1, self.max_number) for _ in range(count)]
            order = rng.sample(numbers, len(numbers))
            tree = random_tree(rng, order, self.ops)
            try:
                value = evaluate(tree)
            except ZeroDivisionError:
                continue
            if value.denominator == 1 and self.min_target <= value <= self.max_target and _all_divisions_exact(tree):
                return numbers, tree
        raise RuntimeError(f"no countdown instance with a target in [{self.min_target}, {self.max_target}] "
                           f"found in {self.max_tries} tries; widen the target range")

    def make_example(self, numbers: Sequence[int], target: int, solution: str | None = None) -> Example:
        numbers = [int(x) for x in numbers]
        info = {"task": self.name, "numbers": numbers, "target": int(target), "answer_type": "expression"}
        solution_text = f"<answer>{solution}</answer>" if solution is not None else None
        question = compact_question if self.fmt == "compact" else countdown_question
        return Example(prompt=question(numbers, target), answer=str(int(target)),
                       solution=solution_text, info=info)

    def generate(self, n: int, seed: int) -> list[Example]:
        rng = random.Random(seed)
        examples = []
        for _ in range(n):
            numbers, tree = self.sample_instance(rng)
            examples.append(self.make_example(numbers, int(evaluate(tree)), render(tree, spaced=True)))
        return examples

    def extract_answer(self, response_text: str, example: Example | None = None) -> str | None:
        return extract_last_tag(response_text, "answer") or None

    def verify(self, response_text: str, example: Example) -> float:
        expression = self.extract_answer(response_text, example)
        if expression is None:
            return 0.0
        return float(_check_countdown(expression, example.info["numbers"], example.info["target"]))


register_task(CountdownTask.name, CountdownTask)
