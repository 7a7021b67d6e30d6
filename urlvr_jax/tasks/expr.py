"""Small integer expression trees shared by the arithmetic and Countdown generators.

A tree is a ``Node``: a leaf holding an integer, or an operator (``+ - * /``) with two children.
``render`` writes it with the fewest parentheses that keep its structure (negative leaves are
parenthesised), ``evaluate`` computes its exact value and ``reduction_steps`` lists the step-by-step
evaluation used for worked solutions.
"""

from __future__ import annotations

import dataclasses
import random
from fractions import Fraction

PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


@dataclasses.dataclass(frozen=True)
class Node:
    value: int | None = None
    op: str | None = None
    left: "Node | None" = None
    right: "Node | None" = None

    @property
    def is_leaf(self) -> bool:
        return self.op is None

    @property
    def n_ops(self) -> int:
        return 0 if self.is_leaf else 1 + self.left.n_ops + self.right.n_ops

    def leaves(self) -> list[int]:
        return [self.value] if self.is_leaf else self.left.leaves() + self.right.leaves()


def leaf(value: int) -> Node:
    return Node(value=int(value))


def binary(op: str, left: Node, right: Node) -> Node:
    if op not in PRECEDENCE:
        raise ValueError(f"unknown operator {op!r}; expected one of {''.join(PRECEDENCE)}")
    return Node(op=op, left=left, right=right)


def evaluate(node: Node) -> Fraction:
    """The exact value (raises ZeroDivisionError on division by zero)."""
    if node.is_leaf:
        return Fraction(node.value)
    a, b = evaluate(node.left), evaluate(node.right)
    if node.op == "+":
        return a + b
    if node.op == "-":
        return a - b
    if node.op == "*":
        return a * b
    return a / b


def _needs_parens(child: Node, parent_op: str, is_right: bool) -> bool:
    if child.is_leaf:
        return child.value < 0
    if PRECEDENCE[child.op] != PRECEDENCE[parent_op]:
        return PRECEDENCE[child.op] < PRECEDENCE[parent_op]
    return is_right  # a right child of equal precedence keeps its grouping explicit


def render(node: Node, spaced: bool = False) -> str:
    """The expression text, e.g. ``(7+5)*3-4`` or, spaced, ``(7 + 5) * 3 - 4``."""
    if node.is_leaf:
        return str(node.value)
    parts = []
    for child, is_right in ((node.left, False), (node.right, True)):
        text = render(child, spaced)
        parts.append(f"({text})" if _needs_parens(child, node.op, is_right) else text)
    sep = f" {node.op} " if spaced else node.op
    return sep.join(parts)


def reduce_step(node: Node) -> Node:
    """Evaluate the leftmost operation whose operands are both numbers (integer results only)."""
    if node.is_leaf:
        raise ValueError("a leaf cannot be reduced")
    if node.left.is_leaf and node.right.is_leaf:
        value = evaluate(node)
        if value.denominator != 1:
            raise ValueError(f"non-integer intermediate result {value} in {render(node)}")
        return leaf(int(value))
    if not node.left.is_leaf:
        return dataclasses.replace(node, left=reduce_step(node.left))
    return dataclasses.replace(node, right=reduce_step(node.right))


def reduction_steps(node: Node) -> list[Node]:
    """``[node, ..., leaf(value)]``: one operation evaluated per step."""
    steps = [node]
    while not steps[-1].is_leaf:
        steps.append(reduce_step(steps[-1]))
    return steps


def random_tree(rng: random.Random, values: list[int], ops: str) -> Node:
    """A uniformly random split structure over ``values`` (kept in order) with random operators."""
    if len(values) == 1:
        return leaf(values[0])
    split = rng.randint(1, len(values) - 1)
    op = rng.choice(ops)
    return binary(op, random_tree(rng, values[:split], ops), random_tree(rng, values[split:], ops))


def flat_tree(values: list[int], op_sequence: list[str]) -> Node:
    """The tree of ``v0 op0 v1 op1 v2 ...`` parsed with the usual precedence, left to right."""
    if len(op_sequence) != len(values) - 1:
        raise ValueError("need exactly one operator between consecutive values")
    terms, add_ops = [], []
    current = leaf(values[0])
    for op, value in zip(op_sequence, values[1:]):
        if PRECEDENCE[op] == 2:
            current = binary(op, current, leaf(value))
        else:
            terms.append(current)
            add_ops.append(op)
            current = leaf(value)
    terms.append(current)
    node = terms[0]
    for op, term in zip(add_ops, terms[1:]):
        node = binary(op, node, term)
    return node
