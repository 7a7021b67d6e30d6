"""The hand-written attention backward equals autodiff of the plain softmax-attention formula."""

import jax
import jax.numpy as jnp
import numpy as np

from urlvr_jax.model.attention import MASKED, attend

B, HKV, G, S, K, DH = 2, 2, 3, 4, 6, 8


def reference(q, k, v, mask):
    """The same attention by autodiff-able einsums: q [B,Hkv,G*S,Dh], k [B,Hkv,Dh,K] (transposed), v [B,Hkv,K,Dh]."""
    qg = q.reshape(B, HKV, G, S, DH)
    scores = jnp.einsum("bhgsd,bhdk->bhgsk", qg, k) / np.sqrt(DH)
    probs = jax.nn.softmax(jnp.where(mask[:, None, None], scores, MASKED), axis=-1)
    return jnp.einsum("bhgsk,bhkd->bhgsd", probs, v).reshape(B, HKV, G * S, DH)


def inputs():
    rng = np.random.default_rng(0)
    q, k, v = (jnp.asarray(rng.normal(size=shape), jnp.float32) for shape in
               ((B, HKV, G * S, DH), (B, HKV, DH, K), (B, HKV, K, DH)))
    mask = rng.random((B, S, K)) < 0.7
    mask[:, :, 0] = True
    mask[1, 2, :] = False  # a query that sees no key: uniform probabilities, finite gradients
    weights = jnp.asarray(rng.normal(size=(B, HKV, G * S, DH)), jnp.float32)
    return q, k, v, jnp.asarray(mask), weights


def test_forward_and_gradients_match_autodiff():
    q, k, v, mask, w = inputs()
    np.testing.assert_allclose(attend(q, k, v, mask), reference(q, k, v, mask), rtol=1e-5, atol=1e-6)
    loss = lambda fn: lambda q, k, v: jnp.sum(w * fn(q, k, v, mask) ** 2)
    got = jax.grad(loss(attend), argnums=(0, 1, 2))(q, k, v)
    want = jax.grad(loss(reference), argnums=(0, 1, 2))(q, k, v)
    for name, g, r in zip("qkv", got, want):
        assert np.all(np.isfinite(g)), name
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5, err_msg=name)


def test_a_query_with_no_visible_key_gets_no_gradient_to_q():
    q, k, v, mask, w = inputs()
    dq = jax.grad(lambda q: jnp.sum(w * attend(q, k, v, mask)))(q)
    rows = np.arange(G) * S + 2  # position 2 of each group in batch row 1: all keys masked, uniform weights
    np.testing.assert_allclose(dq[1, :, rows], 0.0, atol=1e-6)


def test_bfloat16_inputs_keep_their_dtype_and_stay_close():
    q, k, v, mask, w = inputs()
    low = [x.astype(jnp.bfloat16) for x in (q, k, v)]
    grads = jax.grad(lambda q, k, v: jnp.sum(w * attend(q, k, v, mask)), argnums=(0, 1, 2))(*low)
    want = jax.grad(lambda q, k, v: jnp.sum(w * reference(q, k, v, mask)), argnums=(0, 1, 2))(q, k, v)
    for g, r in zip(grads, want):
        assert g.dtype == jnp.bfloat16
        np.testing.assert_allclose(np.asarray(g, np.float32), r, rtol=0.1, atol=0.1)
