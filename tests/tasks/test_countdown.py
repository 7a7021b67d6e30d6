"""Countdown generator and verifier."""

import ast
import importlib.util
from collections import Counter
from fractions import Fraction

import pytest

from urlvr_jax.tasks.base import Example
from urlvr_jax.tasks.countdown import CountdownTask, countdown_question

HAS_CHECKER = importlib.util.find_spec("urlvr_jax.rewards.countdown") is not None
needs_checker = pytest.mark.skipif(not HAS_CHECKER, reason="urlvr_jax.rewards.countdown not written yet")


def _reference_eval(expression: str) -> tuple[Fraction, list[int]]:
    """Exact value and the integer literals of an expression (independent of the generator's code)."""
    ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
           ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}
    used: list[int] = []

    def walk(node):
        if isinstance(node, ast.BinOp):
            return ops[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            used.append(node.value)
            return Fraction(node.value)
        raise AssertionError(f"unexpected node {ast.dump(node)}")

    return walk(ast.parse(expression, mode="eval").body), used


def _solution_expression(example: Example) -> str:
    assert example.solution.startswith("<answer>") and example.solution.endswith("</answer>")
    return example.solution[len("<answer>"):-len("</answer>")]


def test_generated_instances_are_solvable_and_in_range():
    examples = CountdownTask().generate(300, seed=0)
    counts = Counter(len(e.info["numbers"]) for e in examples)
    assert set(counts) == {3, 4} and min(counts.values()) > 100
    for e in examples:
        numbers, target = e.info["numbers"], e.info["target"]
        assert all(1 <= x <= 99 for x in numbers) and 1 <= target <= 100
        value, used = _reference_eval(_solution_expression(e))
        assert value == target and sorted(used) == sorted(numbers)
        assert e.answer == str(target) and e.info["answer_type"] == "expression"
        assert e.prompt == countdown_question(numbers, target)
        assert "<answer>" in e.prompt and str(target) in e.prompt


def test_generate_is_deterministic():
    task = CountdownTask()
    assert task.generate(10, 1) == task.generate(10, 1)
    assert task.generate(4, 1) == task.generate(10, 1)[:4]
    assert task.generate(10, 1) != task.generate(10, 2)


def test_options_and_errors():
    examples = CountdownTask(min_numbers=4, max_numbers=4, max_number=20, max_target=50, ops="+-").generate(20, 0)
    for e in examples:
        assert len(e.info["numbers"]) == 4 and max(e.info["numbers"]) <= 20 and e.info["target"] <= 50
        assert not set(_solution_expression(e)) & set("*/")
    with pytest.raises(ValueError, match="ops"):
        CountdownTask(ops="^")
    with pytest.raises(RuntimeError, match="target"):
        CountdownTask(max_number=1, ops="+", min_target=50, max_target=60, max_tries=20).generate(1, 0)


def test_extract_answer_takes_last_tag():
    task = CountdownTask()
    assert task.extract_answer("<answer>1+2</answer> then <answer> (3 * 4) </answer>") == "(3 * 4)"
    assert task.extract_answer("no tags") is None
    assert task.extract_answer("<answer></answer>") is None


def test_verify_without_answer_is_zero():
    example = CountdownTask().make_example([4, 6, 1], 24, "4 * 6 * 1")
    assert CountdownTask().verify("I think it is 4*6*1", example) == 0.0


@needs_checker
def test_verify_uses_check_countdown():
    task = CountdownTask()
    example = task.make_example([4, 6, 1], 24, "4 * 6 * 1")
    assert task.verify("<think>...</think><answer>4 * 6 * 1</answer>", example) == 1.0
    assert task.verify("<answer>(6 - 1) * 4 + 4</answer>", example) == 0.0  # 4 used twice
    assert task.verify("<answer>4 * 6</answer>", example) == 0.0  # 1 unused
    assert task.verify("<answer>4 * 6 + 1</answer>", example) == 0.0  # 25
    for e in task.generate(50, seed=5):
        assert task.verify(e.solution, e) == 1.0
