"""Reward registry: every reward is ``fn(batch: RewardBatch, **options) -> np.ndarray [B] float32``.

Rewards register themselves with :func:`register_reward`; the built-in ones live in
``certainty``, ``ensemble`` and ``external`` and are imported on first lookup.
``compute_rewards("majority_vote", batch)`` or ``compute_rewards({"countdown": 1.0, "format": 0.1},
batch)`` (a weighted sum) is what the training loop calls.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping

import numpy as np

KINDS = ("certainty", "ensemble", "external", "control")
_BUILTIN_MODULES = ("certainty", "ensemble", "external")

RewardFn = Callable[..., np.ndarray]
RewardSpec = str | Mapping[str, float]

_REWARDS: dict[str, RewardFn] = {}
_KIND_OF: dict[str, str] = {}


def register_reward(name: str, kind: str, *, replace: bool = False) -> Callable[[RewardFn], RewardFn]:
    """Decorator registering ``fn(batch: RewardBatch, **options) -> [B] float32`` under ``name``; ``kind`` is one
    of KINDS. A name already taken by another function is refused unless ``replace`` (e.g. a notebook cell run
    again)."""
    if kind not in KINDS:
        raise ValueError(f"register_reward({name!r}): unknown kind {kind!r}; known kinds: {KINDS}")

    def decorator(fn: RewardFn) -> RewardFn:
        if name in _REWARDS and _REWARDS[name] is not fn and not replace:
            raise ValueError(f"register_reward: the name {name!r} is already registered (replace=True replaces it)")
        _REWARDS[name] = fn
        _KIND_OF[name] = kind
        return fn

    return decorator


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(f"urlvr_jax.rewards.{module}")


def list_rewards(kind: str | None = None) -> list[str]:
    """Sorted names of the registered rewards (of one ``kind`` if given)."""
    _load_builtins()
    return sorted(name for name in _REWARDS if kind is None or _KIND_OF[name] == kind)


def reward_kind(name: str) -> str:
    """The taxonomy kind of a registered reward."""
    get_reward(name)
    return _KIND_OF[name]


def get_reward(name: str) -> RewardFn:
    """The reward function registered as ``name``; ValueError listing the known names otherwise."""
    _load_builtins()
    if name not in _REWARDS:
        raise ValueError(f"unknown reward {name!r}; known rewards: {', '.join(sorted(_REWARDS))}")
    return _REWARDS[name]


def compute_rewards(
    spec: RewardSpec, batch: Any, options: Mapping[str, Mapping[str, Any]] | None = None
) -> np.ndarray:
    """[B] float32 rewards: one named reward, or the weighted sum of a {name: weight} dict.

    ``options`` maps a reward name to the keyword options of that reward.
    """
    weights = {spec: 1.0} if isinstance(spec, str) else dict(spec)
    if not weights:
        raise ValueError("compute_rewards: the reward spec is empty")
    options = dict(options or {})
    unused = set(options) - set(weights)
    if unused:
        raise ValueError(f"compute_rewards: options given for rewards not in the spec: {sorted(unused)}")
    total = np.zeros(batch.batch_size, dtype=np.float32)
    for name, weight in weights.items():
        scores = np.asarray(get_reward(name)(batch, **options.get(name, {})), dtype=np.float32)
        if scores.shape != (batch.batch_size,):
            raise ValueError(f"reward {name!r} returned shape {scores.shape}, expected ({batch.batch_size},)")
        total += np.float32(weight) * scores
    return total
