"""Arithmetic generator and verifier."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urlvr_jax.tasks.arithmetic import ArithmeticTask
from urlvr_jax.tasks.base import Example, extract_last_boxed, parse_int_literal
from urlvr_jax.tasks.expr import evaluate, flat_tree, leaf, binary, reduction_steps, render


def _py_eval(expression: str) -> int:
    """Python evaluates the compact syntax (+ - * and parentheses) the same way."""
    return eval(expression, {"__builtins__": {}}, {})  # noqa: S307 - test-only, generated text


def test_generate_is_deterministic_and_prefix_stable():
    task = ArithmeticTask()
    assert task.generate(20, seed=3) == task.generate(20, seed=3)
    assert task.generate(5, seed=3) == task.generate(20, seed=3)[:5]
    assert task.generate(20, seed=3) != task.generate(20, seed=4)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), digits=st.integers(1, 3), parens=st.booleans(),
       ops=st.sampled_from(["+-*", "+", "-*", "*"]))
def test_compact_answer_and_steps_are_correct(seed, digits, parens, ops):
    task = ArithmeticTask(digits=digits, parens=parens, ops=ops, min_ops=1, max_ops=4)
    for ex in task.generate(5, seed):
        assert ex.prompt.endswith("=")
        value = _py_eval(ex.prompt[:-1])
        assert ex.answer == str(value)
        segments = ex.solution.split("=")
        assert segments[-1] == ex.answer
        assert all(_py_eval(s) == value for s in segments)  # every step keeps the value
        assert 1 <= ex.info["n_ops"] <= 4 and ex.info["answer_type"] == "number"
        assert task.verify(ex.solution, ex) == 1.0
        assert task.verify(ex.prompt + ex.solution, ex) == 1.0


def test_compact_default_length_suits_a_tiny_model():
    lengths = [len(e.prompt + e.solution) for e in ArithmeticTask().generate(300, seed=0)]
    assert max(lengths) <= 80 and sum(lengths) / len(lengths) >= 15


def test_compact_example_text():
    ex = ArithmeticTask().make_example(flat_tree([7, 5, 3], ["+", "*"]))
    assert (ex.prompt, ex.solution, ex.answer) == ("7+5*3=", "7+15=22", "22")
    no_steps = ArithmeticTask(show_steps=False).make_example(flat_tree([7, 5, 3], ["+", "*"]))
    assert no_steps.solution == "22"


def test_boxed_example_text_and_verify():
    task = ArithmeticTask(fmt="boxed")
    tree = binary("-", binary("*", binary("+", leaf(7), leaf(5)), leaf(3)), leaf(4))
    ex = task.make_example(tree)
    assert ex.prompt == "Compute (7 + 5) * 3 - 4."
    assert ex.solution == "(7 + 5) * 3 - 4\n= 12 * 3 - 4\n= 36 - 4\n= 32\nThe answer is \\boxed{32}."
    assert task.verify(ex.solution, ex) == 1.0
    assert task.verify("so \\boxed{31} ... no wait, \\boxed{ 32 }", ex) == 1.0
    assert task.verify("\\boxed{32} then \\boxed{31}", ex) == 0.0
    assert task.verify("The answer is 32.", ex) == 0.0  # no box
    assert task.verify("\\boxed{32.0}", ex) == 0.0
    assert task.verify("\\boxed{30+2}", ex) == 0.0
    assert task.verify("\\boxed{32", ex) == 0.0  # truncated


def test_equation_example_puts_the_answer_first():
    task = ArithmeticTask(fmt="equation")
    ex = task.make_example(binary("+", leaf(13), leaf(9)))
    assert (ex.prompt, ex.info["response_prefix"], ex.answer) == ("What is 13 + 9?", "13 + 9 =", "22")
    assert task.verify(ex.solution, ex) == 1.0
    for right in (" 22", " 22.", " 22, because", "22\n\nThe answer", " 22<|im_end|>"):
        assert task.verify(right, ex) == 1.0, right
    for wrong in (" 21", " 22.5", " 225", " twenty-two", "", " = 22", " 2,2"):
        assert task.verify(wrong, ex) == 0.0, wrong
    assert task.extract_answer(" 21 is wrong") == "21"


def test_max_operand_bounds_the_operands():
    task = ArithmeticTask(digits=2, max_operand=20, min_ops=1, max_ops=1, ops="+", fmt="equation")
    operands = {int(v) for ex in task.generate(300, seed=1) for v in ex.info["expression"].split("+")}
    assert operands == set(range(1, 21))  # 300 draws of 2 operands cover all 20 values


def test_unevaluated_expression_does_not_count():
    ex = Example(prompt="14+33=", answer="47", solution="47", info={"format": "compact"})
    task = ArithmeticTask()
    assert task.verify("14+33", ex) == 0.0  # no '=': the whole text is the answer, and it is not a literal
    assert task.verify("47", ex) == 1.0
    assert task.verify("14+33=47", ex) == 1.0
    assert task.verify("14+33=47=", ex) == 0.0
    assert task.verify("=46", ex) == 0.0
    boxed = Example(prompt="Compute 14 + 33.", answer="47", info={"format": "boxed"})
    assert task.verify("\\boxed{14+33}", boxed) == 0.0
    assert task.verify("\\boxed{47}", boxed) == 1.0  # the example's format wins over the task's


def test_negative_results_render_and_verify():
    tree = flat_tree([3, 7, 2], ["-", "*"])
    steps = [render(s) for s in reduction_steps(tree)]
    assert steps == ["3-7*2", "3-14", "-11"]
    tree2 = binary("*", binary("-", leaf(3), leaf(8)), leaf(6))
    assert [render(s) for s in reduction_steps(tree2)] == ["(3-8)*6", "(-5)*6", "-30"]
    ex = ArithmeticTask().make_example(tree2)
    assert ArithmeticTask().verify("(-5)*6=-30", ex) == 1.0


def test_render_keeps_structure():
    right_sub = binary("-", leaf(9), binary("-", leaf(4), leaf(2)))
    assert render(right_sub) == "9-(4-2)" and evaluate(right_sub) == 7
    assert render(binary("*", binary("+", leaf(1), leaf(2)), leaf(3)), spaced=True) == "(1 + 2) * 3"


def test_helpers():
    assert parse_int_literal(" -12 ") == -12 and parse_int_literal("+3") == 3
    for bad in ("1e3", "4.0", "1 2", "", None, "twelve", "١٢"):
        assert parse_int_literal(bad) is None
    assert extract_last_boxed("a \\boxed{\\frac{1}{2}} b") == "\\frac{1}{2}"
    assert extract_last_boxed("\\fbox{3}") == "3"
    assert extract_last_boxed("nothing") is None


@pytest.mark.parametrize("bad", [dict(fmt="latex"), dict(digits=0), dict(min_ops=3, max_ops=2), dict(ops="/"),
                                 dict(max_operand=-1)])
def test_bad_options_raise(bad):
    with pytest.raises(ValueError):
        ArithmeticTask(**bad)
