"""URLVR metrics against brute force, scipy, and hand-computed values."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from urlvr_jax.rewards.batch import RewardBatch
from urlvr_jax.rewards.metrics import (
    avg_at_k,
    distinct_answers,
    label_accuracy,
    majority_ratio,
    mean_response_length,
    pass_at_k,
    point_biserial,
    pseudo_label_accuracy,
    repetition_rate,
    reward_accuracy,
    urlvr_metrics,
)


def _brute_pass_at_k(n, c, k):
    """Share of all k-subsets of n samples (c correct) that contain a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n, c, k", [(5, 0, 1), (5, 2, 1), (5, 2, 2), (6, 1, 3), (6, 3, 4), (4, 4, 2), (7, 2, 6)])
def test_pass_at_k_matches_brute_force(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(_brute_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_vectorised_stable_and_validated():
    np.testing.assert_allclose(pass_at_k(np.array([8, 8, 8]), np.array([0, 1, 8]), 8), [0.0, 1.0, 1.0])
    big = pass_at_k(1000, 3, 10)
    assert big == pytest.approx(1 - math.comb(997, 10) / math.comb(1000, 10), rel=1e-12)
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError, match="c <= n"):
        pass_at_k(3, 4, 1)


def test_simple_metrics_by_hand():
    group_ids = np.array([0, 0, 0, 1, 1, 1])
    gt = np.array([1, 0, 0, 0, 0, 1], dtype=float)
    proxy = np.array([0.2, 0.9, 0.1, 0.5, 0.5, 0.4])
    np.testing.assert_allclose(avg_at_k(gt, group_ids), [1 / 3, 1 / 3])
    np.testing.assert_allclose(reward_accuracy(np.array([1, 0, 1.0]), np.array([1, 1, 1.0])), [1, 0, 1])
    # group 0: top proxy 0.9 is wrong; group 1: tie 0.5/0.5 -> first (row 3), wrong
    np.testing.assert_allclose(pseudo_label_accuracy(proxy, gt, group_ids), [0, 0])
    np.testing.assert_allclose(pseudo_label_accuracy(-proxy, gt, group_ids), [0, 1])
    assert mean_response_length(np.array([[1, 1, 0], [1, 0, 0]], bool)) == 1.5
    assert mean_response_length(np.array([4, 6])) == 5.0


def test_point_biserial_matches_scipy():
    rng = np.random.default_rng(0)
    gt = (rng.random(40) > 0.5).astype(float)
    proxy = gt * 0.5 + rng.normal(size=40)
    assert point_biserial(proxy, gt) == pytest.approx(stats.pointbiserialr(gt, proxy).statistic, abs=1e-12)
    assert math.isnan(point_biserial(proxy, np.ones(40)))  # constant ground truth


def test_label_accuracy_and_majority_ratio():
    assert label_accuracy(["0.5", None, "3", "14+33"], ["1/2", "1", "4", "47"]).tolist() == [1, 0, 0, 1]
    assert label_accuracy(["14+33"], ["47"], ["number"]).tolist() == [0]
    batch = RewardBatch(texts=[""] * 5, answers=["2", "2", "3", None, None], group_ids=[0, 0, 0, 1, 1])
    np.testing.assert_allclose(majority_ratio(batch), [2 / 3, 0.0])


def test_urlvr_metrics():
    answers = ["1/2", "0.5", "3", "7", "8", None]
    batch = RewardBatch(texts=["ab", "abcd", "", "a", "abc", "ab"], answers=answers, group_ids=[0, 0, 0, 1, 1, 1],
                        ground_truths=["0.5"] * 3 + ["8"] * 3)
    proxy = np.array([1, 1, 0, 1, 0, 0], dtype=float)  # majority-vote rewards (group 1 voted "7")
    gt = np.array([1, 1, 0, 0, 1, 0], dtype=float)
    m = urlvr_metrics(batch, proxy, gt)
    assert m["label_accuracy"] == 0.5
    assert m["majority_ratio"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert m["reward_accuracy"] == pytest.approx(4 / 6)
    assert m["ground_truth_reward"] == 0.5
    assert m["pass@3"] == 1.0 and m["avg@3"] == 0.5
    assert m["pseudo_label_accuracy"] == 0.5
    assert m["distinct_answers"] == 2.0  # {1/2 = 0.5, 3} and {7, 8} (the unanswered row is no answer)
    assert m["response_length"] == pytest.approx(2.0)  # characters, no token mask
    assert m["point_biserial"] == pytest.approx(stats.pearsonr(proxy, gt).statistic)
    assert set(urlvr_metrics(batch, proxy, votes=False)) == {"proxy_reward", "response_length"}
    with pytest.raises(ValueError, match="proxy_rewards"):
        urlvr_metrics(batch, proxy[:3])


def test_repetition_rate_by_hand():
    tokens = np.array([[1, 2, 1, 2, 1, 2, 9, 9],   # 2-grams 12 21 12 21 12 29 (pad ignored): 3 of 6 repeat
                       [5, 6, 7, 8, 0, 0, 0, 0],   # 3 distinct 2-grams
                       [4, 0, 0, 0, 0, 0, 0, 0]])  # shorter than n: no 2-grams
    assert repetition_rate(tokens, [7, 4, 1], n=2) == pytest.approx(3 / 9)
    assert repetition_rate(tokens, [7, 4, 1], n=8) == 0.0
    degenerate = np.full((2, 64), 3)  # one token repeated: every 4-gram after the first repeats
    assert repetition_rate(degenerate, [64, 64]) == pytest.approx(60 / 61)


def test_distinct_answers_counts_equivalent_answers_once():
    batch = RewardBatch(texts=[""] * 7, answers=["1/2", "0.5", "2", None, None, "4", "4"],
                        group_ids=[0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(distinct_answers(batch), [2, 1])
