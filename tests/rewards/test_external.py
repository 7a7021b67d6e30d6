"""External rewards: ground-truth oracle, Countdown verifier, self-verification; the controls."""

import numpy as np
import pytest

from urlvr_jax.rewards import compute_rewards
from urlvr_jax.rewards.batch import RewardBatch
from urlvr_jax.rewards.countdown import check_countdown, extract_countdown_answer
from urlvr_jax.rewards.self_verify import parse_verdict, verification_prompts

NUMBERS, TARGET = [3, 5, 7, 2], 24


@pytest.mark.parametrize(
    "expression, ok",
    [
        ("(7 - 5 + 2) * 3 * 1", False),  # 1 is not given
        ("(7 - 5 + 2) * 3", False),  # 12, wrong value
        ("(7 + 5) * 2 * 3 / 3", False),  # 3 used twice
        ("(7 + 5) * 2", False),  # 3 unused
        ("(7 + 5) * (2 + 3 - 3)", False),
        ("7 * 3 + 5 - 2", True),
        ("(5 + 7) * (3 - 2) * 2", False),  # 2 used twice
        ("3 × 7 + 5 − 2", True),  # Unicode operators
        ("\\left(7 \\times 3\\right) + 5 - 2", True),
        ("7 * 3 + 5 - 2 = 24", False),  # an equation, not an expression
        ("24", False),
        ("7 ** 3 + 5 - 2", False),  # power
        ("7 ^ 3 + 5 - 2", False),
        ("7 // 3 + 5 - 2", False),
        ("7.0 * 3 + 5 - 2", False),  # float literal
        ("0x7 * 3 + 5 - 2", False),
        ("abs(7) * 3 + 5 - 2", False),
        ("-2 + 7 * 3 + 5", True),  # unary minus on a given number (as TinyZero allows)
        ("", False),
        ("(" * 500 + "7" + ")" * 500, False),
        ("3 / (5 - 5) + 7", False),  # division by zero (and 5 twice)
    ],
)
def test_check_countdown(expression, ok):
    assert check_countdown(expression, NUMBERS, TARGET) is ok


def test_check_countdown_fractions_and_division_by_zero():
    assert check_countdown("6 / (1 - 3 / 4)", [6, 1, 3, 4], 24)  # exact: 6 / (1/4)
    assert not check_countdown("4 / (2 - 2) + 1", [4, 2, 2, 1], 5)
    assert check_countdown("8 / 3 * 3", [8, 3, 3], 8)  # no integer truncation on the way


def test_extract_countdown_answer():
    assert extract_countdown_answer("<think>..</think><answer>1+2</answer> <answer> (3*4) </answer>") == "(3*4)"
    assert extract_countdown_answer("so \\boxed{7*3+5-2}") == "7*3+5-2"
    assert extract_countdown_answer("<answer>\\boxed{1+1}</answer>") == "1+1"
    assert extract_countdown_answer("no answer") is None


def test_countdown_reward():
    texts = ["<answer>7*3+5-2</answer>", "<answer>7*3+5-2 = 24</answer>", "\\boxed{(7+5)*2}", "nothing"]
    info = [{"numbers": NUMBERS, "target": TARGET}] * 4
    batch = RewardBatch.from_texts(texts, [0] * 4, task_info=info)
    assert compute_rewards("countdown", batch).tolist() == [1, 0, 0, 0]
    with pytest.raises(ValueError, match="task_info\\[0\\] has no \\['target'\\]"):
        compute_rewards("countdown", RewardBatch.from_texts(texts[:1], [0], task_info=[{"numbers": NUMBERS}]))


@pytest.mark.parametrize(
    "text, verdict",
    [
        ("all checks pass \\boxed{True}", 1.0),
        ("\\boxed{False}", 0.0),
        ("\\boxed{\\text{True}}", 1.0),
        ("first \\boxed{True} but on reflection \\boxed{false}", 0.0),
        ("The solution is correct.", 1.0),
        ("This is incorrect, 5 is used twice.", 0.0),
        ("it is true ... no, false", 0.0),
        ("I cannot tell", 0.0),
        ("\\boxed{maybe} it is valid", 1.0),
        ("", 0.0),
    ],
)
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) == verdict


def test_self_verify_with_generate_fn_and_stored_verdicts():
    texts = ["<answer>7*3+5-2</answer>", "<answer>(7+5)*2</answer>"]
    info = [{"numbers": NUMBERS, "target": TARGET}] * 2
    seen = []

    def generate_fn(prompts):  # a fake sampler that checks with the real verifier
        seen.extend(prompts)
        return ["\\boxed{True}" if "7*3+5-2" in p else "\\boxed{False}" for p in prompts]

    batch = RewardBatch.from_texts(texts, [0, 0], task_info=info)
    rewards = compute_rewards("self_verify", batch, {"self_verify": {"generate_fn": generate_fn}})
    assert rewards.tolist() == [1, 0]
    assert len(seen) == 2 and "Numbers: 3, 5, 7, 2" in seen[0] and "Target: 24" in seen[0]
    assert seen == verification_prompts(texts, info)
    stored = [dict(i, verification=v) for i, v in zip(info, ["looks wrong", "\\boxed{True}"])]
    assert compute_rewards("self_verify", RewardBatch.from_texts(texts, [0, 0], task_info=stored)).tolist() == [0, 1]
    with pytest.raises(ValueError, match="generate_fn"):
        compute_rewards("self_verify", batch)
    with pytest.raises(ValueError, match="returned 1 texts for 2 prompts"):
        compute_rewards("self_verify", batch, {"self_verify": {"generate_fn": lambda p: ["x"]}})


def test_ground_truth_oracle_and_guard():
    texts = ["\\boxed{47}", "\\boxed{14+33}", "so 47.0", "\\boxed{48}", "nothing"]
    golds = ["47"] * 5
    plain = RewardBatch.from_texts(texts, [0] * 5, ground_truths=golds)
    assert compute_rewards("ground_truth", plain).tolist() == [1, 1, 1, 0, 0]
    number = RewardBatch.from_texts(texts, [0] * 5, ground_truths=golds, task_info=[{"answer_type": "number"}] * 5)
    assert compute_rewards("ground_truth", number).tolist() == [1, 0, 1, 0, 0]
    with pytest.raises(ValueError, match="ground_truths"):
        compute_rewards("ground_truth", RewardBatch.from_texts(texts, [0] * 5))
    with pytest.raises(ValueError, match="rows \\[1\\]"):
        compute_rewards("ground_truth", RewardBatch.from_texts(texts[:2], [0, 0], ground_truths=["1", None]))


def test_controls():
    batch = RewardBatch.from_texts(["\\boxed{1}", "the answer is 3", "\\boxed{}", "none"], [0, 0, 1, 1])
    assert compute_rewards("format", batch).tolist() == [1, 0, 0, 0]
    assert compute_rewards("format", batch, {"format": {"require": "answer"}}).tolist() == [1, 1, 0, 0]
    with pytest.raises(ValueError, match="require"):
        compute_rewards("format", batch, {"format": {"require": "xml"}})
    a = compute_rewards("random", batch, {"random": {"seed": 1}})
    assert np.all((a >= 0) & (a < 1)) and len(set(a.tolist())) == 4
    np.testing.assert_array_equal(a, compute_rewards("random", batch, {"random": {"seed": 1}}))
    assert not np.array_equal(a, compute_rewards("random", batch, {"random": {"seed": 2}}))
