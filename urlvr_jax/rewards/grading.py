"""Answer equivalence: a local fast path, then math-verify in worker processes with a timeout.

``answer_type`` (a task's ``info["answer_type"]``; one of :data:`ANSWER_TYPES`) selects the rules:

* ``None`` / ``"math"``: free-form math answers (LaTeX, numbers, expressions, sets, ...), steps 1-6 below;
* ``"number"``: as ``"math"``, but the prediction must be a number literal (step 2);
* ``"expression"`` (Countdown): both sides are arithmetic expressions in the Countdown grammar of
  :func:`~urlvr_jax.rewards.countdown.countdown_value` and are equivalent iff both are valid and have the
  same exact value (a bare target ``24`` is such an expression). Which numbers were used is the Countdown
  verifier's business: the ``ground_truth`` reward checks them where ``task_info`` gives ``numbers``;
* ``"choice"``: multiple-choice letters A-J, equivalent iff both sides read as the same letter
  (:func:`~urlvr_jax.rewards.answers.choice_letter`: ``B``, ``(B)``, ``B)``, ``\\text{B}``, ``(B) 42``).

``"expression"`` and ``"choice"`` are decided locally, never by math-verify. For the math types
``is_equivalent(pred, gold)`` decides in this order (both answers are normalised first):

1. no answer (None / empty) on either side: not equivalent;
2. ``answer_type == "number"`` and ``pred`` is not a number literal: not equivalent (reward-hacking
   guard: ``14+33`` is an unevaluated expression, not the number 47);
3. identical strings: equivalent;
4. both number literals (integer, decimal, ``a/b``, ``\\frac{a}{b}``): exact rational comparison;
5. answers over ``MAX_GRADE_CHARS`` characters, or that could make sympy evaluate a gigantic number
   (nested powers, exponents or factorials of 4+ digits, factorials of groups, binomials): not
   equivalent (the strings already differ);
6. otherwise ``math_verify.verify(parse(\\boxed{gold}), parse(\\boxed{pred}))`` in a worker process.

Step 6 runs in a lazily created, reused :class:`~urlvr_jax.rewards.workers.WorkerPool`; an item that
overruns ``timeout_s`` or crashes its worker counts as not equivalent and the worker is replaced.
Results are cached per (pred, gold, answer_type). The pool is shut down at exit or by
:func:`shutdown_pool`. This module must stay free of JAX imports: the workers import it.
As with any ``multiprocessing`` start method but fork, a script that grades must keep its top-level
work under ``if __name__ == "__main__":`` (workers re-import the main module), and grading from
``python -`` (stdin) cannot start workers.
"""

from __future__ import annotations

import atexit
import os
import re
from typing import Sequence

from urlvr_jax.rewards.answers import choice_letter, is_number_literal, normalize_answer, parse_number
from urlvr_jax.rewards.countdown import countdown_value
from urlvr_jax.rewards.workers import WorkerPool

DEFAULT_TIMEOUT_S = 5.0
MAX_GRADE_CHARS = 300
MAX_CACHE = 200_000
ANSWER_TYPES = (None, "math", "number", "expression", "choice")

_EXPLOSIVE = re.compile(r"\^\s*\{[^{}]*[\^!]|\^\s*\{?\s*-?\d{4,}|\*\*.*\*\*|\d{4,}\s*!|[!)}\]]\s*!|\\binom")
_cache: dict[tuple[str, str, str | None], bool] = {}
_pool: WorkerPool | None = None


def _init_worker() -> None:
    """Imports math-verify and warms sympy up in a new worker, before it reports ready."""
    import logging

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    _math_verify_equivalent("x+1", "\\frac{1}{2}", 5.0)


def _math_verify_equivalent(pred: str, gold: str, timeout_s: float) -> bool:
    """math-verify's verdict; runs inside a worker process (main thread, so its alarms work)."""
    from math_verify import parse, verify

    inner = max(1, int(timeout_s / 3))  # parse, parse, verify each get a third of the budget
    gold_parsed = parse("\\boxed{" + gold + "}", parsing_timeout=inner)
    pred_parsed = parse("\\boxed{" + pred + "}", parsing_timeout=inner)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=inner))


def quick_equivalent(pred: str | None, gold: str | None, answer_type: str | None = None) -> bool | None:
    """Steps 1-5 of the module docstring on canonical answers (:func:`canonical_answer`): a verdict,
    or None if undecided (only math answers can be undecided)."""
    if not pred or not gold:
        return False
    if answer_type == "choice":
        return pred == gold
    if answer_type == "expression":
        pred_value, gold_value = countdown_value(pred), countdown_value(gold)
        return pred_value is not None and gold_value is not None and pred_value[0] == gold_value[0]
    if answer_type == "number" and not is_number_literal(pred):
        return False
    if pred == gold:
        return True
    if is_number_literal(pred) and is_number_literal(gold):
        pred_value, gold_value = parse_number(pred), parse_number(gold)
        if pred_value is None or gold_value is None:
            return False  # too many digits (or a zero denominator) and the strings differ
        return pred_value == gold_value
    for answer in (pred, gold):
        if len(answer) > MAX_GRADE_CHARS or _EXPLOSIVE.search(answer):
            return False
    return None


def _check_answer_type(answer_type: str | None) -> None:
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"grading: unknown answer_type {answer_type!r} (task info 'answer_type'); "
                         f"known: {', '.join(map(repr, ANSWER_TYPES))}")


def canonical_answer(answer: str | None, answer_type: str | None = None) -> str | None:
    """The spelling grading compares: the choice letter for ``"choice"``, else the normalised answer."""
    _check_answer_type(answer_type)
    return choice_letter(answer) if answer_type == "choice" else normalize_answer(answer)


def get_pool() -> WorkerPool:
    """The shared grading pool (created on first use; ``URLVR_GRADING_WORKERS`` sets its size)."""
    global _pool
    if _pool is None:
        n_workers = int(os.environ.get("URLVR_GRADING_WORKERS", min(2, os.cpu_count() or 1)))
        _pool = WorkerPool(n_workers, initializer=_init_worker)
    return _pool


def shutdown_pool() -> None:
    """Stops the grading workers (they are restarted on the next call that needs them)."""
    global _pool
    if _pool is not None:
        _pool.close()
        _pool = None


atexit.register(shutdown_pool)


def clear_cache() -> None:
    """Forgets cached verdicts (for tests and benchmarks)."""
    _cache.clear()


def equivalent_many(
    pairs: Sequence[tuple[str | None, str | None]],
    answer_types: Sequence[str | None] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[bool]:
    """``is_equivalent`` for each (pred, gold) pair; undecided pairs go to the pool in one batch."""
    if answer_types is None:
        answer_types = [None] * len(pairs)
    if len(answer_types) != len(pairs):
        raise ValueError(f"equivalent_many: {len(pairs)} pairs but {len(answer_types)} answer_types")
    keys = [(canonical_answer(pred, answer_type) or "", canonical_answer(gold, answer_type) or "", answer_type)
            for (pred, gold), answer_type in zip(pairs, answer_types)]
    todo = []
    for key in dict.fromkeys(keys):
        if key not in _cache:
            verdict = quick_equivalent(*key)
            if verdict is None:
                todo.append(key)
            else:
                _cache[key] = verdict
    if todo:
        calls = [(_math_verify_equivalent, (pred, gold, timeout_s)) for pred, gold, _ in todo]
        verdicts = get_pool().run(calls, timeout_s=timeout_s, default=False)
        for key, verdict in zip(todo, verdicts):
            _cache[key] = bool(verdict)
    results = [_cache[key] for key in keys]
    if len(_cache) > MAX_CACHE:
        _cache.clear()
    return results


def is_equivalent(
    pred: str | None,
    gold: str | None,
    answer_type: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> bool:
    """True if the predicted answer is mathematically equivalent to the gold answer."""
    return equivalent_many([(pred, gold)], [answer_type], timeout_s)[0]
