"""Per-token estimators of KL(pi || pi_ref) from sampled-token log-probs, registered by name.

With y ~ pi and the log-ratio ``l = log pi(y) - log pi_ref(y)`` (Schulman's "Approximating KL divergence"):

* ``k1`` (alias ``kl``):  l. Unbiased for KL(pi || pi_ref); as a loss its expected gradient is zero.
* ``k2`` (alias ``mse``): l^2 / 2. Biased; as a loss its expected gradient is the gradient of KL(pi || pi_ref).
* ``k3`` (alias ``low_var_kl``): with d = clamp(-l, -20, 20), exp(d) - d - 1, then clamped to [-10, 10]
  (verl's ``low_var_kl``; TRL uses the same formula without the clamps). Unbiased and >= 0; as a loss its
  expected gradient is the gradient of the *forward* KL(pi_ref || pi).

"As a loss" means the samples come from the rollout and are not differentiated, exactly as in the GRPO loss
(``tests/rl/test_kl.py`` checks the three statements on a categorical policy). The per-token values are
aggregated with the policy loss's aggregation (see :func:`urlvr_jax.rl.losses.aggregate`).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from urlvr_jax.rl.registry import Registry

KLFn = Callable[[jax.Array, jax.Array], jax.Array]

KL_ESTIMATORS: Registry[KLFn] = Registry("KL estimator")
register_kl_fn = KL_ESTIMATORS.register

LOG_RATIO_CLAMP = 20.0
K3_CLAMP = 10.0


@register_kl_fn("k1", "kl")
def k1(logprobs: jax.Array, ref_logprobs: jax.Array) -> jax.Array:
    """log pi - log pi_ref."""
    return logprobs - ref_logprobs


@register_kl_fn("k2", "mse")
def k2(logprobs: jax.Array, ref_logprobs: jax.Array) -> jax.Array:
    """(log pi - log pi_ref)^2 / 2."""
    return 0.5 * jnp.square(logprobs - ref_logprobs)


@register_kl_fn("k3", "low_var_kl")
def k3(logprobs: jax.Array, ref_logprobs: jax.Array) -> jax.Array:
    """exp(d) - d - 1 with d = clamp(log pi_ref - log pi, +-20), clamped to [-10, 10]."""
    d = jnp.clip(ref_logprobs - logprobs, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    return jnp.clip(jnp.exp(d) - d - 1.0, -K3_CLAMP, K3_CLAMP)


def kl_penalty(logprobs: jax.Array, ref_logprobs: jax.Array, kind: str = "k3") -> jax.Array:
    """Per-token KL estimate [B, T] (float32) of the estimator ``kind`` (k1, k2, k3 or an alias)."""
    fn = KL_ESTIMATORS.get(kind)
    return fn(jnp.asarray(logprobs, jnp.float32), jnp.asarray(ref_logprobs, jnp.float32))
