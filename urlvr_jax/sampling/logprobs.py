"""Per-token log-probs (and statistics) of completions under a params pytree, for training.

The same :func:`urlvr_jax.sampling.stats.token_stats` as the sampler, at the sampling temperature, in
float32. The LM head runs over the sequence in chunks of ``chunk_size`` positions, so [B, T, V] logits
never exist at once (``chunk_size=None``: one chunk). With ``prompt_group=G`` the G consecutive rows that share a
prompt run it once (:func:`urlvr_jax.model.shared_prompt.forward_hidden_grouped`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from urlvr_jax.model.config import ModelConfig
from urlvr_jax.model.shared_prompt import forward_hidden_grouped
from urlvr_jax.model.transformer import Params, forward_hidden, logits_from_hidden
from urlvr_jax.sampling.stats import token_stats


def completion_stats(params: Params, prompt_tokens: jax.Array, prompt_mask: jax.Array, tokens: jax.Array,
                     mask: jax.Array, *, cfg: ModelConfig, temperature: float = 1.0, chunk_size: int | None = None,
                     remat: bool = False, prompt_group: int = 1) -> dict[str, jax.Array]:
    """Statistics [B, T] of each completion token given its prompt (zero where ``mask`` is False).

    Args:
      prompt_tokens, prompt_mask: [B, P] left-padded prompts.
      tokens, mask: [B, T] right-padded completions.
      prompt_group: G > 1 promises that rows [i * G, (i + 1) * G) share one prompt (GRPO's groups, as the sampler
        orders them); each prompt then runs once. The result is the same; a batch that breaks the promise gets
        wrong values, not an error. B must be a multiple of G.
    Returns the dict of :func:`token_stats` (``logprobs``, ``entropy``, ``self_certainty``, ``margin``).
    """
    B, P, T = tokens.shape[0], prompt_tokens.shape[1], tokens.shape[1]
    if prompt_group < 1 or B % prompt_group:
        raise ValueError(f"completion_stats: prompt_group={prompt_group} must be >= 1 and divide the {B} rows")
    if prompt_group > 1:
        prompt_hidden, hidden = forward_hidden_grouped(params, prompt_tokens[::prompt_group],
                                                       prompt_mask[::prompt_group], tokens, mask, cfg=cfg, remat=remat)
        last = jnp.repeat(prompt_hidden[:, -1:], prompt_group, axis=0)  # the prompt's last position predicts token 0
        hidden = jnp.concatenate([last, hidden[:, :T - 1]], axis=1)
    else:
        full_tokens = jnp.concatenate([prompt_tokens, tokens], axis=1)
        full_mask = jnp.concatenate([prompt_mask, mask], axis=1)
        hidden, _ = forward_hidden(params, full_tokens, token_mask=full_mask, cfg=cfg, remat=remat)
        hidden = hidden[:, P - 1:P + T - 1]  # position P - 1 + t predicts completion token t

    def stats_of(h, y):
        return token_stats(logits_from_hidden(params, h), y, temperature)

    chunk = T if not chunk_size or chunk_size >= T else chunk_size
    if chunk == T:
        stats = stats_of(hidden, tokens)
    else:
        pad = -T % chunk
        h = jnp.pad(hidden, ((0, 0), (0, pad), (0, 0)))
        y = jnp.pad(tokens, ((0, 0), (0, pad)))
        n = (T + pad) // chunk
        split = lambda x: jnp.moveaxis(x.reshape(x.shape[0], n, chunk, *x.shape[2:]), 1, 0)
        stats = jax.lax.map(lambda args: stats_of(*args), (split(h), split(y)))
        stats = {k: jnp.moveaxis(v, 0, 1).reshape(v.shape[1], -1)[:, :T] for k, v in stats.items()}
    return {k: jnp.where(mask, v, 0.0) for k, v in stats.items()}


def completion_logprobs(params: Params, prompt_tokens, prompt_mask, tokens, mask, *, cfg: ModelConfig,
                        temperature: float = 1.0, chunk_size: int | None = None, remat: bool = False,
                        prompt_group: int = 1) -> jax.Array:
    """Log-probs [B, T] of the completion tokens (see :func:`completion_stats`)."""
    return completion_stats(params, prompt_tokens, prompt_mask, tokens, mask, cfg=cfg, temperature=temperature,
                            chunk_size=chunk_size, remat=remat, prompt_group=prompt_group)["logprobs"]
