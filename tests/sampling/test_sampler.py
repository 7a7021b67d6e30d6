"""Sampler: greedy parity with transformers, in-loop statistics, sampling strategies, RNG, groups, stops, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sampler_fixtures import cached_sampler, hf_greedy, jitted_completion_stats, jitted_forward, left_padded, tiny_model
from urlvr_jax.sampling.logprobs import completion_logprobs
from urlvr_jax.sampling.rollout import STAT_NAMES
from urlvr_jax.sampling.sampler import Sampler
from urlvr_jax.sampling.strategies import SamplingConfig, filter_logits

LENGTHS = (5, 12, 1, 9)  # different prompt lengths, one single-token prompt
NEW = 12
# Tests share these configurations (and batch shapes) so the session compiles few programs.
SAMPLED = dict(temperature=1.0, stop_token_ids=(5, 6))
TEMPERATURE = 0.7


def _sampler(cfg, **kwargs) -> Sampler:
    return cached_sampler(cfg, SamplingConfig(**{"max_new_tokens": NEW, **kwargs}))


def _run(cfg, params, tokens, mask, seed=0, **kwargs):
    rollout = _sampler(cfg, **kwargs).generate(params, tokens, mask, jax.random.key(seed))
    return jax.tree.map(np.asarray, rollout)


@pytest.fixture(scope="module")
def llama():
    return tiny_model("llama")


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3"])
def test_greedy_matches_transformers_generate(family):
    model, cfg, params = tiny_model(family)
    tokens, mask = left_padded(LENGTHS, cfg.vocab_size, seed=1)
    ours = _run(cfg, params, tokens, mask, temperature=0.0)
    expected = hf_greedy(model, tokens, mask, NEW)
    assert len(set(expected.ravel().tolist())) >= 6  # the tiny model does not just repeat one token
    np.testing.assert_array_equal(ours.tokens, expected)
    assert ours.mask.all() and (ours.lengths == NEW).all() and not ours.finished.any()


def _numpy_stats(logits: np.ndarray, tokens: np.ndarray, temperature: float) -> dict[str, np.ndarray]:
    """The four statistics from full logits [B, T, V] in float64 numpy."""
    z = logits.astype(np.float64) / temperature
    lse = np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1)) + z.max(-1)
    logp = z - lse[..., None]
    p = np.exp(logp)
    top2 = np.sort(p, axis=-1)[..., -2:]
    return {"logprobs": np.take_along_axis(logp, tokens[..., None], -1)[..., 0],
            "entropy": -(p * logp).sum(-1), "self_certainty": lse - z.mean(-1), "margin": top2[..., 1] - top2[..., 0]}


def test_in_loop_stats_equal_full_logit_recomputation(llama):
    _, cfg, params = llama
    temperature, top_k = TEMPERATURE, 20
    tokens, mask = left_padded(LENGTHS, cfg.vocab_size, seed=2)
    r = _run(cfg, params, tokens, mask, temperature=temperature, top_k=top_k, stop_token_ids=(5, 6, 7))
    assert r.lengths.min() < NEW  # some rows stopped early, so the masks are ragged
    recomputed = jitted_completion_stats(params, r.prompt_tokens, r.prompt_mask, r.tokens, r.mask, cfg=cfg,
                                  temperature=temperature)
    full_tokens = np.concatenate([r.prompt_tokens, r.tokens], axis=1)
    full_mask = np.concatenate([r.prompt_mask, r.mask], axis=1)
    logits = jitted_forward(params, full_tokens, full_mask, cfg=cfg)
    P = r.prompt_tokens.shape[1]
    logits = np.asarray(logits)[:, P - 1:-1]  # position P - 1 + t predicts completion token t
    reference = _numpy_stats(logits, r.tokens, temperature)
    for name in STAT_NAMES:
        ours = getattr(r, name)
        assert (ours[~r.mask] == 0).all()
        np.testing.assert_allclose(ours, np.asarray(recomputed[name]), atol=1e-5, rtol=0, err_msg=name)
        np.testing.assert_allclose(ours[r.mask], reference[name][r.mask], atol=1e-5, rtol=0, err_msg=name)
    # the statistics are of the unfiltered distribution, but the tokens come from the top k
    ranks = (logits > np.take_along_axis(logits, r.tokens[..., None], -1)).sum(-1)
    assert (ranks[r.mask] < top_k).all() and ranks[r.mask].max() > 0


def test_greedy_stats_are_at_temperature_one(llama):
    _, cfg, params = llama
    tokens, mask = left_padded(LENGTHS, cfg.vocab_size, seed=3)
    r = _run(cfg, params, tokens, mask, temperature=0.0)
    recomputed = jitted_completion_stats(params, r.prompt_tokens, r.prompt_mask, r.tokens, r.mask, cfg=cfg)
    np.testing.assert_allclose(r.logprobs, np.asarray(recomputed["logprobs"]), atol=1e-5, rtol=0)
    assert (r.margin > 0).all()  # the greedy token is the top-1


def test_completion_stats_chunked_equals_unchunked(llama):
    _, cfg, params = llama
    tokens, mask = left_padded(LENGTHS, cfg.vocab_size, seed=4)
    r = _run(cfg, params, tokens, mask, **SAMPLED)
    args = (params, r.prompt_tokens, r.prompt_mask, r.tokens, r.mask)
    full = jitted_completion_stats(*args, cfg=cfg, temperature=TEMPERATURE)
    for chunk in (5, 4):  # uneven (padded last chunk), dividing T
        chunked = jitted_completion_stats(*args, cfg=cfg, temperature=TEMPERATURE, chunk_size=chunk)
        for name in STAT_NAMES:
            np.testing.assert_allclose(np.asarray(chunked[name]), np.asarray(full[name]), atol=1e-5, rtol=0)
    logprobs = jax.jit(completion_logprobs, static_argnames=("cfg", "temperature", "chunk_size"))(
        *args, cfg=cfg, temperature=TEMPERATURE, chunk_size=5)
    np.testing.assert_allclose(np.asarray(logprobs), np.asarray(full["logprobs"]), atol=1e-5, rtol=0)


def test_temperature_to_zero_equals_greedy(llama):
    _, cfg, params = llama
    tokens, mask = left_padded(LENGTHS, cfg.vocab_size, seed=2)
    greedy = _run(cfg, params, tokens, mask, temperature=0.0)
    assert greedy.margin.min() > 1e-3  # no near-ties, which a tiny temperature could break either way
    cold = _run(cfg, params, tokens, mask, temperature=1e-4)
    nucleus = _run(cfg, params, tokens, mask, temperature=1.0, top_p=1e-6)
    for other in (cold, nucleus):
        np.testing.assert_array_equal(other.tokens, greedy.tokens)


def test_disabled_filters_equal_plain_sampling(llama):
    _, cfg, params = llama
    tokens, mask = left_padded(LENGTHS, cfg.vocab_size, seed=6)
    plain = _run(cfg, params, tokens, mask, seed=3, **SAMPLED)
    other = _run(cfg, params, tokens, mask, seed=3, top_k=cfg.vocab_size, top_p=1.0, **SAMPLED)
    np.testing.assert_array_equal(other.tokens, plain.tokens)
    assert not (_run(cfg, params, tokens, mask, seed=4, **SAMPLED).tokens == plain.tokens).all()


def test_filter_logits_against_numpy():
    z = np.log(np.array([[0.05, 0.4, 0.1, 0.3, 0.15], [0.2, 0.2, 0.2, 0.2, 0.2]], np.float32))
    kept = lambda **kw: np.isfinite(np.asarray(filter_logits(jnp.asarray(z), **kw)))
    np.testing.assert_array_equal(kept(top_k=2, top_p=1.0)[0], [0, 1, 0, 1, 0])
    np.testing.assert_array_equal(kept(top_k=0, top_p=0.7)[0], [0, 1, 0, 1, 0])  # 0.4 + 0.3 reaches 0.7
    np.testing.assert_array_equal(kept(top_k=0, top_p=0.71)[0], [0, 1, 0, 1, 1])
    np.testing.assert_array_equal(kept(top_k=5, top_p=1.0), np.ones_like(z, bool))
    assert kept(top_k=0, top_p=0.5)[1].all()  # ties at the threshold are all kept
    kept_z = np.asarray(filter_logits(jnp.asarray(z), top_k=3, top_p=1.0))
    np.testing.assert_array_equal(kept_z[0][[1, 3, 4]], z[0][[1, 3, 4]])


def test_same_sequence_id_same_rollout_in_any_batch(llama):
    _, cfg, params = llama
    tokens, mask = left_padded((4, 7, 11, 2, 9, 13), cfg.vocab_size, seed=7)
    sampler = _sampler(cfg, **SAMPLED)
    ids = np.array([100, 101, 102, 103, 104, 105])
    six = jax.tree.map(np.asarray, sampler.generate(params, tokens, mask, jax.random.key(1), sequence_ids=ids))
    pick = [4, 1]
    two = jax.tree.map(np.asarray, sampler.generate(params, tokens[pick], mask[pick], jax.random.key(1),
                                                    sequence_ids=ids[pick]))
    # fp32 on CPU: batch composition does not change the tokens (nor, to float noise, the statistics)
    np.testing.assert_array_equal(two.tokens, six.tokens[pick])
    np.testing.assert_array_equal(two.lengths, six.lengths[pick])
    np.testing.assert_allclose(two.logprobs, six.logprobs[pick], atol=1e-5)
    other_ids = sampler.generate(params, tokens[pick], mask[pick], jax.random.key(1), sequence_ids=ids[pick] + 6)
    assert not (np.asarray(other_ids.tokens) == two.tokens).all()


def test_num_samples_are_prompt_major_groups(llama):
    _, cfg, params = llama
    tokens, mask = left_padded((3, 8), cfg.vocab_size, seed=8)
    sampler = _sampler(cfg, **SAMPLED)
    grouped = jax.tree.map(np.asarray, sampler.generate(params, tokens, mask, jax.random.key(2), num_samples=3))
    assert grouped.batch_size == 6
    np.testing.assert_array_equal(grouped.group_ids, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(grouped.prompt_tokens[:3], np.broadcast_to(grouped.prompt_tokens[0], (3, 16)))
    np.testing.assert_array_equal(grouped.prompt_tokens[[0, 3]][grouped.prompt_mask[[0, 3]]],
                                  tokens[mask])
    assert len({tuple(row) for row in grouped.tokens[:3]}) == 3  # the samples of one prompt differ
    # the same as repeating each prompt 3 times with sequence ids 0..5
    repeated = jax.tree.map(np.asarray, sampler.generate(params, tokens.repeat(3, 0), mask.repeat(3, 0),
                                                         jax.random.key(2)))
    np.testing.assert_array_equal(grouped.tokens, repeated.tokens)
    np.testing.assert_array_equal(grouped.lengths, repeated.lengths)
    np.testing.assert_allclose(grouped.logprobs, repeated.logprobs, atol=1e-5)


def test_stop_tokens_end_rows(llama):
    _, cfg, params = llama
    tokens, mask = left_padded(LENGTHS, cfg.vocab_size, seed=1)
    free = _run(cfg, params, tokens, mask, temperature=0.0)
    stop = int(free.tokens[0, 3])  # a token row 0 emits at step 3
    r = _run(cfg, params, tokens, mask, temperature=0.0, stop_token_ids=(stop, 96), pad_id=0)
    for row in range(len(LENGTHS)):
        hits = np.flatnonzero(np.isin(free.tokens[row], (stop, 96)))
        length = hits[0] + 1 if hits.size else NEW
        assert r.lengths[row] == length and r.finished[row] == bool(hits.size)
        np.testing.assert_array_equal(r.tokens[row, :length], free.tokens[row, :length])  # stop token kept
        assert r.mask[row].sum() == length and r.mask[row, :length].all()
        assert (r.tokens[row, length:] == 0).all()  # pad after the stop
    assert r.finished[0] and r.lengths[0] <= 4


def test_no_stop_tokens_runs_to_max_new_tokens(llama):
    """Documented behaviour without stop ids (e.g. no EOS configured): every row runs max_new_tokens, unfinished."""
    _, cfg, params = llama
    tokens, mask = left_padded(LENGTHS, cfg.vocab_size, seed=9)
    r = _run(cfg, params, tokens, mask, temperature=0.0)
    assert (r.lengths == NEW).all() and r.mask.all() and not r.finished.any()


def test_bad_inputs_raise_clear_errors(llama):
    _, cfg, params = llama  # max_position_embeddings 256
    sampler = _sampler(cfg, temperature=0.0)
    key = jax.random.key(0)
    tokens, mask = left_padded((3, 0), cfg.vocab_size)
    with pytest.raises(ValueError, match="empty"):
        sampler.generate(params, tokens, mask, key)
    tokens, mask = left_padded((250, 3), cfg.vocab_size)  # bucket 256 + 12 new tokens > 256 positions
    with pytest.raises(ValueError, match="max_position_embeddings"):
        sampler.generate(params, tokens, mask, key)
    with pytest.raises(ValueError, match="largest prompt bucket"):
        Sampler(cfg, SamplingConfig(max_new_tokens=4), buckets=(8, 16)).generate(params, tokens, mask, key)
    with pytest.raises(ValueError, match="left-padded"):
        sampler.generate(params, np.ones((1, 4), np.int32), np.array([[1, 1, 0, 0]], bool), key)
    with pytest.raises(ValueError, match="sequence_ids"):
        sampler.generate(params, tokens[1:], mask[1:], key, num_samples=2, sequence_ids=[0])
    for bad in (dict(max_new_tokens=0), dict(max_new_tokens=4, temperature=-1.0),
                dict(max_new_tokens=4, top_p=0.0), dict(max_new_tokens=4, top_k=-1)):
        with pytest.raises(ValueError, match="SamplingConfig"):
            SamplingConfig(**bad)


def test_decode_updates_the_cache_in_place(llama):
    _, cfg, params = llama
    sampler = _sampler(cfg, temperature=0.0)
    (prefill, decode, _), inputs = sampler.prepare(*left_padded(LENGTHS, cfg.vocab_size), jax.random.key(0))
    state = prefill(params, *inputs)
    hlo = decode.fn.lower(params, state).compile().as_text()
    cache_shape = "f32[" + ",".join(map(str, state.cache.k.shape)) + "]"
    copies = [line for line in hlo.splitlines() if " copy(" in line and f"= {cache_shape}" in line]
    assert not copies  # no per-step copy of the KV cache
    assert "input_output_alias" in hlo  # the donated state is reused for the output


@pytest.mark.parametrize("out_major_rows", [0, 4], ids=["in_major", "out_major"])
@pytest.mark.parametrize("kwargs", [dict(temperature=0.0), SAMPLED], ids=["greedy", "sampled"])
def test_unrolled_layers_equal_scanned_layers(llama, kwargs, out_major_rows):
    """unroll_layers=True (per-layer weights and KV caches inside decode, out-major weights at <= 4 rows)
    changes nothing but speed."""
    _, cfg, params = llama
    tokens, mask = left_padded(LENGTHS, cfg.vocab_size, seed=4)
    scanned = _run(cfg, params, tokens, mask, seed=3, **kwargs)
    sampler = Sampler(cfg, SamplingConfig(max_new_tokens=NEW, **kwargs), unroll_layers=True,
                      out_major_rows=out_major_rows)
    assert sampler.decodes_out_major(len(LENGTHS)) == (out_major_rows > 0)
    unrolled = jax.tree.map(np.asarray, sampler.generate(params, tokens, mask, jax.random.key(3)))
    np.testing.assert_array_equal(unrolled.tokens, scanned.tokens)
    np.testing.assert_array_equal(unrolled.lengths, scanned.lengths)
    for name in STAT_NAMES:
        np.testing.assert_allclose(getattr(unrolled, name), getattr(scanned, name), atol=1e-5)
    (prefill, decode, _), inputs = sampler.prepare(tokens, mask, jax.random.key(3))
    state = prefill(params, *inputs)
    assert jax.tree.map(jnp.shape, decode(params, state).cache) == jax.tree.map(jnp.shape, state.cache)


def test_out_major_decoding_needs_unrolled_layers_and_few_rows(llama):
    _, cfg, _ = llama
    sampling = SamplingConfig(max_new_tokens=NEW)
    assert not Sampler(cfg, sampling).decodes_out_major(1)  # the scanned decode keeps the stored layout
    assert Sampler(cfg, sampling, unroll_layers=True, out_major_rows=8).decodes_out_major(8)
    assert not Sampler(cfg, sampling, unroll_layers=True, out_major_rows=8).decodes_out_major(9)
    default = Sampler(cfg, sampling, unroll_layers=True)  # None: 32 rows on CPU (these tests' backend)
    assert default.decodes_out_major(32) and not default.decodes_out_major(33)
