"""Plan mode's programs: the run's model built abstractly (shapes only), its train step, rollout and log-prob
programs lowered and compiled (AOT) on the config's mesh, and their per-device sizes (:class:`Plan`)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time

from urlvr_jax.plan import estimate as plan_estimate
from urlvr_jax.plan import hlo_cost
from urlvr_jax.plan.topology import Chip

PRESETS: dict[str, dict] = {
    "Qwen/Qwen3-1.7B-Base": dict(
        architectures=["Qwen3ForCausalLM"], model_type="qwen3", vocab_size=151936, hidden_size=2048,
        intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
        head_dim=128, rope_theta=1000000, rms_norm_eps=1e-6, tie_word_embeddings=True,
        max_position_embeddings=32768, bos_token_id=151643, eos_token_id=151643),
}
_PRESET_ALIASES = {k.lower(): k for k in PRESETS} | {k.split("/")[-1].lower(): k for k in PRESETS}
GiB = 2**30

def hf_config_dict(path: str) -> dict:
    """The HF ``config.json`` dict of a preset name, a model directory or a config.json file."""
    if path.lower() in _PRESET_ALIASES:
        return dict(PRESETS[_PRESET_ALIASES[path.lower()]])
    file = os.path.join(path, "config.json") if os.path.isdir(path) else path
    if not os.path.isfile(file) or not file.endswith(".json"):
        raise ValueError(f"config model.path={path!r}: not a preset ({', '.join(PRESETS)}), a model directory "
                         "with config.json, or a config.json file")
    with open(file) as f:
        return json.load(f)


def model_config(config):
    """The run's ModelConfig, without reading weights or (for source=hf) a tokenizer."""
    from urlvr_jax.model.config import ModelConfig

    m = config.model
    numerics = dict(dtype=m.dtype, param_dtype=m.param_dtype, attention_chunk=m.attention_chunk, attention=m.attention,
                    kv_layout=m.kv_layout)
    if m.source == "hf":
        return ModelConfig.from_hf(hf_config_dict(m.path), **numerics)
    if m.source == "smollm2":
        from urlvr_jax.model import smollm2

        return ModelConfig.from_hf(hf_config_dict(smollm2.hf_dir()), **numerics)
    if m.source != "init":
        raise ValueError(f"config model.source={m.source!r} is not one of ('init', 'hf', 'smollm2')")
    vocab = m.vocab_size
    if not vocab:
        from urlvr_jax.rl.setup import build_tokenizer

        vocab = len(build_tokenizer(config))
    return ModelConfig(
        family=m.family, vocab_size=vocab, hidden_size=m.hidden_size, intermediate_size=m.intermediate_size,
        num_layers=m.num_layers, num_heads=m.num_heads, num_kv_heads=m.num_kv_heads, head_dim=m.head_dim,
        rope_theta=m.rope_theta, max_position_embeddings=m.max_position_embeddings,
        tie_embeddings=m.tie_embeddings, attention_bias=m.family == "qwen2", qk_norm=m.family == "qwen3",
        **numerics)


# ---------------------------------------------------------------------------------------------- accounting


def with_shardings(tree, shardings):
    """ShapeDtypeStructs of ``tree`` carrying ``shardings``."""
    import jax

    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


def device_bytes(tree) -> int:
    """Bytes per device of a tree of sharded ShapeDtypeStructs (the largest shard of each leaf)."""
    import jax

    def leaf(x):
        shape = x.sharding.shard_shape(x.shape) if x.sharding is not None else x.shape
        return math.prod(shape) * x.dtype.itemsize
    return sum(leaf(x) for x in jax.tree.leaves(tree))


@dataclasses.dataclass
class Program:
    """One compiled program's per-device sizes (bytes), XLA's cost analysis (loop bodies once) and the HLO walk's
    cost (loop bodies times their trips, Pallas kernels counted: :mod:`urlvr_jax.plan.hlo_cost`); ``error``: the
    compiler's refusal (RESOURCE_EXHAUSTED), the sizes then 0."""

    name: str
    argument: int
    output: int
    alias: int
    temp: int
    code: int
    flops: float | None
    compile_s: float
    bytes_accessed: float | None = None
    cost: hlo_cost.Cost | None = None
    error: str | None = None
    hlo: str = dataclasses.field(default="", repr=False)  # the compiled module's text

    @property
    def peak(self) -> int:
        """Live bytes while it runs: inputs, outputs not written in place of donated inputs, temporaries."""
        return self.argument + self.output - self.alias + self.temp + self.code


def _jit_of(program):
    """The ``jax.jit`` object behind one of the sampler's programs (bare, or wrapped with an AOT cache)."""
    return program if hasattr(program, "lower") else program.fn


def _mesh_of(args):
    """The mesh the first sharded argument lives on (None without one)."""
    import jax

    for leaf in jax.tree.leaves(args):
        mesh = getattr(getattr(leaf, "sharding", None), "mesh", None)
        if mesh is not None:
            return mesh
    return None


def compile_program(name: str, jitted, *args, dynamic_trips: int = 1) -> Program:
    """Lowers and compiles ``jitted`` for ``args`` (under their mesh) and measures it; ``dynamic_trips``: the steps
    of its data-dependent loop (the decode loop's worst case) for the HLO walk."""
    import jax

    t0 = time.perf_counter()
    mesh = _mesh_of(args)
    try:
        with jax.set_mesh(mesh) if mesh is not None else contextlib.nullcontext():  # Pallas TPU lowerings read it
            compiled = jitted.lower(*args).compile()
    except Exception as err:  # noqa: BLE001 - the compiler's refusals, reported per phase
        mosaic = type(err).__name__ == "MosaicError"  # a Pallas kernel the TPU compiler cannot build
        if not mosaic and not (isinstance(err, jax.errors.JaxRuntimeError) and "RESOURCE_EXHAUSTED" in str(err)):
            raise
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        message = next((line for line in lines if "RESOURCE_EXHAUSTED" in line), lines[0] if lines else repr(err))
        return Program(name, 0, 0, 0, 0, 0, None, time.perf_counter() - t0, error=message)
    elapsed = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    try:
        cost = compiled.cost_analysis()
        cost = (cost[0] if isinstance(cost, (list, tuple)) else cost) or {}
    except Exception:  # noqa: BLE001 - not every backend implements cost analysis
        cost = {}
    xla = lambda key: float(cost[key]) if cost.get(key) is not None else None  # noqa: E731
    hlo = compiled.as_text()
    return Program(name, mem.argument_size_in_bytes, mem.output_size_in_bytes, mem.alias_size_in_bytes,
                   mem.temp_size_in_bytes, mem.generated_code_size_in_bytes, xla("flops"), elapsed,
                   xla("bytes accessed"), hlo_cost.program_cost(hlo, dynamic_trips), hlo=hlo)


@dataclasses.dataclass
class Plan:
    """Per-device bytes of the persistent state and of each program; phases are estimated peaks."""

    model: str
    mesh: dict
    num_params: int
    shapes: dict  # train/rollout batch shapes, for the report
    params: int
    opt_state: int
    extra_params: int  # reference / teacher copies that stay resident
    kv_cache: int
    decode_state: int
    programs: dict[str, Program]
    budget: int
    estimate: dict[str, int]  # plan_estimate.estimate of the same shapes
    knob_shapes: object  # plan_estimate.Shapes, for the knobs to turn
    runs: dict[str, int] = dataclasses.field(default_factory=dict)  # each program's runs per step
    tokens: dict[str, int] = dataclasses.field(default_factory=dict)  # trained, generated, prefilled per step
    chip: Chip | None = None  # the --topology's chip: its figures give the roofline

    @property
    def phases(self) -> dict[str, int]:
        """Estimated peak per phase: the program's own peak plus resident state it does not take as input."""
        out = {}
        for name, prog in self.programs.items():
            out[name] = prog.peak + self.extra_params + (self.opt_state if name != "train_step" else 0)
        return out

    @property
    def peak(self) -> int:
        return max(self.phases.values())

    def fits(self, budget: int | None = None) -> bool:
        refused = any(p.error for p in self.programs.values())
        return not refused and self.peak <= (self.budget if budget is None else budget)


# ---------------------------------------------------------------------------------------------- building


def train_inputs(config, cfg, mesh, optimizer):
    """Abstract, sharded (TrainState, TrainBatch) of a run: the train step's arguments."""
    import jax
    import jax.numpy as jnp

    from urlvr_jax import sharding as shd
    from urlvr_jax.model.transformer import abstract_params
    from urlvr_jax.rl.train_step import TrainBatch, init_train_state, state_shardings

    key = jax.eval_shape(jax.random.key, 0)
    state = jax.eval_shape(lambda p, k: init_train_state(p, optimizer, k), abstract_params(cfg), key)
    state = with_shardings(state, state_shardings(state, mesh, cfg))
    r = config.rollout
    rows, prompt_len, new = r.prompts_per_step * r.n, r.max_prompt_len, r.max_new_tokens
    sds = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype)  # noqa: E731
    completion = lambda dtype: sds((rows, new), dtype)  # noqa: E731
    batch = TrainBatch(prompt_tokens=sds((rows, prompt_len), jnp.int32), prompt_mask=sds((rows, prompt_len), bool),
                       tokens=completion(jnp.int32), mask=completion(bool), advantages=sds((rows,), jnp.float32),
                       old_logprobs=completion(jnp.float32), ref_logprobs=completion(jnp.float32),
                       sampler_logprobs=completion(jnp.float32))
    return state, with_shardings(batch, shd.tree_batch_shardings(batch, mesh))


def _continuous_program(config, cfg, sampling, mesh, params, samples: int, slots: int, name: str):
    """(the compiled continuous-batching program of the rollout, the slots it decodes over, its slot + prompt KV cache
    bytes per device, its decode state's bytes per device: the caches, the slots' logits and the rows' output
    buffers)."""
    import jax
    import jax.numpy as jnp

    from urlvr_jax import sharding as shd
    from urlvr_jax.model.transformer import init_cache
    from urlvr_jax.sampling.continuous import ContinuousSampler

    r = config.rollout
    prompts, length, rows = r.prompts_per_step, r.max_prompt_len, r.prompts_per_step * samples
    sampler = ContinuousSampler(cfg, sampling, mesh, buckets=(length,), slots=slots,
                                unroll_layers=config.train.unroll_layers)
    sds = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype)
    args = (params, sds((prompts, length), jnp.int32), sds((prompts, length), bool), sds((rows,), jnp.uint32),
            jax.eval_shape(jax.random.key, 0), sds((rows,), jnp.int32))
    used = sampler.num_slots(rows)
    steps = -(-rows // used) * sampling.max_new_tokens  # the worst case: every row decodes to its limit
    program = compile_program(name, _jit_of(sampler._jitted_continuous(prompts, length, samples)), *args,
                              dynamic_trips=steps)
    caches = [jax.eval_shape(lambda: init_cache(cfg, n, size)) for n, size in
              ((used, length + sampling.max_new_tokens), (prompts, length))]
    kv = sum(device_bytes(with_shardings(c, shd.cache_shardings(c, mesh))) for c in caches)
    buffers = rows * sampling.max_new_tokens * plan_estimate.STATS_PER_TOKEN * 4  # replicated in the loop
    return program, used, kv, kv + used * cfg.vocab_size * 4 + buffers


def make_plan(config, device_memory_gb: float = 16.0, devices=None, chip: Chip | None = None,
              train_step_only: bool = False) -> Plan:
    """Compiles the run's programs abstractly on ``devices`` (default: the current ones; compile-only devices of a
    ``--topology``, whose ``chip`` gives the roofline) and measures them; the rollout's programs are those of one
    chunk of ``rollout.max_rows_per_chunk`` rows (``Sampler.chunk_shape``). ``train_step_only``: the train step
    alone (a quick look at the largest phase)."""
    import jax

    from urlvr_jax import sharding as shd

    mesh = shd.make_mesh(config.mesh or None, devices=devices)
    with jax.default_matmul_precision(str(config.train.matmul_precision)):  # as the loop compiles them
        plan = _make_plan(config, mesh, device_memory_gb, train_step_only)
    return dataclasses.replace(plan, chip=chip)


def _make_plan(c, mesh, device_memory_gb: float, train_step_only: bool) -> Plan:
    import jax
    import jax.numpy as jnp

    from urlvr_jax import sharding as shd
    from urlvr_jax.model.hf_io import num_params
    from urlvr_jax.rl import setup
    from urlvr_jax.rl.train_step import jit_train_step
    from urlvr_jax.sampling.logprobs import completion_logprobs
    from urlvr_jax.evaluation import continuous_slots
    from urlvr_jax.sampling.sampler import Sampler
    from urlvr_jax.sampling.strategies import SamplingConfig

    r = c.rollout
    cfg = model_config(c)
    step_cfg, optimizer = setup.step_and_optimizer(c)
    key = jax.eval_shape(jax.random.key, 0)

    state, batch = train_inputs(c, cfg, mesh, optimizer)
    rows, prompt_len, new = r.prompts_per_step * r.n, r.max_prompt_len, r.max_new_tokens
    sds = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype)
    programs = {"train_step": compile_program(
        "train_step", jit_train_step(cfg, step_cfg, optimizer, mesh, state, batch), state, batch)}
    runs = {"train_step": 1}  # runs per step (validation's programs: none, it runs every val.every steps)

    n_votes = r.n_votes or r.n
    slots = continuous_slots(c)
    rollout = (n_votes, new, r.temperature, r.top_k, r.top_p)
    val = (c.val.k, c.val.max_new_tokens or new, c.val.temperature, 0, c.val.top_p)
    decode_states, chunk_rows = [(0, 0)], r.prompts_per_step * n_votes
    for prefix, (samples, length, temperature, top_k, top_p) in (("", rollout), ("val_", val))[:0 if train_step_only
                                                                                                 else 2]:
        if prefix and samples * length <= n_votes * new:
            continue  # validation fits in the rollout's programs' footprint
        sampling = SamplingConfig(max_new_tokens=length, temperature=temperature, top_k=top_k, top_p=top_p,
                                  stop_token_ids=tuple(cfg.eos_token_ids), pad_id=cfg.pad_token_id)
        if slots:  # one program (prefill + decode) over the slots; its temporaries hold the caches
            program, used, kv, decode_state = _continuous_program(c, cfg, sampling, mesh, state.params, samples, slots,
                                                                  prefix + "rollout")
            programs[prefix + "rollout"] = program
            runs[prefix + "rollout"] = 0 if prefix else 1
            decode_states.append((kv, decode_state))
            if not prefix:
                chunk_rows = used
            continue
        sampler = Sampler(cfg, sampling, mesh, buckets=(prompt_len,), max_rows_per_chunk=r.max_rows_per_chunk,
                          unroll_layers=c.train.unroll_layers)
        chunk_prompts, chunk_samples = sampler.chunk_shape(r.prompts_per_step, samples)
        prefill, decode = (_jit_of(f) for f in sampler._jitted(chunk_prompts, prompt_len, chunk_samples)[:2])
        prompts = (chunk_prompts, prompt_len)
        prefill_args = (state.params, sds(prompts, jnp.int32), sds(prompts, bool),
                        sds((chunk_prompts * chunk_samples,), jnp.uint32), key,
                        sds((chunk_prompts * chunk_samples,), jnp.int32))  # sequence ids, rng, max lengths
        if not prefix:
            chunk_rows = chunk_prompts * chunk_samples
        programs[prefix + "prefill"] = compile_program(prefix + "prefill", prefill, *prefill_args)
        decoding = jax.eval_shape(prefill, *prefill_args)  # sharded like prefill's outputs
        decode_states.append((device_bytes(decoding.cache), device_bytes(decoding)))
        programs[prefix + "decode"] = compile_program(prefix + "decode", decode, state.params, decoding,
                                                      dynamic_trips=length)
        chunks = r.prompts_per_step * samples // (chunk_prompts * chunk_samples)
        runs[prefix + "prefill"] = runs[prefix + "decode"] = 0 if prefix else chunks

    needs_ref = bool(c.algo.kl_coef) or c.algo.report_ref_kl
    if (setup.old_logprobs_source(c) == "recompute" or needs_ref) and not train_step_only:  # the full-batch pass
        logprobs = jax.jit(lambda p, pt, pm, t, m: completion_logprobs(
            p, pt, pm, t, m, cfg=cfg, temperature=r.temperature, chunk_size=c.train.logprob_chunk or None,
            prompt_group=setup.prompt_group(c)))
        programs["logprobs"] = compile_program("logprobs", logprobs, state.params, batch.prompt_tokens,
                                               batch.prompt_mask, batch.tokens, batch.mask)
        runs["logprobs"] = 1
    copies = int(needs_ref) + int("co_rewarding_teacher" in str(c.reward.name))
    shapes = plan_estimate.shapes_of(c, cfg, dict(mesh.shape), num_params(cfg), chunk_rows, slots)
    return Plan(
        model=f"{cfg.family} L={cfg.num_layers} D={cfg.hidden_size} V={cfg.vocab_size} "
              f"dtype={cfg.dtype} params={cfg.param_dtype}",
        mesh=dict(mesh.shape), num_params=num_params(cfg),
        shapes=dict(train_rows=rows, prompt_len=prompt_len, max_new_tokens=new, rollout_prompts=r.prompts_per_step,
                    samples_per_prompt=n_votes, chunk_rows=chunk_rows, slots=slots,
                    num_minibatches=step_cfg.num_minibatches,
                    num_microbatches=step_cfg.num_microbatches, remat=step_cfg.remat,
                    logprob_chunk=step_cfg.logprob_chunk, prompt_group=shapes.prompt_group),
        params=device_bytes(state.params), opt_state=device_bytes(state.opt_state),
        extra_params=copies * device_bytes(state.params),
        kv_cache=max(kv for kv, _ in decode_states), decode_state=max(d for _, d in decode_states), programs=programs,
        budget=int(device_memory_gb * GiB), estimate=plan_estimate.estimate(shapes), knob_shapes=shapes, runs=runs,
        tokens=dict(trained=rows * (prompt_len + new), generated=r.prompts_per_step * n_votes * new,
                    prefilled=r.prompts_per_step * prompt_len))

