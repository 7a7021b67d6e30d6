"""The reward registry: names, kinds, weighted sums and clear errors."""

import numpy as np
import pytest

from urlvr_jax.rewards import compute_rewards, get_reward, list_rewards, register_reward
from urlvr_jax.rewards.batch import RewardBatch
from urlvr_jax.rewards.registry import reward_kind

NAMES = {
    "certainty": ["probability", "probability_disparity", "self_certainty", "token_entropy", "trajectory_entropy"],
    "ensemble": ["co_rewarding_teacher", "majority_vote", "self_consistency", "semantic_cluster", "srt_soft",
                 "srt_threshold"],
    "external": ["countdown", "ground_truth", "self_verify"],
    "control": ["format", "random"],
}


def test_every_name_is_registered_with_its_kind():
    for kind, names in NAMES.items():
        assert set(names) <= set(list_rewards(kind))
        assert all(reward_kind(name) == kind for name in names)


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as error:
        get_reward("majority_voting")
    message = str(error.value)
    assert "'majority_voting'" in message
    assert all(name in message for names in NAMES.values() for name in names)


def test_weighted_sum_and_errors():
    batch = RewardBatch.from_texts(["\\boxed{1}", "\\boxed{1}", "\\boxed{2}", "none"], [0, 0, 0, 0])
    total = compute_rewards({"majority_vote": 1.0, "format": 0.25}, batch)
    np.testing.assert_allclose(total, [1.25, 1.25, 0.25, 0.0])
    assert total.dtype == np.float32
    with pytest.raises(ValueError, match="not in the spec: \\['random'\\]"):
        compute_rewards("format", batch, {"random": {"seed": 1}})
    with pytest.raises(ValueError, match="empty"):
        compute_rewards({}, batch)


def test_register_rejects_bad_kind_duplicates_and_bad_shapes():
    with pytest.raises(ValueError, match="unknown kind 'intrinsic'"):
        register_reward("x", kind="intrinsic")
    with pytest.raises(ValueError, match="already registered"):
        register_reward("format", kind="control")(lambda batch: None)

    @register_reward("_test_bad_shape", kind="control")
    def bad(batch):
        return np.zeros(3)

    with pytest.raises(ValueError, match="'_test_bad_shape' returned shape \\(3,\\)"):
        compute_rewards("_test_bad_shape", RewardBatch.from_texts(["a"], [0]))


def test_batch_validation_names_the_field():
    with pytest.raises(ValueError, match="answers has 1 entries but there are 2 texts"):
        RewardBatch(texts=["a", "b"], answers=["1"], group_ids=[0, 0])
    with pytest.raises(ValueError, match="logprobs must have shape"):
        RewardBatch(texts=["a"], answers=["1"], group_ids=[0], mask=np.ones((1, 3)), logprobs=np.ones(3))
    with pytest.raises(ValueError, match="mask is required"):
        RewardBatch(texts=["a"], answers=["1"], group_ids=[0], logprobs=np.ones((1, 3)))
    with pytest.raises(ValueError, match="disagree"):
        RewardBatch(texts=["a"], answers=["1"], group_ids=[0], mask=np.ones((1, 3)), entropy=np.ones((1, 4)))
    with pytest.raises(ValueError, match="task_info must be a list of dicts"):
        RewardBatch(texts=["a"], answers=["1"], group_ids=[0], task_info=["x"])
