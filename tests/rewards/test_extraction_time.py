"""Extraction is linear: 100k-character degenerate outputs go through every task's extraction fast.

Before, Countdown's ``<answer>(.*?)</answer>`` took 11 s on 8k repeated open tags (quadratic). The limit is
on this thread's CPU time with the garbage collector paused (see test_properties for why, not wall time).
"""

import gc
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urlvr_jax.rewards.answers import extract_answer, extract_boxed, normalize_answer
from urlvr_jax.rewards.countdown import extract_countdown_answer
from urlvr_jax.rewards.grading import ANSWER_TYPES, canonical_answer, quick_equivalent
from urlvr_jax.rewards.self_verify import parse_verdict
from urlvr_jax.tasks.base import extract_last_tag, get_task, task_names

SIZE = 100_000
LIMIT_S = 0.5  # per call; the slowest call here took 0.17-0.2 s of CPU, a quadratic one takes minutes


def repeat(piece: str, tail: str = "") -> str:
    return piece * (SIZE // len(piece)) + tail


DEGENERATE = {
    "open answer tags": repeat("<answer>"),
    "open answer tags with text": repeat("<answer>1+2 "),
    "open tags, one pair at the end": repeat("<answer>", "<answer>1+2</answer>"),
    "tag pairs": repeat("<answer>1</answer>"),
    "repeated open boxes": repeat("\\boxed{"),
    "repeated open boxes after a box": "\\boxed{1}" + repeat("\\boxed{"),
    "deeply nested open box": "\\boxed{" + repeat("{"),
    "deeply nested closed box": "\\boxed{" + "{" * (SIZE // 2) + "1" + "}" * (SIZE // 2) + "}",
    "repeated closed boxes": repeat("\\boxed{1}"),
    "nested boxes": "\\boxed{" * (SIZE // 8) + "1" + "}" * (SIZE // 8),
    "repeated answer phrases": repeat("the answer is "),
    "digits": repeat("9"),
    "thousands": repeat("1,"),
    "unicode and digits": "½" + repeat("1"),
    "roots": repeat("√("),
    "control words": repeat("\\cot "),
    "row breaks": repeat("\\\\ "),
    "text groups": repeat("\\text{"),
    "spaces": "1" + repeat(" ") + "x",
    "assignments": repeat("x = "),
}


EXTRACTIONS = {
    "extract_answer": extract_answer, "extract_boxed": extract_boxed, "normalize_answer": normalize_answer,
    "extract_countdown_answer": extract_countdown_answer, "parse_verdict": parse_verdict,
    **{f"task {name}": get_task(name).extract_answer for name in task_names()},
    **{f"grading fast path {t}": (lambda text, t=t: quick_equivalent(canonical_answer(text, t), "1", t))
       for t in ANSWER_TYPES},
}


def cpu_seconds(function, text: str) -> float:
    gc.disable()
    try:
        start = time.thread_time()
        function(text)
        return time.thread_time() - start
    finally:
        gc.enable()


@pytest.mark.parametrize("name", list(DEGENERATE))
def test_degenerate_output_is_extracted_fast(name):
    text = DEGENERATE[name]
    assert len(text) >= SIZE - 20
    times = {function: cpu_seconds(EXTRACTIONS[function], text) for function in EXTRACTIONS}
    slow = {function: round(seconds, 2) for function, seconds in times.items() if seconds >= LIMIT_S}
    assert not slow, f"{name}: CPU seconds {slow}"


@settings(max_examples=500, deadline=None, database=None)
@given(st.lists(st.sampled_from(["<answer>", "</answer>", "<answer", "answer>", "1+2", " ", "\n", "x"]), max_size=12))
def test_tags_pair_like_the_regex(pieces):
    text = "".join(pieces)
    matches = re.findall(r"<answer>(.*?)</answer>", text, flags=re.DOTALL)
    assert extract_last_tag(text, "answer") == (matches[-1].strip() if matches else None)


def test_countdown_extraction():
    task = get_task("countdown")
    assert extract_countdown_answer("<answer>1</answer> <answer>2+3</answer>") == "2+3"
    assert extract_countdown_answer("<answer><answer>1+2</answer><answer>") == "<answer>1+2"  # as TinyZero's regex
    assert extract_countdown_answer("<answer>\\boxed{4*5}</answer>") == "4*5"
    assert extract_countdown_answer(repeat("<answer>", "\\boxed{7}")) == "7"  # no pair: the box
    assert task.extract_answer(repeat("</answer>", "<answer> 1+2 </answer>")) == "1+2"
    assert task.extract_answer("<answer></answer>") is None
