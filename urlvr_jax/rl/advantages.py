"""Outcome advantage estimators for GRPO-style training, registered by name.

Every estimator has the signature ``fn(rewards [B] f32, group_ids [B] int32, num_groups: int, **opts) -> [B] f32``:
``group_ids`` says which prompt each rollout answers (values in ``[0, num_groups)``), ``num_groups`` is static so
the function jits with fixed shapes (group statistics use ``jax.ops.segment_sum``). The scalar advantage is later
broadcast to every token of its completion.

Registered names (``get_advantage_fn(name)``), with n_g the size of the group of rollout i and mean_g its mean:

* ``grpo``:      A_i = (r_i - mean_g) / (std_g + std_eps), std_g unbiased (ddof=1, as ``torch.std`` in verl and
  ``nanstd`` in TRL). ``std_eps`` defaults to verl's 1e-6 (TRL uses 1e-4: ``algo.conventions=trl``).
* ``dr_grpo``:   A_i = r_i - mean_g (Dr. GRPO, verl ``norm_adv_by_std_in_grpo=False``, TRL ``scale_rewards="none"``).
* ``rloo``:      A_i = r_i - mean_{j != i} r_j = n_g / (n_g - 1) * (r_i - mean_g) (verl ``rloo``).
* ``batch_std``: A_i = (r_i - mean_g) / (std_batch + std_eps), std_batch unbiased over the whole batch
  (TRL ``scale_rewards="batch"``).

Groups of size one follow verl (``compute_grpo_outcome_advantage``): such a group gets mean 0 and std 1, so
``grpo`` gives A = r / (1 + std_eps), ``dr_grpo`` and ``rloo`` give A = r and ``batch_std`` gives r / (std_batch + eps).
(With a baseline of its own reward a singleton would get A = 0; verl keeps the raw reward instead.)
Group ids that no rollout uses are harmless.
"""

from __future__ import annotations

from typing import Protocol

import jax
import jax.numpy as jnp

from urlvr_jax.rl.registry import Registry


class AdvantageFn(Protocol):
    def __call__(self, rewards: jax.Array, group_ids: jax.Array, num_groups: int, **opts: float) -> jax.Array: ...


ADVANTAGE_ESTIMATORS: Registry[AdvantageFn] = Registry("advantage estimator")
register_advantage_fn = ADVANTAGE_ESTIMATORS.register


def get_advantage_fn(name: str) -> AdvantageFn:
    """Returns the estimator registered as ``name`` (ValueError listing the valid names otherwise)."""
    return ADVANTAGE_ESTIMATORS.get(name)


def compute_advantages(
    name: str, rewards: jax.Array, group_ids: jax.Array, num_groups: int, **opts: float
) -> jax.Array:
    """Shorthand for ``get_advantage_fn(name)(rewards, group_ids, num_groups, **opts)``."""
    return get_advantage_fn(name)(rewards, group_ids, num_groups, **opts)


def contiguous_group_ids(batch_size: int, group_size: int) -> jax.Array:
    """Group ids [B] for rollouts laid out prompt by prompt: ``[0]*G + [1]*G + ...``."""
    if batch_size % group_size:
        raise ValueError(f"batch_size {batch_size} is not a multiple of group_size {group_size}")
    return jnp.arange(batch_size, dtype=jnp.int32) // group_size


def group_stats(rewards: jax.Array, group_ids: jax.Array, num_groups: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-rollout (group size n_g, baseline mean_g, unbiased std_g), each [B] float32.

    Singleton groups get mean 0 and std 1 (verl's convention, see the module docstring).
    """
    r = jnp.asarray(rewards, jnp.float32)
    gid = jnp.asarray(group_ids, jnp.int32)
    counts = jax.ops.segment_sum(jnp.ones_like(r), gid, num_groups)
    means = jax.ops.segment_sum(r, gid, num_groups) / jnp.maximum(counts, 1.0)
    n, mean = counts[gid], means[gid]
    sq_dev = jax.ops.segment_sum((r - mean) ** 2, gid, num_groups)[gid]
    std = jnp.sqrt(sq_dev / jnp.maximum(n - 1.0, 1.0))
    single = n <= 1
    return n, jnp.where(single, 0.0, mean), jnp.where(single, 1.0, std)


def _unbiased_std(x: jax.Array) -> jax.Array:
    return jnp.std(x, ddof=1) if x.shape[0] > 1 else jnp.ones((), x.dtype)


@register_advantage_fn("grpo")
def grpo_advantages(rewards: jax.Array, group_ids: jax.Array, num_groups: int, *, std_eps: float = 1e-6) -> jax.Array:
    """(r - mean_g) / (std_g + std_eps), unbiased group std."""
    _, mean, std = group_stats(rewards, group_ids, num_groups)
    return (jnp.asarray(rewards, jnp.float32) - mean) / (std + std_eps)


@register_advantage_fn("dr_grpo")
def dr_grpo_advantages(rewards: jax.Array, group_ids: jax.Array, num_groups: int) -> jax.Array:
    """r - mean_g (no std scaling)."""
    _, mean, _ = group_stats(rewards, group_ids, num_groups)
    return jnp.asarray(rewards, jnp.float32) - mean


@register_advantage_fn("rloo")
def rloo_advantages(rewards: jax.Array, group_ids: jax.Array, num_groups: int) -> jax.Array:
    """r_i minus the mean of the other rewards of its group: n/(n-1) * (r_i - mean_g)."""
    n, mean, _ = group_stats(rewards, group_ids, num_groups)
    scale = jnp.where(n > 1, n / jnp.maximum(n - 1.0, 1.0), 1.0)
    return scale * (jnp.asarray(rewards, jnp.float32) - mean)


@register_advantage_fn("batch_std")
def batch_std_advantages(
    rewards: jax.Array, group_ids: jax.Array, num_groups: int, *, std_eps: float = 1e-6
) -> jax.Array:
    """(r - mean_g) / (std_batch + std_eps): group baseline, whole-batch unbiased std."""
    r = jnp.asarray(rewards, jnp.float32)
    _, mean, _ = group_stats(r, group_ids, num_groups)
    return (r - mean) / (_unbiased_std(r) + std_eps)
