"""The rollout batch: what the sampler returns and what rewards and training consume.

Shapes (B = number of rollouts, P = padded prompt length, T = max new tokens):

* ``prompt_tokens`` [B, P] int32, left-padded; ``prompt_mask`` [B, P] bool (True on real tokens).
* ``tokens`` [B, T] int32, the completion, right-padded with the pad id after it stops.
* ``mask`` [B, T] bool, True on generated tokens, the stop token included.
* ``lengths`` [B] int32, the number of True entries of ``mask`` per row.
* ``finished`` [B] bool, True if the row stopped on EOS / a stop token (False: truncated at T).
* Per-token statistics [B, T] float32, all of the temperature-scaled next-token distribution
    p_t = softmax(z_t / tau) at the position that produced ``tokens[:, t]``:
    ``logprobs`` log p_t(y_t); ``entropy`` H(p_t); ``self_certainty`` logsumexp(z/tau) - mean(z/tau)
    (= KL(U || p_t) + log V); ``margin`` top-1 minus top-2 probability. Zero where ``mask`` is False.
* ``group_ids`` [B] int32, the prompt index each rollout belongs to (rollouts of one prompt share it).
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

STAT_NAMES = ("logprobs", "entropy", "self_certainty", "margin")


@flax.struct.dataclass(frozen=True)
class Rollout:
    prompt_tokens: jax.Array
    prompt_mask: jax.Array
    tokens: jax.Array
    mask: jax.Array
    lengths: jax.Array
    finished: jax.Array
    logprobs: jax.Array
    entropy: jax.Array
    self_certainty: jax.Array
    margin: jax.Array
    group_ids: jax.Array

    @property
    def batch_size(self) -> int:
        return self.tokens.shape[0]

    def stats(self) -> dict[str, jax.Array]:
        """The per-token statistics by name."""
        return {name: getattr(self, name) for name in STAT_NAMES}

    def take(self, index) -> "Rollout":
        """Rows ``index`` of every field (a slice, an index array or a boolean mask)."""
        return jax.tree.map(lambda x: x[index], self)


def concatenate(rollouts: list[Rollout]) -> Rollout:
    """Stacks several rollout batches along the batch axis (same P and T)."""
    return jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=0), *rollouts)
