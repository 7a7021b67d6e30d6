"""Multi-step integer arithmetic with a worked solution and an exact integer verifier.

Three surface formats:

* ``compact`` (for tiny character-level models): prompt ``7+5*3=``, solution ``7+15=22``, answer ``22``.
  The response's answer is the text after its last ``=``.
* ``boxed`` (math style): prompt ``Compute 7 + 5 * 3.``, a worked solution whose last line is
  ``The answer is \\boxed{22}.``; the response's answer is the content of its last ``\\boxed{}``.
* ``equation`` (answer first, for small chat models on a short budget): prompt ``What is 7 + 5 * 3?``, and the
  assistant's turn begins with ``7 + 5 * 3 =`` (``info["response_prefix"]``, appended to the formatted prompt),
  so the first tokens the model writes are its answer; the response's answer is the integer it starts with
  (`` 22.`` and `` 22, because`` give ``22``; `` 22.5`` and `` twenty`` give none).

Either way the answer must be a plain integer literal equal to the true value: an unevaluated
expression such as ``14+33`` does not count as ``47``.

``choices=c`` makes it multiple choice: the prompt lists ``c`` candidate values, the true one among ``c - 1``
distractors near it (fixed per expression), ``(9|22|17|30)7+5*3=`` (compact) or ``Compute 7 + 5 * 3. Options:
9, 22, 17, 30.`` (boxed); the answer is the right option's value. Sampling the options at random reaches the
right one within a few samples, so pass@k goes to 1 without any skill (the paper's point on multiple choice).
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import ClassVar

from urlvr_jax.tasks.base import Example, extract_last_boxed, parse_int_literal, register_task
from urlvr_jax.tasks.expr import Node, evaluate, flat_tree, random_tree, reduction_steps, render

FORMATS = ("compact", "boxed", "equation")
_LEADING_INT = re.compile(r"\s*([+-]?[0-9]+)(?![0-9]|[.,][0-9])")


@dataclasses.dataclass(frozen=True)
class ArithmeticTask:
    """Expressions of ``min_ops``..``max_ops`` operations on operands in ``[1, 10**digits - 1]``.

    ``parens=False`` draws a flat expression read with the usual precedence; ``parens=True`` draws a
    random tree, written with the parentheses it needs. ``show_steps=False`` gives answer-only solutions.
    """

    name: ClassVar[str] = "arithmetic"
    digits: int = 1
    max_operand: int = 0  # > 0: operands drawn from [1, max_operand] instead of [1, 10**digits - 1]
    min_ops: int = 2
    max_ops: int = 4
    ops: str = "+-*"
    parens: bool = False
    fmt: str = "compact"
    show_steps: bool = True
    ops_weights: tuple[float, ...] | None = None  # relative frequency of min_ops..max_ops (None: uniform)
    choices: int = 0  # >= 2: multiple choice with this many options listed in the prompt (0: free answer)

    def __post_init__(self):
        if self.fmt not in FORMATS:
            raise ValueError(f"arithmetic fmt must be one of {FORMATS}, got {self.fmt!r}")
        if not 1 <= self.digits <= 6:
            raise ValueError(f"arithmetic digits must be in 1..6, got {self.digits}")
        if self.max_operand < 0:
            raise ValueError(f"arithmetic max_operand must be 0 (use digits) or a positive bound, got {self.max_operand}")
        if not 1 <= self.min_ops <= self.max_ops:
            raise ValueError(f"need 1 <= min_ops <= max_ops, got {self.min_ops}, {self.max_ops}")
        if self.ops_weights is not None and (len(self.ops_weights) != self.max_ops - self.min_ops + 1
                                             or min(self.ops_weights) < 0 or not sum(self.ops_weights)):
            raise ValueError(f"arithmetic ops_weights must give {self.max_ops - self.min_ops + 1} non-negative "
                             f"weights (one per number of operations), got {self.ops_weights}")
        if self.choices == 1 or not 0 <= self.choices <= 10:
            raise ValueError(f"arithmetic choices must be 0 (free answer) or 2..10 options, got {self.choices}")
        if not self.ops or set(self.ops) - set("+-*"):
            raise ValueError(f"arithmetic ops must be a non-empty subset of '+-*', got {self.ops!r}")

    def sample_tree(self, rng: random.Random) -> Node:
        counts = range(self.min_ops, self.max_ops + 1)
        n_ops = rng.choices(counts, weights=self.ops_weights)[0] if self.ops_weights else rng.randint(
            self.min_ops, self.max_ops)
        values = [rng.randint(1, self.max_operand or 10**self.digits - 1) for _ in range(n_ops + 1)]
        if self.parens:
            return random_tree(rng, values, self.ops)
        return flat_tree(values, [rng.choice(self.ops) for _ in range(n_ops)])

    def make_example(self, tree: Node) -> Example:
        """The example (prompt, worked solution, answer) for one expression tree."""
        answer = str(int(evaluate(tree)))
        steps = reduction_steps(tree)[1:]
        info = {"task": self.name, "format": self.fmt, "expression": render(tree),
                "n_ops": tree.n_ops, "answer_type": "number"}
        options = self.options(tree, int(answer))
        if options:
            info["options"] = options
        if self.fmt == "compact":
            solution = "=".join(render(s) for s in steps) if self.show_steps else answer
            listed = f"({'|'.join(options)})" if options else ""
            return Example(prompt=listed + render(tree) + "=", answer=answer, solution=solution, info=info)
        if self.fmt == "equation":
            spaced = render(tree, spaced=True)
            info["response_prefix"] = f"{spaced} ="
            listed = f" Options: {', '.join(options)}." if options else ""
            return Example(prompt=f"What is {spaced}?{listed}", answer=answer, solution=f" {answer}", info=info)
        lines = [render(tree, spaced=True)] + [f"= {render(s, spaced=True)}" for s in steps]
        worked = "\n".join(lines) + "\n" if self.show_steps else ""
        solution = f"{worked}The answer is \\boxed{{{answer}}}."
        listed = f" Options: {', '.join(options)}." if options else ""
        return Example(prompt=f"Compute {render(tree, spaced=True)}.{listed}", answer=answer,
                       solution=solution, info=info)

    def options(self, tree: Node, value: int) -> list[str]:
        """The multiple-choice options (none unless ``choices``): the value and distinct distractors within
        +-9 of it, in an order fixed by the expression (a string seed: the same in every process)."""
        if not self.choices:
            return []
        rng = random.Random(render(tree))
        near = [value + d for d in range(-9, 10) if d]
        values = [value] + rng.sample(near, self.choices - 1)
        rng.shuffle(values)
        return [str(v) for v in values]

    def generate(self, n: int, seed: int) -> list[Example]:
        rng = random.Random(seed)
        return [self.make_example(self.sample_tree(rng)) for _ in range(n)]

    def extract_answer(self, response_text: str, example: Example | None = None) -> str | None:
        fmt = example.info.get("format", self.fmt) if example is not None else self.fmt
        if fmt == "compact":
            text = response_text.rsplit("=", 1)[-1].strip()
            return text or None
        if fmt == "equation":
            match = _LEADING_INT.match(response_text)
            return match.group(1) if match else None
        return extract_last_boxed(response_text)

    def verify(self, response_text: str, example: Example) -> float:
        predicted = parse_int_literal(self.extract_answer(response_text, example))
        return float(predicted is not None and predicted == int(example.answer))


register_task(ArithmeticTask.name, ArithmeticTask)
