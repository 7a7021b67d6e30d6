"""Multiple-choice arithmetic (``choices``): the options, the answer, bad input, and why pass@k is gamed on it."""

from __future__ import annotations

import random

import numpy as np
import pytest

from urlvr_jax.rewards.metrics import pass_at_k
from urlvr_jax.tasks.arithmetic import ArithmeticTask


def test_options_hold_the_answer_among_distinct_near_distractors():
    task = ArithmeticTask(digits=1, min_ops=1, max_ops=2, show_steps=False, choices=4)
    examples = task.generate(50, seed=0)
    for ex in examples:
        options = ex.info["options"]
        assert len(options) == len(set(options)) == 4 and ex.answer in options
        assert all(abs(int(o) - int(ex.answer)) <= 9 for o in options)
        assert ex.prompt == f"({'|'.join(options)}){ex.info['expression']}="
        assert task.verify(ex.answer, ex) == 1.0 and task.verify(next(o for o in options if o != ex.answer), ex) == 0
    again = ArithmeticTask(digits=1, min_ops=1, max_ops=2, show_steps=False, choices=4).generate(50, seed=0)
    assert [e.prompt for e in again] == [e.prompt for e in examples]  # fixed per expression
    boxed = ArithmeticTask(digits=1, min_ops=1, max_ops=1, fmt="boxed", choices=3).generate(1, seed=0)[0]
    assert boxed.prompt.endswith(f"Options: {', '.join(boxed.info['options'])}.")
    assert "options" not in ArithmeticTask().generate(1, seed=0)[0].info  # free answer unchanged


@pytest.mark.parametrize("choices", [1, 11, -2])
def test_bad_choices_name_the_cause(choices):
    with pytest.raises(ValueError, match="choices must be 0 .free answer. or 2..10 options"):
        ArithmeticTask(choices=choices)


def test_guessing_an_option_games_pass_at_k():
    """A policy that copies a random listed option has pass@1 = 1/4 yet pass@64 ~ 1: no skill, all 'potential'."""
    task = ArithmeticTask(digits=1, min_ops=1, max_ops=1, show_steps=False, choices=4)
    rng = random.Random(0)
    examples = task.generate(200, seed=1)
    hits = np.array([sum(task.verify(rng.choice(ex.info["options"]), ex) for _ in range(64)) for ex in examples])
    assert pass_at_k(64, hits, 1).mean() == pytest.approx(0.25, abs=0.03)
    assert pass_at_k(64, hits, 64).mean() == 1.0
