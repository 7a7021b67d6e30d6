"""The training forward of GRPO groups: every prompt runs once for the G completions that continue it.

GRPO samples G rollouts per prompt, and the update's forward needs each completion's hidden states given its
prompt. Under causal attention a prompt's hidden states do not depend on what follows, so they are the same for the
G rows of a group: :func:`forward_hidden_grouped` computes them once per group, and each completion attends to its
group's prompt keys and values (broadcast) followed by its own. The result is the per-row forward's (the same
positions, masks and key order), while the per-token work on prompt positions (norms, projections, MLP, their
backward) drops by a factor G; the broadcast's transpose sums the group's gradients into the shared prompt.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from urlvr_jax.model.attention_kernels import no_cache_mask
from urlvr_jax.model.config import ModelConfig
from urlvr_jax.model.transformer import (Params, attention, attention_inputs, layer_output, positions_from_mask,
                                         rms_norm, rope_inv_freq, rope_tables, run_layers)


def forward_hidden_grouped(params: Params, prompt_tokens: jax.Array, prompt_mask: jax.Array, tokens: jax.Array,
                           mask: jax.Array, *, cfg: ModelConfig, remat: bool = False) -> tuple[jax.Array, jax.Array]:
    """Final normed hidden states of prompts [P, Lp, D] and of their completions [P * G, T, D].

    Args:
      prompt_tokens, prompt_mask: [P, Lp] left-padded prompts, one per group.
      tokens, mask: [P * G, T] right-padded completions; rows [p * G, (p + 1) * G) continue prompt p.
      remat: rematerialise each layer in the backward pass.
    Equals :func:`urlvr_jax.model.transformer.forward_hidden` of each row's prompt + completion, split after the
    prompt (to float rounding).
    """
    P, Lp = prompt_tokens.shape
    B, T = tokens.shape
    if B % P:
        raise ValueError(f"forward_hidden_grouped: {B} completion rows are not a whole number of groups of the "
                         f"{P} prompts")
    group = lambda x: jnp.repeat(x, B // P, axis=0)  # a prompt's array for each of its completions
    prompt_len = jnp.sum(prompt_mask, axis=-1, dtype=jnp.int32)
    completion_pos = jnp.maximum(group(prompt_len)[:, None] + jnp.cumsum(mask, axis=-1, dtype=jnp.int32) - 1, 0)
    inv_freq = rope_inv_freq(cfg)
    rope_p = rope_tables(positions_from_mask(prompt_mask), inv_freq, cfg.compute_dtype, Lp)
    rope_c = rope_tables(completion_pos, inv_freq, cfg.compute_dtype, Lp + T)
    mask_p = no_cache_mask(prompt_mask, Lp, cfg)  # dense for the reference: [P, Lp, Lp]
    # completions: their group's prompt keys, then their own causally ([B, T, Lp + T] for the reference)
    mask_c = no_cache_mask(jnp.concatenate([group(prompt_mask), mask], axis=-1), T, cfg)

    def layer(carry, w):
        xp, xc = carry
        qp, kp, vp = attention_inputs(xp, w, rope_p, cfg)
        qc, kc, vc = attention_inputs(xc, w, rope_c, cfg)
        keys = jnp.concatenate([group(kp), kc], axis=-1)  # head-major keys: slots are the last axis
        values = jnp.concatenate([group(vp), vc], axis=-2)
        return (layer_output(xp, attention(qp, kp, vp, mask_p, cfg), w, cfg),
                layer_output(xc, attention(qc, keys, values, mask_c, cfg), w, cfg))

    embed = params["embed"].astype(cfg.compute_dtype)
    xp, xc = run_layers(layer, (embed[prompt_tokens], embed[tokens]), params["layers"], remat)
    return tuple(rms_norm(x, params["final_norm"], cfg.rms_norm_eps) for x in (xp, xc))
