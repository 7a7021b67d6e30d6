"""The per-token statistics on edge cases, and their gradients, against float64 numpy."""

import jax
import jax.numpy as jnp
import numpy as np

from urlvr_jax.sampling.stats import scaled_softmax, token_stats
from urlvr_jax.sampling.strategies import SamplingConfig, choose_tokens


def _reference(logits: np.ndarray, token: int) -> dict[str, float]:
    finite = np.isfinite(logits)
    z = logits.astype(np.float64)
    lse = np.log(np.exp(z[finite] - z.max()).sum()) + z.max()
    p = np.where(finite, np.exp(z - lse), 0.0)
    top2 = np.sort(p)[-2:]
    return {"logprobs": z[token] - lse, "entropy": -(p[finite] * (z[finite] - lse)).sum(),
            "self_certainty": lse - z.mean(), "margin": top2[1] - top2[0]}


def test_stats_on_ties_masked_tokens_and_large_logits():
    rows = np.array([
        [2.0, 5.0, 5.0, -1.0, 0.5],  # a tie at the top: margin 0, greedy takes the first
        [-np.inf, 3.0, -np.inf, 1.0, 2.0],  # masked-out tokens: zero probability, no NaN in the entropy
        [1e4, 1e4 - 2.0, 1e4 - 30.0, 9e3, 1e4 - 0.5],  # logits far from 0
    ], np.float32)
    tokens = np.array([2, 4, 1])
    stats = jax.jit(token_stats)(jnp.asarray(rows), jnp.asarray(tokens))
    for b in range(len(rows)):
        expected = _reference(rows[b], tokens[b])
        for name, value in expected.items():
            if np.isfinite(value):
                np.testing.assert_allclose(float(stats[name][b]), value, rtol=1e-5, atol=1e-6, err_msg=(b, name))
            else:
                assert float(stats[name][b]) == value, (b, name)  # self-certainty of masked logits is +inf
    assert float(stats["margin"][0]) == 0.0
    greedy = choose_tokens(scaled_softmax(jnp.asarray(rows)), jnp.zeros(3), SamplingConfig(1, temperature=0.0))
    np.testing.assert_array_equal(greedy, [1, 1, 0])


def test_logprob_and_entropy_gradients_equal_log_softmax():
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(3, 11)) * 4, jnp.float32)
    tokens = jnp.array([0, 5, 10])

    def reference(x, name):
        logp = jax.nn.log_softmax(x / 0.7)
        if name == "logprobs":
            return jnp.take_along_axis(logp, tokens[:, None], -1).sum()
        return -(jnp.exp(logp) * logp).sum()

    for name in ("logprobs", "entropy"):
        ours = jax.grad(lambda x: token_stats(x, tokens, 0.7)[name].sum())(logits)
        np.testing.assert_allclose(ours, jax.grad(reference)(logits, name), rtol=1e-5, atol=1e-6, err_msg=name)
