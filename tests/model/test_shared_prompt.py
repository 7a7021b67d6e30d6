"""Running each prompt once per group (model.shared_prompt) gives the per-row forward's hidden states, statistics
and gradients, on every family, with query-chunked attention, remat and unrolled layers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hf_fixtures import FAMILY_CONFIGS, tiny_hf_model
from urlvr_jax.model import hf_io, transformer
from urlvr_jax.model.shared_prompt import forward_hidden_grouped
from urlvr_jax.sampling.logprobs import completion_stats

FAMILIES = sorted(FAMILY_CONFIGS)
PROMPTS, GROUP, PROMPT_LEN, WIDTH = 3, 4, 7, 9


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """family -> (cfg, params) loaded from a saved tiny transformers model."""
    out = {}
    for family in FAMILIES:
        path = str(tmp_path_factory.mktemp(family))
        tiny_hf_model(family).save_pretrained(path)
        out[family] = hf_io.load_hf(path)
    return out


def _groups(seed=0, vocab=97):
    """Left-padded prompts [P, Lp] (one with no padding, one with only its last token real) and G right-padded
    completions of each [P * G, T], one of them empty and one full."""
    rng = np.random.default_rng(seed)
    prompt_mask = np.arange(PROMPT_LEN)[None] >= np.array([[0], [3], [PROMPT_LEN - 1]])
    prompt_tokens = np.where(prompt_mask, rng.integers(3, vocab, (PROMPTS, PROMPT_LEN)), 0)
    lengths = rng.integers(1, WIDTH, PROMPTS * GROUP)
    lengths[:2] = 0, WIDTH
    mask = np.arange(WIDTH)[None] < lengths[:, None]
    tokens = np.where(mask, rng.integers(3, vocab, (PROMPTS * GROUP, WIDTH)), 0)
    return tuple(jnp.asarray(x) for x in (prompt_tokens, prompt_mask, tokens, mask))


def _per_row(prompt_tokens, prompt_mask, tokens, mask):
    """The prompts repeated for each row of their group, as a batch without sharing has them."""
    return jnp.repeat(prompt_tokens, GROUP, axis=0), jnp.repeat(prompt_mask, GROUP, axis=0), tokens, mask


@pytest.mark.parametrize("family", FAMILIES)
def test_grouped_hidden_states_and_stats_equal_per_row(models, family):
    cfg, params = models[family]
    groups = _groups()
    prompt_hidden, hidden = forward_hidden_grouped(params, *groups, cfg=cfg)
    pt, pm, tokens, mask = _per_row(*groups)
    want, _ = transformer.forward_hidden(params, jnp.concatenate([pt, tokens], 1),
                                         token_mask=jnp.concatenate([pm, mask], 1), cfg=cfg)
    np.testing.assert_allclose(np.asarray(hidden), np.asarray(want[:, PROMPT_LEN:]), atol=1e-5)
    real = np.asarray(pm)  # a pad query sees no key; its (unused) output differs with the key count
    np.testing.assert_allclose(np.asarray(jnp.repeat(prompt_hidden, GROUP, axis=0))[real],
                               np.asarray(want[:, :PROMPT_LEN])[real], atol=1e-5)
    want_stats = completion_stats(params, pt, pm, tokens, mask, cfg=cfg, temperature=0.7)
    got_stats = completion_stats(params, pt, pm, tokens, mask, cfg=cfg, temperature=0.7, prompt_group=GROUP)
    for name in want_stats:
        np.testing.assert_allclose(np.asarray(got_stats[name]), np.asarray(want_stats[name]), atol=1e-5,
                                   err_msg=name)
    assert float(jnp.abs(want_stats["logprobs"]).max()) > 1.0  # real values were compared


def test_grouped_gradient_equals_per_row_gradient(models):
    """The prompt's gradient is summed over its group by the broadcast's transpose."""
    cfg, params = models["qwen2"]  # q/k/v biases: every parameter kind gets a gradient
    batch = _per_row(*_groups(1))
    weights = jnp.asarray(np.random.default_rng(2).normal(size=batch[2].shape), jnp.float32)

    def loss(p, group):
        return jnp.sum(completion_stats(p, *batch, cfg=cfg, prompt_group=group)["logprobs"] * weights)

    want, got = jax.grad(loss)(params, 1), jax.grad(loss)(params, GROUP)
    for (path, w), g in zip(jax.tree_util.tree_leaves_with_path(want), jax.tree.leaves(got)):
        scale = float(jnp.abs(w).max())
        assert scale > 0, path
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-5 * scale, err_msg=str(path))


@pytest.mark.parametrize("variant", ["attention_chunk", "remat", "unrolled", "sub_groups"])
def test_grouped_variants_equal_per_row(models, variant):
    cfg, params = models["llama"]
    batch = _per_row(*_groups(3))
    want = completion_stats(params, *batch, cfg=cfg)["logprobs"]
    group, remat = GROUP, False
    if variant == "attention_chunk":
        cfg = cfg.replace(attention_chunk=4)  # splits the completion's 9 queries unevenly
    elif variant == "remat":
        remat = True
    elif variant == "unrolled":
        params = transformer.unstack_layers(params)
    else:
        group = 2  # pairs of rows inside each group of 4 share a prompt too
    got = jax.jit(lambda p: completion_stats(p, *batch, cfg=cfg, remat=remat, prompt_group=group)["logprobs"])(params)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def test_rows_that_are_not_whole_groups_are_refused(models):
    cfg, params = models["llama"]
    batch = _per_row(*_groups())
    with pytest.raises(ValueError, match="prompt_group=5 must be >= 1 and divide the 12 rows"):
        completion_stats(params, *batch, cfg=cfg, prompt_group=5)
    with pytest.raises(ValueError, match="not a whole number of groups"):
        forward_hidden_grouped(params, *_groups()[:2], batch[2][:10], batch[3][:10], cfg=cfg)
