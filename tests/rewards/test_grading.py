"""Equivalence: fast path, math-verify in the worker pool, the reward-hacking guard, timeouts, crashes."""

import operator
import os
import time

import pytest

from urlvr_jax.rewards import grading
from urlvr_jax.rewards.grading import equivalent_many, is_equivalent, quick_equivalent
from urlvr_jax.rewards.workers import WorkerPool


@pytest.mark.parametrize(
    "pred, gold, expected",
    [
        ("47", "47", True),
        ("47.0", "47", True),
        ("0.5", "1/2", True),
        ("\\frac{1}{2}", "0.5", True),
        ("-\\frac{3}{6}", "-0.5", True),
        ("0.3333", "1/3", False),  # exact, no rounding on the fast path
        ("1,000", "1000", True),
        ("48", "47", False),
        (None, "47", False),
        ("", "47", False),
        ("47", None, False),
        ("1/0", "1/0", True),  # identical strings
        ("1/0", "2/0", False),
    ],
)
def test_fast_path(pred, gold, expected):
    from urlvr_jax.rewards.answers import normalize_answer

    assert quick_equivalent(normalize_answer(pred), normalize_answer(gold)) is expected
    assert is_equivalent(pred, gold) is expected


def test_fast_path_leaves_expressions_undecided():
    assert quick_equivalent("x+1", "1+x") is None
    assert quick_equivalent("2^{100000}", "3") is False  # explosive: string comparison only
    assert quick_equivalent("10^{10^{10}}", "1") is False
    assert quick_equivalent("x" * 1000, "y") is False


def test_math_verify_equivalences():
    pairs = [("x+1", "1+x"), ("\\sqrt{2}", "2^{1/2}"), ("\\frac{\\sqrt{3}}{2}", "\\sqrt{3}/2"),
             ("x+2", "x+3"), ("}{", "1"), ("\\text{A}", "\\text{B}")]
    assert equivalent_many(pairs) == [True, True, True, False, False, False]


def test_reward_hacking_guard():
    # math-verify alone would evaluate 14+33 and call it 47
    assert is_equivalent("14+33", "47") is True
    assert is_equivalent("14+33", "47", answer_type="number") is False
    assert is_equivalent("47", "47", answer_type="number") is True
    assert is_equivalent("\\frac{94}{2}", "47", answer_type="number") is True
    assert is_equivalent("47", "14+33", answer_type="number") is True  # only the prediction is checked
    with pytest.raises(ValueError, match="answer_type"):
        is_equivalent("1", "1", answer_type="integer")


def test_equivalent_many_checks_lengths():
    with pytest.raises(ValueError, match="answer_types"):
        equivalent_many([("1", "1")], [None, None])


def test_shared_pool_replaces_a_hung_worker():
    pool = grading.get_pool()
    replaced = pool.replaced
    start = time.monotonic()
    # a real math-verify hang (sympy evaluates 10^(10^10)); the fast path would not send it
    hung = pool.run([(grading._math_verify_equivalent, ("10^{10^{10}}", "1", 1.0))], timeout_s=1.0, default=False)
    assert hung == [False]
    assert time.monotonic() - start < 10
    assert pool.replaced == replaced + 1
    grading.clear_cache()
    assert equivalent_many([("y+1", "1+y")]) == [True]  # the replacement works


def test_worker_pool_timeout_crash_and_error():
    pool = WorkerPool(n_workers=1)
    try:
        calls = [(time.sleep, (30,)), (os._exit, (3,)), (operator.add, (1, 2)), (operator.truediv, (1, 0)),
                 (operator.mul, (3, 4))]
        start = time.monotonic()
        assert pool.run(calls, timeout_s=1.0, default="failed") == ["failed", "failed", 3, "failed", 12]
        assert time.monotonic() - start < 20
        assert pool.replaced == 2
    finally:
        pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.run([(operator.add, (1, 2))], timeout_s=1.0)
    with pytest.raises(ValueError, match="n_workers"):
        WorkerPool(n_workers=0)
