"""Certainty rewards from the sampler's in-loop statistics equal a plain-numpy full-logits reference."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from urlvr_jax.rewards import compute_rewards
from urlvr_jax.rewards.batch import RewardBatch
from urlvr_jax.sampling.stats import token_stats

B, T, V, TAU = 5, 7, 11, 0.7
LENGTHS = np.array([7, 3, 1, 0, 5])


def _in_loop_batch(logits, tokens, mask, answer_mask=None):
    """Statistics as the sampler computes them: token_stats on [B, V] logits, one decode step at a time."""
    steps = [token_stats(jnp.asarray(logits[:, t]), jnp.asarray(tokens[:, t]), TAU) for t in range(T)]
    stats = {name: np.stack([np.asarray(s[name]) for s in steps], axis=1) * mask for name in steps[0]}
    return RewardBatch(texts=[""] * B, answers=[None] * B, group_ids=np.zeros(B), mask=mask,
                       answer_mask=answer_mask, **stats)


def _numpy_reference(logits, tokens, mask, answer_mask):
    """The five rewards straight from the definitions, float64, full logits."""
    z = logits.astype(np.float64) / TAU
    logp = z - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)) - z.max(-1, keepdims=True)
    p = np.exp(logp)
    kl_uniform = np.sum((1.0 / V) * (np.log(1.0 / V) - logp), axis=-1)  # KL(U || p_t)
    entropy = -np.sum(p * logp, axis=-1)
    chosen = np.take_along_axis(logp, tokens[..., None], axis=-1)[..., 0]
    top = np.sort(p, axis=-1)
    margin = top[..., -1] - top[..., -2]

    def mean(x, m):
        return np.array([x[b][m[b]].mean() if m[b].any() else 0.0 for b in range(B)])

    return {
        "self_certainty": mean(kl_uniform + math.log(V), mask),
        "token_entropy": -mean(entropy, mask),
        "trajectory_entropy": mean(chosen, mask),
        "probability": np.exp(np.array([chosen[b][mask[b]].sum() for b in range(B)])),
        "probability_disparity": mean(margin, answer_mask & mask),
        "kl_uniform": mean(kl_uniform, mask),
    }


@pytest.fixture(scope="module")
def fixture():
    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(B, T, V)) * 3).astype(np.float32)
    tokens = rng.integers(0, V, size=(B, T))
    mask = np.arange(T)[None, :] < LENGTHS[:, None]
    answer_mask = mask & (np.arange(T)[None, :] >= LENGTHS[:, None] - 2)  # the last two tokens
    return logits, tokens, mask, answer_mask


@pytest.mark.parametrize("name", ["self_certainty", "token_entropy", "trajectory_entropy", "probability"])
def test_in_loop_stats_match_full_logits(fixture, name):
    logits, tokens, mask, answer_mask = fixture
    got = compute_rewards(name, _in_loop_batch(logits, tokens, mask))
    want = _numpy_reference(logits, tokens, mask, answer_mask)[name]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert got.dtype == np.float32 and got.shape == (B,)


def test_probability_disparity_uses_answer_tokens(fixture):
    logits, tokens, mask, answer_mask = fixture
    reference = _numpy_reference(logits, tokens, mask, answer_mask)
    got = compute_rewards("probability_disparity", _in_loop_batch(logits, tokens, mask, answer_mask))
    np.testing.assert_allclose(got, reference["probability_disparity"], atol=1e-5)
    whole = compute_rewards("probability_disparity", _in_loop_batch(logits, tokens, mask))  # default: response
    np.testing.assert_allclose(whole, _numpy_reference(logits, tokens, mask, mask)["probability_disparity"],
                               atol=1e-5)
    assert not np.allclose(got[:3], whole[:3])


def test_self_certainty_exact_kl(fixture):
    logits, tokens, mask, answer_mask = fixture
    got = compute_rewards("self_certainty", _in_loop_batch(logits, tokens, mask), {"self_certainty": {"vocab_size": V}})
    np.testing.assert_allclose(got, _numpy_reference(logits, tokens, mask, answer_mask)["kl_uniform"], atol=1e-5)
    assert got[3] == 0.0  # the empty response


def test_hand_computed_values():
    mask = np.array([[True, True, False], [False, False, False]])
    logprobs = np.array([[math.log(0.5), math.log(0.25), -9.0], [0.0, 0.0, 0.0]])
    entropy = np.array([[1.0, 2.0, 50.0], [0.0, 0.0, 0.0]])
    batch = RewardBatch(texts=["a", ""], answers=[None, None], group_ids=[0, 0], mask=mask,
                        logprobs=logprobs, entropy=entropy)
    np.testing.assert_allclose(compute_rewards("probability", batch), [0.125, 1.0], rtol=1e-6)  # empty: 1
    np.testing.assert_allclose(compute_rewards("trajectory_entropy", batch),
                               [(math.log(0.5) + math.log(0.25)) / 2, 0.0], rtol=1e-6)
    np.testing.assert_allclose(compute_rewards("token_entropy", batch), [-1.5, 0.0], rtol=1e-6)


def test_missing_statistics_is_a_clear_error():
    batch = RewardBatch.from_texts(["\\boxed{1}"], [0])
    with pytest.raises(ValueError, match="RewardBatch.entropy"):
        compute_rewards("token_entropy", batch)
    zeros = _in_loop_batch(np.zeros((B, T, V), np.float32), np.zeros((B, T), int), np.ones((B, T), bool))
    with pytest.raises(ValueError, match="vocab_size"):
        compute_rewards("self_certainty", zeros, {"self_certainty": {"vocab_size": 0}})


def test_from_rollout(fixture):
    from urlvr_jax.sampling.rollout import Rollout

    logits, tokens, mask, _ = fixture
    reference = _in_loop_batch(logits, tokens, mask)
    rollout = Rollout(
        prompt_tokens=jnp.zeros((B, 2), jnp.int32), prompt_mask=jnp.ones((B, 2), bool), tokens=jnp.asarray(tokens),
        mask=jnp.asarray(mask), lengths=jnp.asarray(LENGTHS), finished=jnp.ones(B, bool),
        logprobs=jnp.asarray(reference.logprobs), entropy=jnp.asarray(reference.entropy),
        self_certainty=jnp.asarray(reference.self_certainty), margin=jnp.asarray(reference.margin),
        group_ids=jnp.asarray([0, 0, 1, 1, 1]),
    )
    texts = ["\\boxed{2}", "x", "the answer is 4", "", "1 then 5"]
    batch = RewardBatch.from_rollout(rollout, texts, ground_truths=["2"] * B)
    assert batch.answers == ["2", None, "4", None, "5"]
    assert batch.group_ids.tolist() == [0, 0, 1, 1, 1]
    np.testing.assert_array_equal(batch.response_lengths(), LENGTHS)
    np.testing.assert_allclose(compute_rewards("self_certainty", batch), compute_rewards("self_certainty", reference))
