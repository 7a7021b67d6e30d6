"""The Countdown verifier: does an arithmetic expression reach the target with the given numbers?

Rules checked by :func:`check_countdown` (those of TinyZero's evaluator, written with ``ast``):

* only decimal integer literals, binary ``+ - * /``, unary minus/plus and parentheses (``×``, ``\\times``,
  ``\\cdot``, ``÷``, ``\\div``, a Unicode minus and ``\\left(``/``\\right)`` are accepted spellings);
  powers, names, calls, floats and anything else make it False;
* the literals are exactly the given numbers as a multiset: each used exactly once, all used;
* it is an expression, not an equation: any ``=`` (``expr = target``) makes it False, because the
  self-verification prompt asks for an expression and TinyZero's character filter rejects ``=``;
* exact rational arithmetic (fractions); a division by zero makes it False;
* expressions over ``MAX_EXPRESSION_CHARS`` characters are False (no parser recursion blow-up).
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction
from typing import Sequence

from urlvr_jax.rewards.answers import extract_boxed
from urlvr_jax.tasks.base import extract_last_tag

MAX_EXPRESSION_CHARS = 400

_SPELLINGS = (
    ("\\left", ""), ("\\right", ""), ("\\times", "*"), ("\\cdot", "*"), ("×", "*"), ("·", "*"),
    ("\\div", "/"), ("÷", "/"), ("−", "-"), ("–", "-"), ("\\{", "("), ("\\}", ")"),
    ("[", "("), ("]", ")"), ("{", "("), ("}", ")"), ("$", ""),
)
_ALLOWED_CHARS = re.compile(r"[0-9+\-*/().\s]*")
_BINARY = {ast.Add: Fraction.__add__, ast.Sub: Fraction.__sub__, ast.Mult: Fraction.__mul__,
           ast.Div: Fraction.__truediv__}


class _Invalid(Exception):
    """The expression breaks a Countdown rule."""


def extract_countdown_answer(text: str) -> str | None:
    """The last ``<answer>...</answer>`` content, else the last ``\\boxed{}``; None if neither (linear time)."""
    answer = extract_last_tag(text, "answer")
    if answer is None:
        answer = extract_boxed(text)
    if answer is None:
        return None
    boxed = extract_boxed(answer)  # "<answer>\\boxed{...}</answer>"
    answer = (boxed if boxed is not None else answer).strip()
    return answer or None


def _evaluate(node: ast.AST, used: list[int]) -> Fraction:
    """Exact value of an allowed expression tree; appends every literal to ``used``."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, used), _evaluate(node.right, used)
        if isinstance(node.op, ast.Div) and right == 0:
            raise _Invalid("division by zero")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand, used)
        return -value if isinstance(node.op, ast.USub) else value
    raise _Invalid(f"not allowed: {type(node).__name__}")


def countdown_value(expression: str) -> tuple[Fraction, list[int]] | None:
    """(exact value, literals used) of an allowed expression; None if it breaks a rule."""
    text = expression.strip()
    for old, new in _SPELLINGS:
        text = text.replace(old, new)
    if not text or len(text) > MAX_EXPRESSION_CHARS or not _ALLOWED_CHARS.fullmatch(text):
        return None  # "=", names, 0x10, 1_0 ...; "**" and "//" fail in _evaluate
    try:
        tree = ast.parse(text, mode="eval")
        used: list[int] = []
        return _evaluate(tree.body, used), used
    except (_Invalid, SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None


def check_countdown(expression: str, numbers: Sequence[int], target: int) -> bool:
    """True iff ``expression`` uses each of ``numbers`` exactly once and evaluates to ``target``."""
    if not isinstance(expression, str):
        return False
    result = countdown_value(expression)
    if result is None:
        return False
    value, used = result
    return sorted(used) == sorted(int(n) for n in numbers) and value == Fraction(int(target))
