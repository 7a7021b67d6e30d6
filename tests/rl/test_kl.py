"""KL estimators: hand values, clamps, verl's formulas, and their expected gradients on a categorical policy."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy_reference import verl_kl_penalty

from urlvr_jax.rl.kl import KL_ESTIMATORS, kl_penalty


def test_hand_computed_values():
    # logp = -1, ref = -2: l = 1 -> k1 = 1, k2 = 0.5, k3: d = -1 -> e^-1 + 1 - 1 = 0.3678794.
    # logp = -2, ref = -1: l = -1 -> k1 = -1, k2 = 0.5, k3: d = 1 -> e - 1 - 1 = 0.7182818.
    logp, ref = jnp.array([[-1.0, -2.0]]), jnp.array([[-2.0, -1.0]])
    np.testing.assert_allclose(kl_penalty(logp, ref, "k1"), [[1.0, -1.0]], rtol=1e-6)
    np.testing.assert_allclose(kl_penalty(logp, ref, "k2"), [[0.5, 0.5]], rtol=1e-6)
    np.testing.assert_allclose(kl_penalty(logp, ref, "k3"), [[0.3678794, 0.7182818]], rtol=1e-6)


def test_k3_clamps():
    # logp = 0, ref = -30: d = -30 -> clamped to -20 -> e^-20 + 20 - 1 = 19 -> clamped to 10.
    # logp = -30, ref = 0: d = 30 -> 20 -> e^20 - 21 -> 10.  logp = -5, ref = -3: d = 2 -> e^2 - 3 = 4.389056.
    out = kl_penalty(jnp.array([0.0, -30.0, -5.0]), jnp.array([-30.0, 0.0, -3.0]), "k3")
    np.testing.assert_allclose(out, [10.0, 10.0, 4.389056], rtol=1e-6)


@pytest.mark.parametrize("kind", ["k1", "k2", "k3", "kl", "mse", "low_var_kl"])
def test_matches_verl(kind):
    rng = np.random.default_rng(0)
    logp = rng.normal(-2.0, 1.5, size=(4, 9)).astype(np.float32)
    ref = logp + rng.normal(0.0, 2.0, size=(4, 9)).astype(np.float32)  # some k3 values hit the +10 clamp
    ref_np = verl_kl_penalty(logp.astype(np.float64), ref.astype(np.float64), kind)
    np.testing.assert_allclose(kl_penalty(logp, ref, kind), ref_np, rtol=1e-5, atol=1e-6)


def test_aliases_are_the_same_functions():
    assert KL_ESTIMATORS.get("kl") is KL_ESTIMATORS.get("k1")
    assert KL_ESTIMATORS.get("mse") is KL_ESTIMATORS.get("k2")
    assert KL_ESTIMATORS.get("low_var_kl") is KL_ESTIMATORS.get("k3")


def test_unknown_kind_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown KL estimator 'k4'.*k1, k2, k3"):
        kl_penalty(jnp.zeros(2), jnp.zeros(2), "k4")


@functools.partial(jax.jit, static_argnums=2)
@jax.grad
def _expected_grad(theta: jax.Array, log_rho: jax.Array, kind: str) -> jax.Array:
    """grad_theta sum_y sg(pi_y) k(theta; y): the exact expected gradient of estimator ``kind`` as a loss."""
    logp = jax.nn.log_softmax(theta)
    return jnp.sum(jax.lax.stop_gradient(jnp.exp(logp)) * kl_penalty(logp, log_rho, kind))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expected_gradients_on_categorical_policy(seed):
    r"""Expected gradient of each estimator used as a loss, against its analytic form.

    Policy pi = softmax(theta) over K classes, fixed reference rho. Samples y ~ pi come from the rollout and are
    not differentiated, so the loss gradient is E_y[grad_theta k(theta; y)], computed exactly as
    sum_y sg(pi_y) grad_theta k(theta; y). With grad_theta log pi_y = e_y - pi and l_y = log pi_y - log rho_y:

    * k1 = l_y:         E = sum_y pi_y (e_y - pi) = pi - pi * sum_y pi_y = 0.
    * k2 = l_y^2 / 2:   E = sum_y pi_y l_y (e_y - pi), i.e. E_j = pi_j (l_j - sum_y pi_y l_y).
      grad KL(pi||rho) = sum_y grad(pi_y) l_y + sum_y pi_y grad(log pi_y) = sum_y pi_y l_y (e_y - pi) + 0,
      so k2 gives the gradient of the reverse KL.
    * k3 = rho_y/pi_y - log(rho_y/pi_y) - 1: d k3 / d log pi_y = 1 - rho_y/pi_y, so
      E = sum_y (pi_y - rho_y)(e_y - pi) = (pi - rho) - pi (1 - 1) = pi - rho.
      grad KL(rho||pi) = -sum_y rho_y (e_y - pi) = pi - rho: k3 gives the gradient of the forward KL.
    (The test keeps k3 below its clamp at 10 so that the clamp does not cut the gradient.)
    """
    k = 7
    key_t, key_r = jax.random.split(jax.random.PRNGKey(seed))
    theta = jax.random.normal(key_t, (k,))
    log_rho = jax.nn.log_softmax(theta + jax.random.normal(key_r, (k,)))  # near pi: k3 stays unclamped
    pi, rho = jax.nn.softmax(theta), jnp.exp(log_rho)

    assert float(jnp.max(kl_penalty(jnp.log(pi), log_rho, "k3"))) < 10.0
    grads = {kind: _expected_grad(theta, log_rho, kind) for kind in ("k1", "k2", "k3")}

    l = jnp.log(pi) - log_rho
    np.testing.assert_allclose(grads["k1"], np.zeros(k), atol=1e-6)
    np.testing.assert_allclose(grads["k2"], pi * (l - jnp.sum(pi * l)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads["k3"], pi - rho, rtol=1e-5, atol=1e-6)

    # The same targets by autodiff of the exact divergences.
    reverse_kl = jax.grad(lambda th: jnp.sum(jax.nn.softmax(th) * (jax.nn.log_softmax(th) - log_rho)))(theta)
    forward_kl = jax.grad(lambda th: jnp.sum(rho * (log_rho - jax.nn.log_softmax(th))))(theta)
    np.testing.assert_allclose(grads["k2"], reverse_kl, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads["k3"], forward_kl, rtol=1e-5, atol=1e-6)
    assert float(jnp.max(jnp.abs(grads["k2"] - grads["k3"]))) > 1e-3  # the two gradients really differ
