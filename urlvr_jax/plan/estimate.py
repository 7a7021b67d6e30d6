"""Back-of-the-envelope per-device memory of a run from its shapes, and the knobs plan mode turns to make it fit.

Every figure is bytes per device on a mesh of ``data x fsdp x tensor`` devices, with the repository's partition
rules (:mod:`urlvr_jax.sharding`): weights and Adam's moments split over fsdp x tensor (replicated over data),
batch rows over data x fsdp (B_d = rows / (data x fsdp)), KV heads, attention heads, the MLP width and the vocabulary
over tensor (when they divide). With S = prompt + completion tokens, T = completion tokens, b = the compute dtype's
bytes, L layers:

* parameters ``N * param_bytes / (fsdp * tensor)``; optimizer state twice that (Adam's two moments);
* KV cache ``2 * L * B_d * S * (K / tensor) * head_dim * b`` for the rows decoded at once (a chunk; with continuous
  batching B_d = the slots per device, plus the prompts' own cache, and every row's output buffers replicated);
* decode state: the cache plus per row the next-token logits (V float32) and the T-long output buffers (token,
  uniform and 4 statistics, 4 bytes each); the decode step's temporaries: one layer's keys and values (the layer
  scan's slice of the stacked cache), ~3 float32 copies of the [B_d, V] logits and the LM head gathered over fsdp
  (``V / tensor * D`` in the param and the compute dtype); the prefill's temporaries: the cache before it is
  repeated for the samples, and one layer's activations and attention scores over the prompts; the continuous
  program's temporaries (``rollout_temp``): its decode state plus the larger of the decode step's and the prefill's
  (all prompts at once) working sets;
* train step temporaries, per micro-batch of R rows (R_d = R / (data x fsdp) per device): the gradient, its
  accumulator, and the optimizer's clipped gradient and update (4 x parameters); with remat the L layer inputs
  ``L * R_d * S' * D * b`` (S' = prompt / g + T when each prompt runs once for its g rows on a device) plus one
  layer's working set rebuilt in the backward pass; without remat every layer's working set; a layer's working
  set is its activations ``R_d * S' * (4 D + 3 F / tensor) * b`` and the attention scores, probabilities and their
  gradient ``3 * R_d * (H / tensor) * Q * S * 4`` (Q = S', or min(attention_chunk, S') with query chunks); the LM
  head's float32 logits, their softmax and gradient ``3 * R_d * C * (V / tensor) * 4`` (C = min(logprob_chunk, T)).

XLA fuses, rematerialises and schedules on its own, so these are estimates to compare with the compiled sizes:
the paper config's compiled train step took 1.2x to 7.7x the estimate (the most on fsdp:32,tensor:2), the sampler's
programs 0.8x to 2.1x.
"""

from __future__ import annotations

import dataclasses
import math

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
STATS_PER_TOKEN = 6  # output buffers per generated token: token id, uniform, 4 statistics (4 bytes each)


def _shard(n: int, ways: int) -> int:
    """A dimension of ``n`` split ``ways`` ways, or whole when ``ways`` does not divide it (as fit_spec does)."""
    return n // ways if ways > 0 and n % ways == 0 else n


@dataclasses.dataclass(frozen=True)
class Shapes:
    """What the estimate needs of a run: model sizes, mesh and batch shapes."""

    num_params: int
    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    act_bytes: int
    param_bytes: int
    data: int
    fsdp: int
    tensor: int
    prompt_len: int
    new_tokens: int
    prompts: int  # rollout prompts per step
    samples: int  # samples per prompt
    chunk_rows: int  # rows decoded at once
    micro_rows: int  # rows per micro-batch
    group: int  # rows sampled from one prompt (train.share_prompt: they may share its forward)
    prompt_group: int  # rows sharing one prompt in the update's forward
    remat: bool
    logprob_chunk: int  # 0: the whole completion
    attention_chunk: int  # 0: the whole sequence
    extra_copies: int  # reference / teacher params kept resident
    slots: int = 0  # continuous-batching decode slots (0: the static sampler, chunk_rows rows at once)

    @property
    def batch_shards(self) -> int:
        return self.data * self.fsdp


def shared_rows(group: int, micro_rows: int, mesh_shape: dict) -> int:
    """Rows that run one prompt in the train step (as ``rl.train_step._shared_rows``): a divisor of the group that
    stays on one device."""
    shards = mesh_shape["data"] * mesh_shape["fsdp"]
    return math.gcd(group, _shard(micro_rows, shards))


def shapes_of(config, cfg, mesh_shape: dict, num_params: int, chunk_rows: int, slots: int = 0) -> Shapes:
    """:class:`Shapes` of a run config, its ModelConfig ``cfg`` and mesh sizes."""
    from urlvr_jax.rl import setup

    r = config.rollout
    num_minibatches, num_microbatches = setup.batching(config)
    micro_rows = r.prompts_per_step * r.n // num_minibatches // num_microbatches
    needs_ref = bool(config.algo.kl_coef) or config.algo.report_ref_kl
    return Shapes(
        num_params=num_params, layers=cfg.num_layers, hidden=cfg.hidden_size, ffn=cfg.intermediate_size,
        heads=cfg.num_heads, kv_heads=cfg.num_kv_heads, head_dim=cfg.head_dim, vocab=cfg.vocab_size,
        act_bytes=DTYPE_BYTES[cfg.dtype], param_bytes=DTYPE_BYTES[cfg.param_dtype], data=mesh_shape["data"],
        fsdp=mesh_shape["fsdp"], tensor=mesh_shape["tensor"], prompt_len=r.max_prompt_len, new_tokens=r.max_new_tokens,
        prompts=r.prompts_per_step, samples=r.n_votes or r.n, chunk_rows=chunk_rows, micro_rows=micro_rows,
        prompt_group=shared_rows(setup.prompt_group(config), micro_rows, mesh_shape), remat=config.train.remat,
        logprob_chunk=config.train.logprob_chunk, attention_chunk=config.model.attention_chunk,
        group=setup.prompt_group(config),
        extra_copies=int(needs_ref) + int("co_rewarding_teacher" in str(config.reward.name)), slots=slots)


def estimate(s: Shapes) -> dict[str, int]:
    """Per-device bytes (see the module docstring): params, opt_state, extra_params, kv_cache, decode_state,
    decode_temp, prefill_temp, train_temp, and the phases' peaks prefill_peak, decode_peak and train_peak."""
    seq = s.prompt_len + s.new_tokens
    params = s.num_params * s.param_bytes // (s.fsdp * s.tensor)
    rows = _shard(s.slots or s.chunk_rows, s.batch_shards)
    kv_per_row = 2 * s.layers * seq * _shard(s.kv_heads, s.tensor) * s.head_dim * s.act_bytes
    kv = rows * kv_per_row
    decode_state = kv + rows * (s.vocab * 4 + s.new_tokens * STATS_PER_TOKEN * 4)
    if s.slots:  # + the prompts' cache; every row's output buffers, replicated inside the loop
        kv += _shard(s.prompts, s.batch_shards) * kv_per_row * s.prompt_len // seq
        decode_state = kv + rows * s.vocab * 4 + s.prompts * s.samples * s.new_tokens * STATS_PER_TOKEN * 4
    lm_head = _shard(s.vocab, s.tensor) * s.hidden * (s.param_bytes + s.act_bytes)
    decode_temp = kv // s.layers + 3 * rows * s.vocab * 4 + lm_head
    # one layer's activations and attention scores over the prompts prefilled at once (all of them with slots)
    prompts = _shard(s.prompts if s.slots else max(1, s.chunk_rows // s.samples), s.batch_shards)
    prefill_temp = prompts * s.prompt_len * (
        (4 * s.hidden + 3 * _shard(s.ffn, s.tensor)) * s.act_bytes + 3 * _shard(s.heads, s.tensor) * s.prompt_len * 4)
    if not s.slots:  # + the cache before it is repeated for the samples
        prefill_temp += kv // min(s.samples, s.chunk_rows)
    # the continuous program holds its decode state as temporaries: it prefills, then decodes, in one program
    rollout_temp = decode_state + max(decode_temp, prefill_temp) if s.slots else 0
    micro = _shard(s.micro_rows, s.batch_shards)
    tokens = s.prompt_len // s.prompt_group + s.new_tokens  # positions run per row
    layer = micro * tokens * (4 * s.hidden + 3 * _shard(s.ffn, s.tensor)) * s.act_bytes + attention_bytes(s)
    kept = s.layers * micro * tokens * s.hidden * s.act_bytes + layer if s.remat else s.layers * layer
    head = 3 * micro * min(s.logprob_chunk or s.new_tokens, s.new_tokens) * _shard(s.vocab, s.tensor) * 4
    train_temp = 4 * params + kept + head
    opt_state = 2 * params
    extra = s.extra_copies * params
    resident = params + opt_state + extra
    return dict(params=params, opt_state=opt_state, extra_params=extra, kv_cache=kv, kv_per_row=kv_per_row,
                decode_state=decode_state, decode_temp=decode_temp, prefill_temp=prefill_temp, train_temp=train_temp,
                rollout_temp=rollout_temp, decode_peak=resident + (rollout_temp or decode_state + decode_temp),
                prefill_peak=resident + decode_state + prefill_temp, train_peak=resident + train_temp)


def attention_bytes(s: Shapes) -> int:
    """One layer's attention scores, probabilities and their gradient in the train step, per device."""
    tokens = s.prompt_len // s.prompt_group + s.new_tokens
    queries = min(s.attention_chunk or tokens, tokens)
    return 3 * _shard(s.micro_rows, s.batch_shards) * _shard(s.heads, s.tensor) * queries * (
        s.prompt_len + s.new_tokens) * 4


def _sampling_fits(s: Shapes, budget: int, margin: float) -> bool:
    est = estimate(s)
    return max(est["prefill_peak"], est["decode_peak"]) <= margin * budget


def chunk_rows_for(s: Shapes, budget: int, margin: float = 0.85) -> int:
    """The most rows to decode at once (whole prompts, a multiple of data x fsdp where possible) whose estimated
    prefill and decode peaks stay within ``margin * budget``; 0 when every row fits at once."""
    total = s.prompts * s.samples
    candidates = [k * s.samples for k in range(s.prompts, 0, -1) if s.prompts % k == 0]
    candidates += [j for j in range(s.samples - 1, 0, -1) if s.samples % j == 0]  # part of one prompt's samples
    sharded = [c for c in candidates if c % s.batch_shards == 0] or candidates
    for rows in sharded:
        if _sampling_fits(dataclasses.replace(s, chunk_rows=rows), budget, margin):
            return 0 if rows == total else rows
    return sharded[-1]


def slots_for(s: Shapes, budget: int, margin: float = 0.85) -> int:
    """The most continuous-batching slots, up to the config's own (``s.slots``), a multiple of data x fsdp, whose
    estimated rollout peak stays within ``margin * budget``."""
    step = s.batch_shards
    candidates = list(range(max(s.slots // step, 1) * step, 0, -step)) or [s.slots]
    for slots in candidates:
        if _sampling_fits(dataclasses.replace(s, slots=slots), budget, margin):
            return slots
    return candidates[-1]


def micro_rows_for(s: Shapes, mini_rows: int, budget: int, margin: float = 0.85) -> int:
    """The most rows per micro-batch, up to the config's own (``s.micro_rows``) or one row per data x fsdp device
    (a divisor of the mini-batch's rows, a multiple of data x fsdp where possible), whose estimated train-step
    peak stays within ``margin * budget``."""
    most = max(s.micro_rows, s.batch_shards)
    divisors = [d for d in range(min(mini_rows, most), 0, -1) if mini_rows % d == 0]
    sharded = [d for d in divisors if d % s.batch_shards == 0] or divisors
    for rows in sharded:
        shaped = dataclasses.replace(s, micro_rows=rows, prompt_group=shared_rows(s.group, rows, vars(s)))
        if estimate(shaped)["train_peak"] <= margin * budget:
            return rows
    return sharded[-1]


def knobs(s: Shapes, phases: dict[str, int], budget: int) -> list[str]:
    """One line per phase over ``budget``: the config key (or mesh) to turn, and which way."""
    est = estimate(s)
    resident = est["params"] + est["opt_state"] + est["extra_params"]
    lines = []
    if resident > 0.7 * budget:
        lines.append(f"parameters + optimizer state take {resident / 2**30:.1f} GiB per device: shard them over more "
                     f"devices (mesh=fsdp:-1 or more fsdp x tensor; 'data' replicates them), or more devices")
    over = {name for name, peak in phases.items() if peak > budget}
    if over & {"rollout", "val_rollout"}:
        lines.append(f"sampling: lower rollout.slots (now {s.slots} continuous-batching slots; "
                     f"{est['kv_per_row'] / 2**20:.0f} MiB of KV cache per slot, split over data x fsdp)")
    if over & {"prefill", "decode", "val_prefill", "val_decode"}:
        lines.append(f"sampling: lower rollout.max_rows_per_chunk (now {s.chunk_rows} rows decoded at once; "
                     f"{est['kv_per_row'] / 2**20:.0f} MiB of KV cache per row, split over data x fsdp)")
    if "train_step" in over:
        hint = f"train step: lower algo.micro_batch_rollouts (now {s.micro_rows}; keep it a multiple of data x fsdp " \
               f"= {s.batch_shards})"
        if not s.remat:
            hint += ", set train.remat=true"
        if not s.logprob_chunk or s.logprob_chunk > 1024:
            hint += ", train.logprob_chunk=1024"
        if not s.attention_chunk:
            hint += ", model.attention_chunk=1024 (scores are micro-batch x heads x S x S)"
        hint += f", or move devices from fsdp to tensor (mesh=...,tensor:{2 * s.tensor})"
        lines.append(hint)
    if "logprobs" in over:
        lines.append("log-prob pass: lower train.logprob_chunk or set model.attention_chunk")
    return lines
