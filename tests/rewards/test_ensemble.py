"""Ensemble rewards on hand-made groups: equivalent spellings, ties, all-different, empty, unparseable."""

import jax.numpy as jnp
import numpy as np
import pytest

from urlvr_jax.rewards import compute_rewards
from urlvr_jax.rewards.batch import RewardBatch, select_first_m
from urlvr_jax.rewards.clustering import cluster_answers
from urlvr_jax.rewards.ensemble import ema_update, majority_labels, teacher_answers_from_texts

GROUPS = [
    ["1/2", "0.5", "3", "\\frac{1}{2}", None],  # 0: equivalent spellings, one no-answer
    ["5", "7", "7", "5"],  # 1: a tie, broken by first appearance
    ["1", "2", "3"],  # 2: all different
    [None, "", None],  # 3: nobody answered
    ["}{", "}{", "\\frac{"],  # 4: unparseable (identical strings still agree)
]
EXPECTED = {
    "majority_vote": [[1, 1, 0, 1, 0], [1, 0, 0, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]],
    "self_consistency": [[.6, .6, .2, .6, 0], [.5] * 4, [1 / 3] * 3, [0] * 3, [2 / 3, 2 / 3, 1 / 3]],
    "semantic_cluster": [[.6, .6, .2, .6, 0], [.5] * 4, [0] * 3, [0] * 3, [2 / 3, 2 / 3, 1 / 3]],
    "srt_soft": [[.6, .6, .2, .6, 0], [.5] * 4, [1 / 3] * 3, [0] * 3, [2 / 3, 2 / 3, 1 / 3]],
    # threshold 0.6: only groups 0 (3/5) and 4 (2/3) keep their label
    "srt_threshold": [[1, 1, 0, 1, 0], [0] * 4, [0] * 3, [0] * 3, [1, 1, 0]],
}


def _batch(groups, **fields):
    answers = [a for g in groups for a in g]
    group_ids = [i for i, g in enumerate(groups) for _ in g]
    return RewardBatch(texts=[str(a) for a in answers], answers=answers, group_ids=group_ids, **fields)


@pytest.fixture(scope="module")
def batch():
    return _batch(GROUPS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ensemble_rewards_by_hand(batch, name):
    expected = np.concatenate([np.asarray(g, dtype=np.float32) for g in EXPECTED[name]])
    np.testing.assert_allclose(compute_rewards(name, batch), expected, atol=1e-6)


def test_majority_labels_and_ratios(batch):
    labels, ratios = majority_labels(batch)
    assert labels == {0: "1/2", 1: "5", 2: "1", 3: None, 4: "}{"}
    assert ratios == pytest.approx({0: 0.6, 1: 0.5, 2: 1 / 3, 3: 0.0, 4: 2 / 3})


def test_srt_threshold_option(batch):
    rewards = compute_rewards("srt_threshold", batch, {"srt_threshold": {"threshold": 0.5}})
    assert rewards[5:9].tolist() == [1, 0, 0, 1]  # the tie group now passes
    with pytest.raises(ValueError, match="threshold"):
        compute_rewards("srt_threshold", batch, {"srt_threshold": {"threshold": 1.5}})


def test_cluster_answers_greedy_and_missing():
    assert cluster_answers(["2", None, "4/2", "", "3", "2.0", None]).tolist() == [0, 1, 0, 2, 3, 0, 4]
    assert cluster_answers([]).tolist() == []


def test_vote_on_n_train_on_first_m():
    batch = _batch([["a", "b", "b", "b"], ["7", "7", "8", "8"]])
    assert compute_rewards("majority_vote", batch).tolist() == [0, 1, 1, 1, 1, 1, 0, 0]
    # voting on the first two only: group 0 ties a/b and "a" (first) wins
    voted = compute_rewards("majority_vote", batch, {"majority_vote": {"n_votes": 2}})
    assert voted.tolist() == [1, 0, 0, 0, 1, 1, 0, 0]
    assert select_first_m(np.array([0, 1, 0, 1, 0, 1]), 2).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="group 1 has 1 rollouts"):
        select_first_m(np.array([0, 0, 1]), 2)


def test_number_guard_in_votes():
    info = [{"answer_type": "number"}] * 4
    batch = _batch([["14+33", "47", "14+33", "14+33"]], task_info=info)
    assert compute_rewards("majority_vote", batch).tolist() == [0, 1, 0, 0]
    unguarded = _batch([["14+33", "47", "14+33", "14+33"]])  # math-verify: 14+33 == 47
    assert compute_rewards("majority_vote", unguarded).tolist() == [1, 1, 1, 1]


def test_co_rewarding_teacher(batch):
    teacher = {0: ["3", "3", "1/2"], 1: [None, None], 2: ["2"], 3: ["1"], 4: []}
    rewards = compute_rewards("co_rewarding_teacher", _batch(GROUPS, teacher_answers=teacher))
    expected = [0, 0, 1, 0, 0] + [0] * 4 + [0, 1, 0] + [0] * 3 + [0] * 3
    assert rewards.tolist() == expected
    with pytest.raises(ValueError, match="groups \\[4\\]"):
        compute_rewards("co_rewarding_teacher", _batch(GROUPS, teacher_answers={g: ["1"] for g in range(4)}))
    with pytest.raises(ValueError, match="teacher_answers"):
        compute_rewards("co_rewarding_teacher", _batch(GROUPS))


def test_teacher_helpers():
    assert teacher_answers_from_texts(["\\boxed{3}", "no", "x 4"], [1, 1, 0]) == {1: ["3", None], 0: ["4"]}
    teacher = {"w": jnp.zeros(3), "b": jnp.ones(())}
    policy = {"w": jnp.full(3, 10.0), "b": jnp.zeros(())}
    new = ema_update(teacher, policy, alpha=0.1)
    np.testing.assert_allclose(new["w"], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(new["b"], 0.9)
