"""Answer extraction, normalisation and number literals on hand-made cases."""

from fractions import Fraction

import pytest

from urlvr_jax.rewards.answers import (
    extract_answer,
    extract_boxed,
    is_number_literal,
    last_number,
    normalize_answer,
    parse_number,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("so $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("\\boxed{a{b}c} then a truncated \\boxed{d", "a{b}c"),  # unclosed last box: earlier one
        ("\\boxed{1} and later \\boxed{2}", "2"),  # the last box wins
        ("\\boxed{\\boxed{3}}", "3"),
        ("\\fbox{8}", "8"),
        ("x \\boxed 7 y", "7"),
        ("So the final answer is 1,000.", "1000"),
        ("The answer is: x = 5.", "5"),
        ("values 3, 4 and -2.5", "-2.5"),
        ("answer: 3/4 ok", "3/4"),
        ("\\boxed{ \\dfrac{3}{4} }", "\\frac{3}{4}"),
        ("\\boxed{45^\\circ}", "45"),
        ("\\boxed{10\\%}", "10"),
        ("\\boxed{\\text{(B)}}", "(B)"),
        ("1,2,3", "3"),
        ("nothing to see", None),
        ("", None),
        ("\\boxed{}", None),  # empty box, no number anywhere
        ("\\boxed{   }", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_boxed_deep_and_unbalanced():
    deep = "\\boxed{" + "{" * 3000 + "7" + "}" * 3000 + "}"
    assert extract_boxed(deep) == "{" * 3000 + "7" + "}" * 3000
    assert extract_boxed("\\boxed{" * 5000) is None
    assert extract_boxed("\\boxed{1}" + "\\boxed{" * 5000) == "1"
    assert extract_boxed("no box") is None


def test_last_number():
    assert last_number("a -12 b 3.25 c") == "3.25"
    assert last_number("1,234,567 items") == "1,234,567"
    assert last_number("none") is None


def test_normalize_answer():
    assert normalize_answer(" $x = \\left( 3 \\right)$. ") == "(3)"
    assert normalize_answer("\\text{ 12 }") == "12"
    assert normalize_answer("{5}") == "5"
    assert normalize_answer("\\boxed{4}") == "4"
    assert normalize_answer("$$") is None
    assert normalize_answer(None) is None


@pytest.mark.parametrize(
    "answer, value",
    [
        ("47", Fraction(47)),
        ("-3", Fraction(-3)),
        ("0.5", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("1/2", Fraction(1, 2)),
        ("\\frac{1}{2}", Fraction(1, 2)),
        ("-\\frac{1}{2}", Fraction(-1, 2)),
        ("\\frac{-3}{6}", Fraction(-1, 2)),
        ("1/0", None),  # a literal, but no value
        ("9" * 5000, None),  # a literal too long to convert
    ],
)
def test_parse_number_literals(answer, value):
    assert is_number_literal(answer)
    assert parse_number(answer) == value


@pytest.mark.parametrize("answer", ["14+33", "2^{10}", "1e5", "x", "", None, "\\sqrt{4}", "3-1", "--3"])
def test_not_number_literals(answer):
    assert not is_number_literal(answer)
    assert parse_number(answer) is None
