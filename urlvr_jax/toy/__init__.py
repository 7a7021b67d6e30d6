"""The toy task's priors: a tiny transformer warm-started to a partial, imperfect prior, and what kinds of problems
that prior holds.

:mod:`~urlvr_jax.toy.warm_start` (``make_prior``: the supervised warm start, also ``urlvr warm-start --out DIR``;
``arm_config``: an RL arm's config from a prior) and :mod:`~urlvr_jax.toy.prior_kinds` (``python -m
urlvr_jax.toy.prior_kinds --priors DIR ...``: aligned, misaligned and clueless problems). The toy's character
tokenizer is :mod:`urlvr_jax.tasks.char_tokenizer`. Names are imported lazily (see docs/api.md).
"""

from urlvr_jax._exports import lazy_exports

_EXPORTS = {"make_prior": "warm_start", "WarmStartConfig": "warm_start"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
