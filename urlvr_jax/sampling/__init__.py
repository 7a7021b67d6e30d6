"""Rollouts: the jitted sampler (N completions per prompt with per-token statistics) and training-time log-probs.

Names are imported lazily (see docs/api.md for each one's contract).
"""

from urlvr_jax._exports import lazy_exports

_EXPORTS = {
    "Sampler": "sampler", "ContinuousSampler": "continuous", "SamplingConfig": "strategies", "Rollout": "rollout", "STAT_NAMES": "rollout",
    "token_stats": "stats", "completion_stats": "logprobs", "completion_logprobs": "logprobs",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
