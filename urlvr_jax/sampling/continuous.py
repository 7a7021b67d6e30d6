"""Continuous batching: a fixed number of decode slots, each refilled with the next waiting rollout when its row stops.

The static :class:`~urlvr_jax.sampling.sampler.Sampler` decodes a batch until its longest row stops, so with
heavy-tailed lengths most of its row-steps are padding. :class:`ContinuousSampler` runs one jitted program:

* The B prompts are prefilled once, into a prompt cache [L, B, Hkv, Dh, P] (P = the prompt bucket) and their last
  logits; nothing of a prompt is recomputed per sample.
* One ``lax.while_loop`` decodes all S slots one step (each slot writes its key/value at its own cache position
  P + t, t = the step within its rollout), then refills every slot whose row stopped (stop token or max length)
  with the next waiting row (prompt-major order): the row's prompt cache is copied into slot columns [0, P), its
  generated columns are masked out, and its prompt's last logits become the slot's next distribution. Shapes are
  static: one compiled program per (batch, bucket, samples, slots), whatever the lengths.
* Once no row waits, the last rows would leave most slots idle: whenever at most half the slots are active, the
  active ones are gathered into a state of half as many slots (down to ``slots // 16``, at least one per batch
  shard) and decoding goes on there, so the drain costs few idle row-steps. Each size is its own ``while_loop``
  in the one program.
* Row r's step-t token is chosen at uniform ``uniforms[r, t]``, drawn before the loop from
  ``fold_in(rng, sequence_ids[r])`` exactly as the static sampler draws them, and its cache layout (prompt at
  [0, P), token t at P + t) is the static sampler's: a rollout's tokens and statistics are those of the static
  sampler for the same sequence id (up to float rounding), whatever shares the slots.
* Tokens and per-token statistics go straight to [B * N, T] buffers in the original row order.
* With a ``mesh``: params as the static sampler, slots and the slot cache over ('data', 'fsdp') (kv-heads over
  'tensor'), the [B * N, T] buffers replicated inside the loop (each step writes S entries) and batch-sharded on
  output. When the batch shards divide the prompts and the slots, each shard's slots take only its own prompts'
  rows, refills and shrinks run per shard (``shard_map``: no cache moves between devices) and a shard halves its
  slots once at most half of them are active and no row waits anywhere; otherwise the whole mesh is one shard.
"""

from __future__ import annotations

import dataclasses
import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from urlvr_jax import sharding as shd
from urlvr_jax.model.config import ModelConfig
from urlvr_jax.model.kv_cache import kv_heads_axis
from urlvr_jax.model.transformer import (KVCache, Params, abstract_params, attention, attention_inputs,
                                        forward_hidden, init_cache, layer_output, logits_from_hidden,
                                        out_major_params, rms_norm, rope_inv_freq, rope_tables, run_layers,
                                        unstack_layers)
from urlvr_jax.sampling.rollout import STAT_NAMES, Rollout
from urlvr_jax.sampling.sampler import Sampler, _is_stop, _Program, draw_uniforms
from urlvr_jax.sampling.stats import scaled_softmax, token_stats
from urlvr_jax.sampling.strategies import SamplingConfig, choose_tokens
from urlvr_jax.utils.xla_options import compiler_options


@flax.struct.dataclass(frozen=True)
class Prompts:
    """The prefilled prompts: what a slot copies when it takes a row of that prompt."""

    k: jax.Array  # [L, B, ...] of P positions, in the slot cache's layout (KVCache)
    v: jax.Array
    key_mask: jax.Array  # [B, P]
    logits: jax.Array  # [B, V] float32: the distribution of the first new token
    positions: jax.Array  # [B] int32: RoPE position of the first new token (the prompt length)


@flax.struct.dataclass(frozen=True)
class Slots:
    """What the decode slots hold. With batch shards, shard i's slots only take rows of its own prompts (rows
    [i * R_i, (i + 1) * R_i), R_i = R / shards), so a refill or a shrink moves no cache between devices."""

    cache: KVCache  # [L, S, ...] of length P + T (``index`` unused: each slot writes at its own position)
    logits: jax.Array  # [S, V] float32
    rows: jax.Array  # [S] int32: the row each slot decodes (R when none)
    steps: jax.Array  # [S] int32: tokens its row has generated so far
    positions: jax.Array  # [S] int32: RoPE position of its next token
    active: jax.Array  # [S] bool: the slot holds a row that has not stopped
    next_row: jax.Array  # [shards] int32: rows of its prompts each batch shard has given a slot so far


@flax.struct.dataclass(frozen=True)
class SlotState:
    slots: Slots
    tokens: jax.Array  # [R, T] int32, rows in the original order
    stats: dict  # name -> [R, T] float32
    lengths: jax.Array  # [R] int32
    finished: jax.Array  # [R] bool
    row_steps: jax.Array  # [] int32: slot-steps decoded (each step decodes every slot of the current size)


def _write_rows(buf, new, at, axis: int, layer=None):
    """``buf`` with ``new`` [S, ...] (size 1 along ``axis``, counted from the end) written at position ``at[s]``
    of slot s. ``buf`` is [S, ...] or, with ``layer`` (a traced index), stacked [L, S, ...] written in that layer.

    One scatter of S vectors in the cache's own layout (a vmapped ``dynamic_update_slice`` here made XLA transpose
    and copy the whole cache at every decode step).
    """
    index = [slice(None)] * buf.ndim
    slot_axis = 0 if layer is None else 1
    if layer is not None:
        index[0] = layer
    index[slot_axis] = jnp.arange(new.shape[0])
    index[buf.ndim + axis] = at
    return buf.at[tuple(index)].set(jnp.squeeze(new, axis).astype(buf.dtype), unique_indices=True)


def decode_step(params: Params, token, positions, write_at, cache: KVCache, *, cfg: ModelConfig):
    """Logits [S, V] of one token per slot, its key/value written at cache position ``write_at[s]`` of slot s.

    The static sampler's decode :func:`~urlvr_jax.model.transformer.forward` with a per-slot write position (its
    cache writes every row at one shared ``index``). The slot attends to the cache columns its ``key_mask`` marks,
    the new one included.
    """
    rope = rope_tables(positions[:, None], rope_inv_freq(cfg), cfg.compute_dtype)
    x = params["embed"].astype(cfg.compute_dtype)[token[:, None]]
    key_mask = cache.key_mask | (jnp.arange(cache.length)[None, :] == write_at[:, None])
    mask = key_mask[:, None, :]  # [S, 1, K]

    def layer(carry, w):
        x, ks, vs, i = carry
        q, k, v = attention_inputs(x, w, rope, cfg)
        (k, v), (k_axis, v_axis) = cache.stored(k, v), cache.position_axes
        if isinstance(ks, tuple):  # per-layer cache, unrolled layers: i is a Python int
            ks = ks[:i] + (_write_rows(ks[i], k, write_at, k_axis),) + ks[i + 1:]
            vs = vs[:i] + (_write_rows(vs[i], v, write_at, v_axis),) + vs[i + 1:]
        else:
            ks, vs = _write_rows(ks, k, write_at, k_axis, layer=i), _write_rows(vs, v, write_at, v_axis, layer=i)
        keys, values = cache.attended(ks[i], vs[i], x.dtype)
        return layer_output(x, attention(q, keys, values, mask, cfg), w, cfg), ks, vs, i + 1

    unrolled = isinstance(params["layers"], (list, tuple))
    first = 0 if unrolled else jnp.zeros((), jnp.int32)
    x, ks, vs, _ = run_layers(layer, (x, cache.k, cache.v, first), params["layers"])
    x = rms_norm(x, params["final_norm"], cfg.rms_norm_eps)
    return logits_from_hidden(params, x[:, -1]), cache.replace(k=ks, v=vs, key_mask=key_mask)


def prefill_prompts(params: Params, prompt_tokens, prompt_mask, *, cfg: ModelConfig) -> Prompts:
    batch, length = prompt_tokens.shape
    hidden, cache = forward_hidden(params, prompt_tokens, token_mask=prompt_mask, cfg=cfg,
                                   cache=init_cache(cfg, batch, length))
    return Prompts(k=cache.k, v=cache.v, key_mask=cache.key_mask, logits=logits_from_hidden(params, hidden[:, -1]),
                   positions=prompt_mask.sum(axis=1).astype(jnp.int32))


def _refill(s: Slots, free, prompts: Prompts, num_samples: int, shard=0) -> Slots:
    """Gives each ``free`` slot the next waiting row (in row order) while rows are left. Runs on one batch shard's
    slots and prompts (all of them without a mesh); ``shard`` is its index, its rows start at ``shard * R_i``."""
    total = prompts.key_mask.shape[0] * num_samples  # the shard's rows
    new_row = s.next_row + jnp.cumsum(free.astype(jnp.int32)) - 1
    refill = free & (new_row < total)
    prompt = jnp.where(refill, new_row, 0) // num_samples

    def copy_prompt(carry):
        """Copies the prompt cache of the first pending slot into its columns [0, P) (in place, that slot only)."""
        cache, pending = carry
        slot = jnp.argmax(pending)
        p = prompt[slot]
        length = prompts.key_mask.shape[1]
        if isinstance(cache.k, tuple):  # per-layer cache (unrolled layers): [S, ...] per layer
            put = lambda buf, src: jax.lax.dynamic_update_slice(
                buf, jax.lax.dynamic_slice_in_dim(src, p, 1, axis=0).astype(buf.dtype), (slot, 0, 0, 0))
            k = tuple(put(c, n) for c, n in zip(cache.k, prompts.k))
            v = tuple(put(c, n) for c, n in zip(cache.v, prompts.v))
        else:  # stacked [L, S, ...]
            put = lambda buf, src: jax.lax.dynamic_update_slice(
                buf, jax.lax.dynamic_slice_in_dim(src, p, 1, axis=1).astype(buf.dtype), (0, slot, 0, 0, 0))
            k, v = put(cache.k, prompts.k), put(cache.v, prompts.v)
        row = jnp.concatenate([prompts.key_mask[p], jnp.zeros((cache.length - length,), bool)])
        key_mask = jax.lax.dynamic_update_slice(cache.key_mask, row[None], (slot, 0))
        return cache.replace(k=k, v=v, key_mask=key_mask), pending.at[slot].set(False)

    return s.replace(
        cache=jax.lax.while_loop(lambda c: jnp.any(c[1]), copy_prompt, (s.cache, refill))[0],
        logits=jnp.where(refill[:, None], prompts.logits[prompt], s.logits),
        rows=jnp.where(refill, shard * total + new_row, s.rows), steps=jnp.where(refill, 0, s.steps),
        positions=jnp.where(refill, prompts.positions[prompt], s.positions),
        active=s.active | refill, next_row=s.next_row + jnp.sum(refill, dtype=jnp.int32))


def _shrink(s: Slots, size: int, shard=0) -> Slots:
    """The first ``size`` slots with the active ones first (the caller knows at most ``size`` are active). Runs
    on one batch shard's slots, as :func:`_refill`."""
    del shard
    order = jnp.argsort(~s.active, stable=True)[:size]
    take = lambda x, axis=0: jnp.take(x, order, axis=axis)
    k, v = s.cache.k, s.cache.v
    k, v = (tuple(map(take, k)), tuple(map(take, v))) if isinstance(k, tuple) else (take(k, 1), take(v, 1))
    return s.replace(cache=s.cache.replace(k=k, v=v, key_mask=take(s.cache.key_mask)), logits=take(s.logits),
                     rows=take(s.rows), steps=take(s.steps), positions=take(s.positions), active=take(s.active))


def _generate(params: Params, prompt_tokens, prompt_mask, sequence_ids, rng, limits, *, cfg: ModelConfig,
              sampling: SamplingConfig, num_samples: int, slots: int, shards: int = 1, layout=None,
              local=lambda fn: fn, constrain=lambda s: s, replicate=lambda x: x, head=lambda w: w):
    """The rollout of the module docstring. ``local(fn)`` runs a refill or a shrink on each of the ``shards`` batch
    shards' slots and prompts (one shard without a mesh: ``fn`` itself); ``head`` places the LM head for decoding."""
    batch, length = prompt_tokens.shape
    total, new = batch * num_samples, sampling.max_new_tokens
    # Layer weights in the compute dtype once (the layers cast them anyway: FSDP then gathers half the bytes per
    # step); the LM head stays float32, placed once for every loop (each loop hoisted its own gathered copy).
    params = {**params, "layers": jax.tree.map(lambda w: w.astype(cfg.compute_dtype), params["layers"]),
              **{name: head(params[name]) for name in ("embed", "lm_head") if name in params}}
    prompts = prefill_prompts(params, prompt_tokens, prompt_mask, cfg=cfg)
    uniforms, limits = replicate(draw_uniforms(rng, sequence_ids, sampling)), replicate(limits)
    cache = init_cache(cfg, slots, length + new)
    if layout is not None:  # unrolled layers (see Sampler.unroll_layers): per-layer weights and caches
        params, cache = jax.lax.optimization_barrier((layout(params), cache.per_layer()))
    refill = local(functools.partial(_refill, num_samples=num_samples))
    empty = Slots(cache=cache, logits=jnp.zeros((slots, prompts.logits.shape[1]), jnp.float32),
                  rows=jnp.full((slots,), total, jnp.int32), steps=jnp.zeros((slots,), jnp.int32),
                  positions=jnp.zeros((slots,), jnp.int32), active=jnp.zeros((slots,), bool),
                  next_row=jnp.zeros((shards,), jnp.int32))
    state = constrain(SlotState(
        slots=refill(empty, jnp.ones((slots,), bool), prompts), tokens=jnp.full((total, new), sampling.pad_id, jnp.int32),
        stats={name: jnp.zeros((total, new), jnp.float32) for name in STAT_NAMES},
        lengths=jnp.zeros((total,), jnp.int32), finished=jnp.zeros((total,), bool), row_steps=jnp.zeros((), jnp.int32)))

    def body(s: SlotState) -> SlotState:
        d = s.slots
        row = jnp.where(d.active, d.rows, total)  # inactive slots write nowhere (out of range: dropped)
        t = jnp.minimum(d.steps, new - 1)
        dist = scaled_softmax(d.logits, sampling.stats_temperature)
        token = jnp.where(d.active, choose_tokens(dist, uniforms[jnp.minimum(row, total - 1), t], sampling),
                          sampling.pad_id)
        stats = token_stats(dist, token)
        write = lambda buf, value: buf.at[row, t].set(value.astype(buf.dtype), mode="drop")
        stop = d.active & _is_stop(token, sampling.stop_token_ids)
        ended = d.active & (stop | (d.steps + 1 >= limits[jnp.minimum(row, total - 1)]))
        logits, cache = decode_step(params, token, d.positions, jnp.minimum(length + t, length + new - 1), d.cache,
                                    cfg=cfg)
        d = d.replace(cache=cache, logits=logits, steps=d.steps + 1, positions=d.positions + 1,
                      active=d.active & ~ended)
        return constrain(SlotState(
            slots=refill(d, ~d.active, prompts), tokens=write(s.tokens, token),
            stats={name: write(s.stats[name], stats[name]) for name in STAT_NAMES},
            lengths=s.lengths.at[row].set(d.steps, mode="drop"), finished=s.finished.at[row].set(stop, mode="drop"),
            row_steps=s.row_steps + d.active.shape[0]))

    waiting = lambda s: jnp.any(s.slots.next_row < total // shards)
    busiest = lambda s: jnp.max(jnp.sum(s.slots.active.reshape(shards, -1), axis=1))  # active slots of a shard
    size, least = slots // shards, max(slots // shards // 16, 1)  # slots per shard
    while True:  # one loop per slot count: size, size // 2, ... down to least per shard
        half = size // 2
        last = half < least
        cond = (lambda s: jnp.any(s.slots.active)) if last else (
            lambda s, half=half: jnp.any(s.slots.active) & (waiting(s) | (busiest(s) > half)))
        state = jax.lax.while_loop(cond, body, state)
        if last:
            break
        state, size = constrain(state.replace(slots=local(functools.partial(_shrink, size=half))(state.slots))), half
    repeat = lambda x: jnp.repeat(x, num_samples, axis=0)
    mask = jnp.arange(new)[None, :] < state.lengths[:, None]
    rollout = Rollout(prompt_tokens=repeat(prompt_tokens), prompt_mask=repeat(prompt_mask), tokens=state.tokens,
                      mask=mask, lengths=state.lengths, finished=state.finished,
                      group_ids=jnp.arange(total, dtype=jnp.int32) // num_samples, **state.stats)
    return rollout, state.row_steps


def _slot_shardings(tree, mesh, layout: str):
    """Shardings of slot and prompt arrays: the leading axis over the batch shards; the k and v of a cache in
    ``layout`` ([L, S, ...], or one layer's [S, ...]) over the batch shards and their kv heads over 'tensor'; the
    logits' vocabulary over 'tensor', as the LM head computes them (replicated, XLA gathered the whole LM head once
    per loop)."""
    def sharding(path, x):
        names = [getattr(key, "name", None) for key in path]
        if not x.ndim:
            return NamedSharding(mesh, PartitionSpec())
        if "k" in names or "v" in names:
            spec = [None] * x.ndim
            spec[x.ndim - 4], spec[x.ndim + kv_heads_axis(layout)] = shd.BATCH, "tensor"
            spec = PartitionSpec(*spec)
        else:
            spec = PartitionSpec(shd.BATCH, "tensor" if "logits" in names else None)
        return NamedSharding(mesh, shd.fit_spec(spec, x.shape, mesh))
    return jax.tree_util.tree_map_with_path(sharding, tree)


def _on_batch_shards(fn, mesh, layout: str):
    """``fn`` (:func:`_refill`, :func:`_shrink`) run by each batch shard on its own slots and prompts under
    ``shard_map``. Partitioned by GSPMD instead, a shrink's gather over the sharded slot axis put every shard's
    gathered slots on every device (the paper config: 30x the rollout's estimated temporaries), and a refill
    all-gathered the prompt cache for each copied slot."""
    def run(*args):
        specs = jax.tree.map(lambda x: x.spec, _slot_shardings(args, mesh, layout))
        shard = lambda *a: fn(*a, shard=jax.lax.axis_index(shd.BATCH))
        return jax.shard_map(shard, mesh=mesh, in_specs=specs, out_specs=specs[0], check_vma=False)(*args)
    return run


@dataclasses.dataclass(frozen=True)
class ContinuousSampler(Sampler):
    """:class:`Sampler` with continuous batching over ``slots`` decode slots (see the module docstring).

    ``generate`` takes the same arguments and returns the same :class:`Rollout`; ``max_rows_per_chunk`` is
    unused (``slots`` bounds the decode state). Compiles one program per (batch, prompt bucket, samples).
    """

    slots: int = 64

    def __post_init__(self):
        if self.slots < 1:
            raise ValueError(f"ContinuousSampler.slots={self.slots} must be >= 1")

    def __hash__(self):
        return hash((super().__hash__(), self.slots))

    def num_slots(self, rows: int) -> int:
        """Slots used for ``rows`` rollouts: ``slots``, at most ``rows``; on a mesh a multiple of its batch
        shards when there are that many rows."""
        slots = min(self.slots, rows)
        if self.mesh is not None:
            shards = self.mesh.shape.get("data", 1) * self.mesh.shape.get("fsdp", 1)
            slots = max(slots // shards, 1) * shards if rows >= shards else slots
        return slots

    def _jitted_continuous(self, batch: int, bucket: int, num_samples: int) -> _Program:
        key = ("continuous", batch, bucket, num_samples)
        if key in self._programs:
            return self._programs[key]
        slots = self.num_slots(batch * num_samples)
        layout = None
        if self.unroll_layers:
            layout = out_major_params if self.decodes_out_major(slots) else unstack_layers
        shards = 1 if self.mesh is None else self.mesh.shape.get("data", 1) * self.mesh.shape.get("fsdp", 1)
        local = shards > 1 and batch % shards == 0 and slots % shards == 0  # else one shard: GSPMD moves the slots
        fn = functools.partial(_generate, cfg=self.model_cfg, sampling=self.sampling, num_samples=num_samples,
                               slots=slots, shards=shards if local else 1, layout=layout)
        if self.mesh is None:
            self._programs[key] = _Program(jax.jit(fn, compiler_options=compiler_options()))
            return self._programs[key]
        mesh, rows, layout = self.mesh, batch * num_samples, self.model_cfg.kv_layout
        prompt = shd.batch_sharding(mesh, (batch, bucket))
        row = shd.batch_sharding(mesh, (rows,))
        replicated = NamedSharding(mesh, PartitionSpec())

        def constrain(s: SlotState) -> SlotState:  # the [R, T] buffers replicated: each step writes S entries
            rest = jax.tree.map(lambda _: replicated, s.replace(slots=None))
            return jax.lax.with_sharding_constraint(s, rest.replace(slots=_slot_shardings(s.slots, mesh, layout)))

        if local:
            fn = functools.partial(fn, local=functools.partial(_on_batch_shards, mesh=mesh, layout=layout))
        vocab = lambda w: NamedSharding(mesh, shd.fit_spec(  # embed [V, D] or lm_head [D, V]: vocab over 'tensor'
            PartitionSpec("tensor") if w.shape[0] == self.cfg.vocab_size else PartitionSpec(None, "tensor"), w.shape,
            mesh))
        fn = functools.partial(fn, head=lambda w: jax.lax.with_sharding_constraint(w, vocab(w)))
        fn = functools.partial(fn, constrain=constrain,
                               replicate=lambda x: jax.lax.with_sharding_constraint(x, replicated))
        sds = jax.ShapeDtypeStruct
        abstract = jax.eval_shape(fn, abstract_params(self.cfg), sds((batch, bucket), jnp.int32),
                                  sds((batch, bucket), bool), sds((rows,), jnp.uint32),
                                  sds((), jax.random.key(0).dtype), sds((rows,), jnp.int32))
        out = (shd.tree_batch_shardings(abstract[0], mesh), replicated)
        params = shd.param_shardings(abstract_params(self.cfg), mesh)
        self._programs[key] = _Program(jax.jit(fn, in_shardings=(params, prompt, prompt, row, replicated, row),
                                               out_shardings=out, compiler_options=compiler_options(mesh)))
        return self._programs[key]

    def compile_counts(self) -> tuple[int, int]:
        """Number of compiled programs (prefill and decode are one program here: counted in both)."""
        count = sum(p.count for k, p in self._programs.items() if k[0] == "continuous")
        return count, count

    def generate_with_steps(self, params: Params, prompt_tokens, prompt_mask, rng: jax.Array, num_samples: int = 1,
                            sequence_ids=None, max_lengths=None) -> tuple[Rollout, jax.Array]:
        """(:meth:`generate`'s rollout, the row-steps decoded: a replicated int32 scalar, the sum over decode
        steps of the slots they decoded); ``rollout.lengths.sum() / row_steps`` is the share that made a token."""
        tokens, mask, ids, limits = self._bucketed(prompt_tokens, prompt_mask, num_samples, sequence_ids, max_lengths)
        if self.mesh is not None:
            params = jax.device_put(params, shd.param_shardings(params, self.mesh))
        program = self._jitted_continuous(tokens.shape[0], tokens.shape[1], num_samples)
        rollout, steps = program(params, self._place(tokens), self._place(mask), self._place(ids),
                                 self._place_key(rng), self._place(limits))
        return rollout, steps

    def generate(self, params: Params, prompt_tokens, prompt_mask, rng: jax.Array, num_samples: int = 1,
                 sequence_ids=None, max_lengths=None) -> Rollout:
        """As :meth:`Sampler.generate`, with continuous batching."""
        return self.generate_with_steps(params, prompt_tokens, prompt_mask, rng, num_samples, sequence_ids,
                                        max_lengths)[0]
