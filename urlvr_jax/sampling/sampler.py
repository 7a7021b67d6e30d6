"""KV-cache sampling as two jitted pure functions: one prefill, then a ``lax.while_loop`` decode.

* The B prompts are left-padded to a length bucket (a run compiles once per bucket) and prefilled once;
  the cache is then repeated N times, so N samples per prompt never recompute the prompt.
* The decode state (cache, output buffers, per-token statistics) is donated, so XLA updates it in place.
* Row r draws one uniform per step, all of them in the prefill from ``fold_in(rng, sequence_ids[r])``: a
  rollout depends on its sequence id, not on which other rollouts share the batch, and the decode loop runs
  no PRNG (XLA:CPU lowers threefry to loops of many tiny ops, a large share of a small model's decode step).
* Per-token statistics (:mod:`urlvr_jax.sampling.stats`) are computed inside the loop from the logits of
  each step; full logits are never kept.
* With a ``mesh``, both functions are jitted with explicit shardings: params by
  :func:`urlvr_jax.sharding.param_shardings`, the KV cache by :func:`~urlvr_jax.sharding.cache_shardings`
  (batch over ('data', 'fsdp'), kv-heads over 'tensor'), every other batch array over ('data', 'fsdp').
* With ``max_rows_per_chunk`` > 0 the rows (prompts x samples) are generated in equal chunks of at most that many
  rows, one after the other, so the KV cache and decode state are bounded whatever the batch; each row's tokens
  depend on its prompt and sequence id only, so chunking changes no row (beyond float rounding of batched math).
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
from urlvr_jax.model.kv_cache import resolve_kv_layout
from urlvr_jax.model.transformer import (KVCache, Params, abstract_params, forward, forward_hidden, init_cache,
                                        logits_from_hidden, out_major_params,
                                        unstack_layers)
from urlvr_jax.sampling.rollout import STAT_NAMES, Rollout
from urlvr_jax.sampling.stats import scaled_softmax, token_stats
from urlvr_jax.sampling.strategies import SamplingConfig, choose_tokens
from urlvr_jax.utils.xla_options import compiler_options
from urlvr_jax.utils import multihost

# Powers of two and the midpoints between them: a prompt of more than 16 tokens pads to less than 1.5x its length
# (2x with powers of two alone), for at most two compiled programs per doubling of the prompt length.
DEFAULT_BUCKETS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192)


@flax.struct.dataclass(frozen=True)
class DecodeState:
    cache: KVCache
    logits: jax.Array  # [B, V] float32, the distribution of the next token
    uniforms: jax.Array  # [B, T] float32 in [0, 1): row b's draw for each step
    positions: jax.Array  # [B] int32, RoPE position of the next token
    tokens: jax.Array  # [B, T]
    stats: dict  # name -> [B, T] float32
    lengths: jax.Array  # [B] int32: tokens generated so far (the stop token included)
    limits: jax.Array  # [B] int32: row b stops (truncated) after limits[b] <= T tokens
    done: jax.Array  # [B] bool
    finished: jax.Array  # [B] bool: stopped on a stop token
    step: jax.Array  # [] int32


def bucket_length(length: int, buckets: tuple[int, ...]) -> int:
    """The smallest bucket holding ``length`` tokens."""
    for b in buckets:
        if length <= b:
            return b
    raise ValueError(f"prompt length {length} exceeds the largest prompt bucket {buckets[-1]}; "
                     "raise max_prompt_len / add a larger bucket, or truncate the prompts")


def draw_uniforms(rng, sequence_ids, sampling: SamplingConfig) -> jax.Array:
    """[rows, T] float32: row r's uniform for each step, from ``fold_in(rng, sequence_ids[r])`` (zeros if greedy)."""
    shape = (sequence_ids.shape[0], sampling.max_new_tokens)
    if sampling.greedy:
        return jnp.zeros(shape, jnp.float32)
    return jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(rng, i), shape[1:]))(sequence_ids)


def _prefill(params: Params, prompt_tokens, prompt_mask, sequence_ids, rng, limits, *, cfg: ModelConfig,
             sampling: SamplingConfig, num_samples: int) -> DecodeState:
    batch, length = prompt_tokens.shape
    cache = init_cache(cfg, batch, length + sampling.max_new_tokens)
    hidden, cache = forward_hidden(params, prompt_tokens, token_mask=prompt_mask, cfg=cfg, cache=cache)
    logits = logits_from_hidden(params, hidden[:, -1])  # the LM head on the last position only
    repeat = lambda x: jnp.repeat(x, num_samples, axis=0)
    cache = cache.replace(k=jnp.repeat(cache.k, num_samples, axis=1), v=jnp.repeat(cache.v, num_samples, axis=1),
                          key_mask=repeat(cache.key_mask))
    rows = batch * num_samples
    shape = (rows, sampling.max_new_tokens)
    return DecodeState(
        cache=cache,
        logits=repeat(logits),
        uniforms=draw_uniforms(rng, sequence_ids, sampling),
        positions=repeat(prompt_mask.sum(axis=1).astype(jnp.int32)),
        tokens=jnp.full(shape, sampling.pad_id, jnp.int32),
        stats={name: jnp.zeros(shape, jnp.float32) for name in STAT_NAMES},
        lengths=jnp.zeros((rows,), jnp.int32),
        limits=limits.astype(jnp.int32),
        done=jnp.zeros((rows,), bool),
        finished=jnp.zeros((rows,), bool),
        step=jnp.zeros((), jnp.int32),
    )


def _is_stop(token: jax.Array, stop_ids: tuple[int, ...]) -> jax.Array:
    stop = jnp.zeros(token.shape, bool)
    for i in stop_ids:
        stop = stop | (token == i)
    return stop


def _decode(params: Params, state: DecodeState, *, cfg: ModelConfig, sampling: SamplingConfig,
            unroll_layers: bool = False, out_major: bool = False) -> DecodeState:
    if unroll_layers:  # per-layer weights and caches instead of per-step copies out of the stacked arrays;
        # the barrier materialises them once per call, else XLA sinks the slices into the loop (a copy per step)
        layout = out_major_params if out_major else unstack_layers
        params, cache = jax.lax.optimization_barrier((layout(params), state.cache.per_layer()))
        state = state.replace(cache=cache)

    def cond(s: DecodeState):
        return (s.step < sampling.max_new_tokens) & ~jnp.all(s.done)

    def body(s: DecodeState):
        active = ~s.done
        dist = scaled_softmax(s.logits, sampling.stats_temperature)  # one exp pass: statistics and sampling
        token = jnp.where(active, choose_tokens(dist, s.uniforms[:, s.step], sampling), sampling.pad_id)
        stats = token_stats(dist, token)
        write = lambda buf, value: jax.lax.dynamic_update_slice(
            buf, jnp.where(active, value, jnp.zeros_like(value)).astype(buf.dtype)[:, None], (0, s.step))
        stopped = active & _is_stop(token, sampling.stop_token_ids)
        lengths = s.lengths + active.astype(jnp.int32)
        logits, cache = forward(params, token[:, None], s.positions[:, None], active[:, None], cfg=cfg,
                                cache=s.cache)
        return DecodeState(
            cache=cache, logits=logits[:, -1], uniforms=s.uniforms, positions=s.positions + 1,
            tokens=write(s.tokens, token),
            stats={name: write(s.stats[name], stats[name]) for name in STAT_NAMES},
            lengths=lengths, limits=s.limits,
            done=s.done | stopped | (lengths >= s.limits), finished=s.finished | stopped, step=s.step + 1)

    state = jax.lax.while_loop(cond, body, state)
    return state.replace(cache=state.cache.stacked()) if unroll_layers else state


def _rollout(state: DecodeState, prompt_tokens, prompt_mask, *, num_samples: int) -> Rollout:
    repeat = lambda x: jnp.repeat(x, num_samples, axis=0)
    mask = jnp.arange(state.tokens.shape[1])[None, :] < state.lengths[:, None]
    return Rollout(prompt_tokens=repeat(prompt_tokens), prompt_mask=repeat(prompt_mask), tokens=state.tokens,
                   mask=mask, lengths=state.lengths, finished=state.finished,
                   group_ids=repeat(jnp.arange(prompt_tokens.shape[0], dtype=jnp.int32)), **state.stats)


def _join(parts: list[Rollout], num_samples: int) -> Rollout:
    """The chunks' rollouts as one, rows in chunk order; group ids renumbered over the whole batch."""
    joined = jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=0), *parts)
    rows = joined.tokens.shape[0]
    return joined.replace(group_ids=jnp.arange(rows, dtype=jnp.int32) // num_samples)


def _largest_divisor(n: int, limit: int) -> int:
    """The largest divisor of ``n`` that is at most ``limit`` (1 when ``limit`` < 1)."""
    return max((d for d in range(1, min(n, limit) + 1) if n % d == 0), default=1)


class _Program:
    """A jitted function compiled ahead of time once per argument signature (shapes, dtypes, shardings).

    Counting those compilations is exact (``count``), unlike the size of jit's dispatch cache.
    """

    def __init__(self, fn):
        self.fn = fn
        self.compiled = {}

    def __call__(self, *args):
        leaves, treedef = jax.tree.flatten(args)
        signature = (treedef, tuple((np.shape(x), np.result_type(x) if not hasattr(x, "dtype") else x.dtype,
                                     getattr(x, "sharding", None)) for x in leaves))
        if signature not in self.compiled:
            self.compiled[signature] = self.fn.lower(*args).compile()
        return self.compiled[signature](*args)

    @property
    def count(self) -> int:
        return len(self.compiled)


@dataclasses.dataclass(frozen=True)
class Sampler:
    """Samples rollouts from a params pytree of ``cfg``; on ``mesh`` when given (see the module docstring).

    Compiles one prefill and one decode per (batch size, prompt bucket, samples per prompt).
    """

    cfg: ModelConfig
    sampling: SamplingConfig
    mesh: jax.sharding.Mesh | None = None
    buckets: tuple[int, ...] = DEFAULT_BUCKETS
    unroll_layers: bool = False  # decode with the layers unrolled: faster bandwidth-bound decoding, longer compile
    # unrolled decoding of at most this many rows multiplies out-major weights (model.transformer.OutMajor);
    # None: 32 on CPU, where that is faster at few rows, else 0 (never)
    out_major_rows: int | None = None
    # > 0: generate at most this many rows (prompts x samples) at once, in equal chunks (see ``chunk_shape``)
    max_rows_per_chunk: int = 0

    @functools.cached_property
    def model_cfg(self) -> ModelConfig:
        """``cfg`` with its ``kv_layout`` resolved for the mesh's devices (the default backend's without a mesh):
        plan mode's compile-only TPU devices get the TPU layout on a CPU host."""
        platform = jax.default_backend() if self.mesh is None else self.mesh.devices.flat[0].platform
        return dataclasses.replace(self.cfg, kv_layout=resolve_kv_layout(self.cfg.kv_layout, platform))

    @functools.cached_property
    def _programs(self) -> dict:
        return {}

    @functools.cached_property
    def _joins(self) -> dict:
        return {}

    def _jitted(self, batch: int, bucket: int, num_samples: int):
        """(prefill, decode, to_rollout) for one input shape, jitted with shardings when there is a mesh."""
        key = (batch, bucket, num_samples)
        if key not in self._programs:
            kwargs = dict(cfg=self.model_cfg, sampling=self.sampling)
            prefill = functools.partial(_prefill, num_samples=num_samples, **kwargs)
            decode = functools.partial(_decode, unroll_layers=self.unroll_layers,
                                       out_major=self.decodes_out_major(batch * num_samples), **kwargs)
            to_rollout = functools.partial(_rollout, num_samples=num_samples)
            if self.mesh is None:
                opts = compiler_options()
                jits = (jax.jit(prefill, compiler_options=opts),
                        jax.jit(decode, donate_argnums=(1,), compiler_options=opts), jax.jit(to_rollout))
            else:
                jits = self._sharded_jits(prefill, decode, to_rollout, batch, bucket, num_samples)
            self._programs[key] = tuple(_Program(fn) for fn in jits)
        return self._programs[key]

    def decodes_out_major(self, rows: int) -> bool:
        """Whether decoding ``rows`` rows multiplies out-major weights (see ``out_major_rows``)."""
        max_rows = self.out_major_rows
        if max_rows is None:
            max_rows = 32 if jax.default_backend() == "cpu" else 0
        return self.unroll_layers and rows <= max_rows

    def _sharded_jits(self, prefill, decode, to_rollout, batch: int, bucket: int, num_samples: int):
        mesh = self.mesh
        params = shd.param_shardings(abstract_params(self.cfg), mesh)
        prompt = shd.batch_sharding(mesh, (batch, bucket))
        abstract_state = jax.eval_shape(
            prefill, abstract_params(self.cfg), jax.ShapeDtypeStruct((batch, bucket), jnp.int32),
            jax.ShapeDtypeStruct((batch, bucket), bool), jax.ShapeDtypeStruct((batch * num_samples,), jnp.uint32),
            jax.ShapeDtypeStruct((), jax.random.key(0).dtype), jax.ShapeDtypeStruct((batch * num_samples,), jnp.int32))
        state = shd.tree_batch_shardings(abstract_state, mesh)
        state = state.replace(cache=shd.cache_shardings(abstract_state.cache, mesh))
        abstract_rollout = jax.eval_shape(to_rollout, abstract_state, jax.ShapeDtypeStruct((batch, bucket), jnp.int32),
                                          jax.ShapeDtypeStruct((batch, bucket), bool))
        replicated = NamedSharding(mesh, PartitionSpec())
        opts = compiler_options(mesh)
        rows = shd.batch_sharding(mesh, (batch * num_samples,))
        return (
            jax.jit(prefill, out_shardings=state, in_shardings=(params, prompt, prompt, rows, replicated, rows),
                compiler_options=opts),
            jax.jit(decode, in_shardings=(params, state), out_shardings=state, donate_argnums=(1,),
                    compiler_options=opts),
            jax.jit(to_rollout, in_shardings=(state, prompt, prompt),
                    out_shardings=shd.tree_batch_shardings(abstract_rollout, mesh)),
        )

    def chunk_shape(self, batch: int, num_samples: int) -> tuple[int, int]:
        """(prompts, samples per prompt) of one chunk of ``batch`` prompts x ``num_samples`` samples.

        Whole prompts while ``num_samples`` fits in ``max_rows_per_chunk`` (the largest divisor of ``batch`` that
        fits, so every chunk has one shape and one compiled program), else one prompt and the largest divisor of
        ``num_samples`` that fits. 0 or a limit of at least ``batch * num_samples``: everything at once.
        """
        limit = self.max_rows_per_chunk
        if limit < 0:
            raise ValueError(f"max_rows_per_chunk={limit} must be >= 0 (0: all rows at once)")
        if limit == 0 or batch * num_samples <= limit:
            return batch, num_samples
        if num_samples <= limit:
            return _largest_divisor(batch, limit // num_samples), num_samples
        return 1, _largest_divisor(num_samples, limit)

    def compile_counts(self) -> tuple[int, int]:
        """Number of compiled (prefill, decode) programs so far."""
        return tuple(sum(fns[i].count for fns in self._programs.values()) for i in range(2))

    def __hash__(self):
        return hash((self.cfg, self.sampling, self.buckets, id(self.mesh)))

    def prepare(self, prompt_tokens, prompt_mask, rng: jax.Array, num_samples: int = 1, sequence_ids=None,
                max_lengths=None):
        """Checks and buckets the prompts: (programs, (tokens, mask, sequence ids, rng, max lengths)) ready for
        prefill of the whole batch at once."""
        tokens, mask, ids, limits = self._bucketed(prompt_tokens, prompt_mask, num_samples, sequence_ids, max_lengths)
        inputs = (self._place(tokens), self._place(mask), self._place(ids), self._place_key(rng), self._place(limits))
        return self._jitted(tokens.shape[0], tokens.shape[1], num_samples), inputs

    def _bucketed(self, prompt_tokens, prompt_mask, num_samples: int, sequence_ids, max_lengths=None):
        """Checked host arrays: prompts padded to their bucket [B, bucket], sequence ids and max lengths
        [B * num_samples]."""
        prompt_tokens, prompt_mask = np.asarray(prompt_tokens, np.int32), np.asarray(prompt_mask, bool)
        if prompt_tokens.ndim != 2 or prompt_tokens.shape != prompt_mask.shape:
            raise ValueError(f"prompt_tokens {prompt_tokens.shape} and prompt_mask {prompt_mask.shape} "
                             "must both be [batch, length]")
        if num_samples < 1:
            raise ValueError(f"num_samples={num_samples} must be >= 1")
        empty = np.flatnonzero(~prompt_mask.any(axis=1))
        if empty.size:
            raise ValueError(f"prompt rows {empty.tolist()} are empty; every prompt needs at least one token "
                             "(e.g. the BOS token)")
        if (np.diff(prompt_mask.astype(np.int8), axis=1) < 0).any():
            raise ValueError("prompts must be left-padded: a row's mask goes from False to True only")
        batch, length = prompt_tokens.shape
        bucket = bucket_length(int(prompt_mask.sum(axis=1).max()), self.buckets)
        if bucket + self.sampling.max_new_tokens > self.cfg.max_position_embeddings:
            raise ValueError(f"prompt bucket {bucket} + max_new_tokens {self.sampling.max_new_tokens} exceeds the "
                             f"model's max_position_embeddings {self.cfg.max_position_embeddings}")
        tokens = np.full((batch, bucket), self.sampling.pad_id, np.int32)
        mask = np.zeros((batch, bucket), bool)
        keep = min(length, bucket)
        tokens[:, -keep:], mask[:, -keep:] = prompt_tokens[:, -keep:], prompt_mask[:, -keep:]
        rows = batch * num_samples
        ids = np.arange(rows) if sequence_ids is None else np.asarray(sequence_ids)
        if ids.shape != (rows,):
            raise ValueError(f"sequence_ids has shape {ids.shape}, expected ({rows},) = batch * num_samples")
        new = self.sampling.max_new_tokens
        limits = np.full(rows, new) if max_lengths is None else np.asarray(max_lengths)
        if limits.shape != (rows,) or not ((limits >= 1) & (limits <= new)).all():
            raise ValueError(f"max_lengths must be [{rows}] = batch * num_samples ints in [1, max_new_tokens={new}], "
                             f"got shape {limits.shape}, range [{limits.min(initial=0)}, {limits.max(initial=0)}]")
        return tokens, mask, ids.astype(np.uint32), limits.astype(np.int32)

    def generate(self, params: Params, prompt_tokens, prompt_mask, rng: jax.Array, num_samples: int = 1,
                 sequence_ids=None, max_lengths=None) -> Rollout:
        """Samples ``num_samples`` completions of each left-padded prompt.

        Args:
          prompt_tokens, prompt_mask: [B, P] left-padded ids and mask (numpy or jax); every row needs a token.
          rng: a PRNG key; row r draws its uniforms from ``fold_in(rng, sequence_ids[r])``.
          sequence_ids: [B * num_samples] ints naming each rollout (default ``arange``); give global ids to make
            a rollout independent of batch composition. Rows are prompt-major: row b * N + j is sample j of
            prompt b, and ``group_ids`` is b.
          max_lengths: [B * num_samples] ints in [1, max_new_tokens] (default all max_new_tokens): row r stops
            after ``max_lengths[r]`` tokens, as truncated (not ``finished``) unless its last token is a stop token.
        Returns a :class:`Rollout` with B * num_samples rows; the prompts in it are padded to their bucket.
        Raises ValueError for empty or right-padded prompts, or prompts longer than the largest bucket or
        than ``max_position_embeddings - max_new_tokens``.
        """
        tokens, mask, ids, limits = self._bucketed(prompt_tokens, prompt_mask, num_samples, sequence_ids, max_lengths)
        if self.mesh is not None:
            params = jax.device_put(params, shd.param_shardings(params, self.mesh))
        rng = self._place_key(rng)
        batch, bucket = tokens.shape
        prompts, samples = self.chunk_shape(batch, num_samples)
        prefill, decode, to_rollout = self._jitted(prompts, bucket, samples)
        parts = []
        for first in range(0, batch, prompts):
            chunk = self._place(tokens[first:first + prompts]), self._place(mask[first:first + prompts])
            for sample in range(0, num_samples, samples):  # one pass unless a chunk holds part of a prompt's samples
                rows = np.arange(first, first + prompts)[:, None] * num_samples + np.arange(sample, sample + samples)
                rows = rows.ravel()
                state = decode(params, prefill(params, *chunk, self._place(ids[rows]), rng, self._place(limits[rows])))
                parts.append(to_rollout(state, *chunk))
                del state  # the chunk's cache goes before the next chunk's prefill
        return parts[0] if len(parts) == 1 else self._joined(parts, num_samples)

    def _joined(self, parts: list[Rollout], num_samples: int) -> Rollout:
        """:func:`_join` of the chunks, jitted once per shape (batch-sharded like an unchunked rollout)."""
        key = (num_samples, len(parts), parts[0].tokens.shape, parts[0].prompt_tokens.shape)
        if key not in self._joins:
            join = functools.partial(_join, num_samples=num_samples)
            out = None if self.mesh is None else shd.tree_batch_shardings(jax.eval_shape(join, parts), self.mesh)
            self._joins[key] = jax.jit(join, out_shardings=out)
        return self._joins[key](parts)

    def _place(self, x: np.ndarray) -> jax.Array:
        if self.mesh is None:
            return jnp.asarray(x)
        return jax.device_put(x, shd.batch_sharding(self.mesh, x.shape))

    def _place_key(self, rng: jax.Array) -> jax.Array:
        if self.mesh is None:
            return rng
        return multihost.place(rng, NamedSharding(self.mesh, PartitionSpec()))  # keys across processes
