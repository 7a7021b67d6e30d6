"""``rollout.slots``: the run's samplers (rollouts, validation, verification) use continuous batching over that many
slots, and generate the same rollouts as the static sampler; a negative value is one clear error."""

import jax
import numpy as np
import pytest

from urlvr_jax.sampling.continuous import ContinuousSampler
from urlvr_jax.utils.config import UserError, apply_overrides, load_config, validate_config


def test_rollout_slots_makes_the_runs_samplers_continuous():
    from urlvr_jax.rl.loop import URLVRRun

    static = URLVRRun(load_config("tiny_gt"))
    run = URLVRRun(apply_overrides(load_config("tiny_gt"), ["rollout.slots=8"]))
    for sampler in (run.sampler, run.val_sampler, run.verify_sampler):
        assert isinstance(sampler, ContinuousSampler) and sampler.slots == 8
    assert not isinstance(static.sampler, ContinuousSampler)
    assert run.sampler.sampling == static.sampler.sampling
    prompts = ["2 + 3", "7 * 6 - 1"]  # within tiny_gt's rollout.max_prompt_len
    (static_rollout, _, static_texts), (rollout, _, texts) = (
        r._generate_texts(r.sampler, r.state.params, prompts, jax.random.key(0), 4) for r in (static, run))
    assert texts == static_texts
    np.testing.assert_array_equal(np.asarray(rollout.tokens), np.asarray(static_rollout.tokens))
    np.testing.assert_allclose(np.asarray(rollout.logprobs), np.asarray(static_rollout.logprobs), atol=1e-5)


def test_negative_slots_is_one_clear_error():
    with pytest.raises(UserError, match=r"^config rollout\.slots=-1 must be an integer >= 0$"):
        validate_config(apply_overrides(load_config("tiny_gt"), ["rollout.slots=-1"]))


def test_auto_batching_is_continuous_where_it_measured_faster():
    """rollout.batching=auto (the default): continuous from 16 new tokens on (benchmarks/lengths_bench.py: 1.75x to
    7.5x the static tokens/s on CPU), over an eighth of the rollout rows; static for shorter rollouts, with
    rollout chunks (only the static sampler takes them) or when asked."""
    from urlvr_jax.evaluation import continuous_slots

    slots = lambda name, *o: continuous_slots(apply_overrides(load_config(name), list(o)))
    assert slots("paper_qwen3_1p7b") == 64 * 8 // 8  # 7,168 new tokens
    assert slots("tiny_gt") == 0  # 8 new tokens
    assert slots("cpu_default") == 0  # 4 new tokens: no gain, a longer compile
    assert slots("tiny_gt", "rollout.max_new_tokens=16") == 16 * 4 // 8
    assert slots("tiny_gt", "rollout.batching=continuous") == 16 * 4 // 8
    assert slots("tiny_gt", "rollout.slots=3") == 3
    assert slots("paper_qwen3_1p7b", "rollout.batching=static") == 0
    assert slots("paper_qwen3_1p7b", "rollout.max_rows_per_chunk=64") == 0
    assert slots("paper_qwen3_1p7b", "rollout.slots=32") == 32


@pytest.mark.parametrize("overrides, message", [
    (["rollout.batching=fast"], r"^config rollout\.batching='fast' must be auto, static or continuous$"),
    (["rollout.batching=static", "rollout.slots=8"],
     r"^config rollout\.slots=8 needs rollout\.batching=continuous or auto \(it is static\)$")])
def test_bad_batching_is_one_clear_error(overrides, message):
    with pytest.raises(UserError, match=message):
        validate_config(apply_overrides(load_config("tiny_gt"), overrides))
