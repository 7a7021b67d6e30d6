"""Every answer type a dataset builder or task emits is graded, by every reward and metric that grades."""

from pathlib import Path

import numpy as np
import pytest

from urlvr_jax.rewards import compute_rewards
from urlvr_jax.rewards.answers import choice_letter
from urlvr_jax.rewards.batch import RewardBatch
from urlvr_jax.rewards.clustering import cluster_groups
from urlvr_jax.rewards.ensemble import majority_labels
from urlvr_jax.rewards.grading import ANSWER_TYPES, equivalent_many, is_equivalent
from urlvr_jax.rewards.metrics import label_accuracy, urlvr_metrics
from urlvr_jax.tasks.base import get_task, task_names
from urlvr_jax.tasks.datasets import SPECS, load_dataset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "datasets"


def emitted_answer_types(tfds_dir) -> set:
    """The answer types of every dataset builder (read from its fixture files through the loader) and of
    one generated example of every registered task."""
    types = set()
    for name in SPECS:
        types |= {e.info.get("answer_type") for e in load_dataset(name, data_dir=FIXTURES, tfds_dir=tfds_dir)}
    types |= {get_task(name).generate(1, seed=0)[0].info.get("answer_type") for name in task_names()}
    return types


def test_every_emitted_answer_type_is_graded(tmp_path):
    emitted = emitted_answer_types(tmp_path)
    assert {"math", "expression", "number"} <= emitted  # the list above is not empty by accident
    assert emitted <= set(ANSWER_TYPES)
    for answer_type in ANSWER_TYPES:  # none raises; an answer is equivalent to itself
        assert is_equivalent("1", "1", answer_type=answer_type) is (answer_type != "choice")
    with pytest.raises(ValueError, match="unknown answer_type 'integer'.*'math', 'number', 'expression'"):
        equivalent_many([("1", "1")], ["integer"])


@pytest.mark.parametrize("pred, gold, answer_type, expected", [
    ("\\frac{1}{2}", "0.5", "math", True),
    ("x+1", "1+x", "math", True),
    ("14+33", "47", "math", True),
    ("14+33", "47", "number", False),  # the reward-hacking guard
    ("47.0", "47", "number", True),
    ("(1 + 2) \\times 3", "9", "expression", True),
    ("(1+2)*3", "3*3", "expression", True),
    ("10/4", "5/2", "expression", True),
    ("2**3", "8", "expression", False),  # powers are not Countdown arithmetic
    ("x+1", "x+1", "expression", False),  # not an arithmetic expression at all
    ("1/0", "1/0", "expression", False),
    ("(1+2)*3", "10", "expression", False),
    ("B", "B", "choice", True),
    ("(B)", "B", "choice", True),
    ("B)", "\\text{B}", "choice", True),
    ("\\textbf{(b)}", "B", "choice", True),
    ("(C) 42", "C", "choice", True),
    ("B. 5", "B", "choice", True),
    ("option D", "(D)", "choice", True),
    ("A", "B", "choice", False),
    ("AB", "A", "choice", False),
    ("42", "A", "choice", False),
])
def test_each_type_grades(pred, gold, answer_type, expected):
    assert is_equivalent(pred, gold, answer_type=answer_type) is expected


def test_choice_letter():
    assert [choice_letter(a) for a in ("$(E)$", "answer: (d)", "\\mathrm{(A)}", "K", "A 5", "a cat", None)] == [
        "E", "D", "A", None, None, None, None]


def _batch(answers, info, golds):
    groups = np.repeat(np.arange(len(answers)), [len(a) for a in answers])
    flat = [a for group in answers for a in group]
    return RewardBatch(texts=[str(a) for a in flat], answers=flat, group_ids=groups,
                       ground_truths=[golds[g] for g in groups], task_info=[info[g] for g in groups])


def test_rewards_and_metrics_accept_every_type():
    countdown = {"answer_type": "expression", "numbers": [1, 2, 3], "target": 9}
    info = [{"answer_type": "math"}, {"answer_type": "number"}, countdown, {"answer_type": "choice"}, {}]
    answers = [["\\frac12", "0.5", "1/3"], ["7", "3+4", "8"], ["(1+2)*3", "(1 + 2) \\times 3", "3*3"],
               ["(B)", "B", "\\text{C}"], ["2", "2", None]]
    golds = ["1/2", "7", "9", "B", "2"]
    batch = _batch(answers, info, golds)
    # Countdown ground truth is the verifier: 3*3 has the right value but not the numbers 1, 2, 3
    assert compute_rewards("ground_truth", batch).tolist() == [1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0]
    assert compute_rewards("majority_vote", batch).tolist() == [1, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0]
    clusters = cluster_groups(batch.answers, batch.group_ids, answer_types=[i.get("answer_type") for i in
                                                                           batch.task_info])
    assert clusters.tolist() == [0, 0, 1, 0, 1, 2, 0, 0, 0, 0, 0, 1, 0, 0, 1]
    labels, ratios = majority_labels(batch)
    assert label_accuracy(list(labels.values()), golds, [i.get("answer_type") for i in info]).tolist() == [1] * 5
    metrics = urlvr_metrics(batch, compute_rewards("majority_vote", batch), compute_rewards("ground_truth", batch))
    assert metrics["label_accuracy"] == 1.0
