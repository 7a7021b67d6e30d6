"""Property tests: thousands of random and adversarial strings through extraction and grading.

Nothing may raise, every extraction call must be fast, and every grading batch must come back
within its per-item timeout (items that hang in sympy are killed, not waited for).
"""

import gc
import math
import time
from fractions import Fraction

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urlvr_jax.rewards import compute_rewards
from urlvr_jax.rewards.answers import extract_answer, extract_boxed, is_number_literal, normalize_answer, parse_number
from urlvr_jax.rewards.batch import RewardBatch
from urlvr_jax.rewards.countdown import check_countdown, extract_countdown_answer
from urlvr_jax.rewards.grading import equivalent_many, get_pool
from urlvr_jax.rewards.self_verify import parse_verdict

FRAGMENTS = [
    "\\boxed{", "\\boxed ", "\\fbox{", "{", "}", "9^9^9^9", "10^{10^{10}}", "9^{9^{9^{9}}}", "(99!)!", "99!!",
    "9" * 400, "-", "+", "*", "/", "^", "!", "(", ")", "[", "]", "=", ",", ".", " ", "\n", "$", "$$", "\\$",
    "the answer is ", "final answer is: ", "<answer>", "</answer>", "\\frac", "\\dfrac{", "\\sqrt{", "\\sqrt[3]{",
    "\\left(", "\\right)", "\\text{", "\\mathrm{", "\\pi", "\\infty", "\\int_0^1", "\\sum_{i=1}^{n}", "\\in",
    "\\cup", "\\le", "\\circ", "^\\circ", "\\%", "%", "\\begin{pmatrix}", "\\end{pmatrix}", "&", "\\\\", "x", "y",
    "e", "i", "\\log", "\\sin", "1/0", "0.000", "2", "3", "47", "14+33", "−", "×", "∞", "١٢٣", "一", "\x00",
    "\ud7ff", "😀", "\\boxed{True}", "\\boxed{False}", "1e308", "nan", "\\binom{100000}{50000}", "\\\\boxed{",
]
GOLDS = ["2", "47", "x+1", "\\frac{1}{2}", "(1,2)", "\\sqrt{2}", "\\text{A}", "0.5", ""]

fragment_strings = st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join)
deep_braces = st.integers(0, 4000).map(lambda n: "\\boxed{" + "{" * n + "1" + "}" * n + "}")
unclosed_boxes = st.integers(0, 4000).map(lambda n: "x \\boxed{1} " + "\\boxed{" * n + "2")
huge_numbers = st.integers(1, 30000).map(lambda n: "the answer is " + "9" * n)
adversarial = st.one_of(st.text(max_size=300), fragment_strings, deep_braces, unclosed_boxes, huge_numbers)

# CPU seconds of this thread for all the calls on one text, with the cyclic garbage collector paused: the worst
# inputs here take ~40 ms, and catastrophic regex backtracking would take far longer. A collection of the whole
# test process's heap landing inside the calls took over a second in CI; wall time would also count VM stalls.
EXTRACT_LIMIT_S = 1.0
GRADE_TIMEOUT_S = 2.0
STARTUP_SLACK_S = 30.0  # a replaced worker re-imports math-verify


@settings(max_examples=2000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(adversarial)
def test_extraction_never_raises_is_fast_and_idempotent(text):
    gc.disable()
    try:
        start = time.thread_time()
        check_extraction(text)
        assert time.thread_time() - start < EXTRACT_LIMIT_S
    finally:
        gc.enable()


def check_extraction(text: str):
    answer = extract_answer(text)
    assert answer is None or (isinstance(answer, str) and answer)
    boxed = extract_boxed(text)
    assert boxed is None or isinstance(boxed, str)
    normalized = normalize_answer(text)
    assert normalize_answer(normalized) == normalized  # idempotent
    if is_number_literal(normalized):
        assert parse_number(normalized) is None or isinstance(parse_number(normalized), Fraction)
    expression = extract_countdown_answer(text)
    assert check_countdown(expression or text, [1, 2, 3, 4], 10) in (True, False)
    assert parse_verdict(text) in (0.0, 1.0)


def _grading_bound(n_items: int) -> float:
    return math.ceil(n_items / len(get_pool()._workers)) * (GRADE_TIMEOUT_S + 0.5) + STARTUP_SLACK_S


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(adversarial, min_size=1, max_size=6), st.lists(st.sampled_from(GOLDS), min_size=1, max_size=3),
       st.sampled_from([None, "number"]))
def test_grading_never_raises_and_respects_the_timeout(texts, golds, answer_type):
    preds = [extract_answer(t) for t in texts] + [t[:500] for t in texts]
    pairs = [(p, g) for p in preds for g in golds + texts[:1]]
    start = time.monotonic()
    verdicts = equivalent_many(pairs, [answer_type] * len(pairs), timeout_s=GRADE_TIMEOUT_S)
    assert time.monotonic() - start < _grading_bound(len(pairs))
    assert len(verdicts) == len(pairs) and all(isinstance(v, bool) for v in verdicts)
    for (pred, gold), verdict in zip(pairs, verdicts):
        if normalize_answer(pred) is None or normalize_answer(gold) is None:
            assert verdict is False


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(adversarial, min_size=2, max_size=6))
def test_ensemble_rewards_survive_adversarial_texts(texts):
    batch = RewardBatch.from_texts(texts, [0] * (len(texts) // 2) + [1] * (len(texts) - len(texts) // 2))
    start = time.monotonic()
    spec = {"majority_vote": 1.0, "semantic_cluster": 1.0, "srt_soft": 1.0, "format": 1.0}
    rewards = compute_rewards(spec, batch, {s: {"timeout_s": GRADE_TIMEOUT_S} for s in spec if s != "format"})
    assert time.monotonic() - start < 4 * _grading_bound(len(texts) ** 2)
    assert rewards.shape == (len(texts),) and np.all(np.isfinite(rewards)) and np.all(rewards >= 0)
