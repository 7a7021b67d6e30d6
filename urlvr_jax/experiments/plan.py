"""Plan / dry-run mode: does a config fit the accelerators, before paying for them?

    python -m urlvr_jax.experiments.plan --config paper_qwen3_1p7b --devices 8 mesh=data:2,fsdp:4 \
        [--device-memory 16GiB] [--suggest] [key=value ...]

Builds the full-size model abstractly (shapes only, no weights), lowers and compiles (AOT) the train step
and the sampler's prefill and decode for the config's batch (one chunk of ``rollout.max_rows_per_chunk`` rows)
on the config's mesh, and prints per-device memory: parameters, optimizer state, extra param copies, KV cache,
and each program's compiled argument / output / temp sizes from ``Compiled.memory_analysis()``, each beside a
back-of-the-envelope figure from the shapes (:mod:`urlvr_jax.experiments.plan_estimate`); then each phase's
peak against ``--device-memory`` (``16GiB``, ``80GB``; a bare number is GiB) with a FITS / DOES NOT FIT verdict
and, for a phase over budget, the config key to turn. ``--suggest`` first picks the rollout chunk and the
micro-batch size that the estimate fits into the budget, prints them as overrides, and plans with them.
``--devices N`` fakes N CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=N``), so a pod's mesh
can be planned on a laptop.

Compiled sizes come from whichever backend compiles (CPU when faked): a TPU or GPU compiler fuses and
schedules differently, so treat temp sizes as an estimate, not a guarantee.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import re
import time

from urlvr_jax.experiments import plan_estimate

PRESETS: dict[str, dict] = {
    "Qwen/Qwen3-1.7B-Base": dict(
        architectures=["Qwen3ForCausalLM"], model_type="qwen3", vocab_size=151936, hidden_size=2048,
        intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
        head_dim=128, rope_theta=1000000, rms_norm_eps=1e-6, tie_word_embeddings=True,
        max_position_embeddings=32768, bos_token_id=151643, eos_token_id=151643),
}
_PRESET_ALIASES = {k.lower(): k for k in PRESETS} | {k.split("/")[-1].lower(): k for k in PRESETS}
GiB = 2**30


def set_fake_devices(n: int) -> None:
    """Asks for ``n`` fake CPU devices; must run before jax creates its backends."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


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
    numerics = dict(dtype=m.dtype, param_dtype=m.param_dtype, attention_chunk=m.attention_chunk)
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
    """One compiled program's per-device sizes (bytes) and XLA's cost analysis."""

    name: str
    argument: int
    output: int
    alias: int
    temp: int
    code: int
    flops: float | None
    compile_s: float

    @property
    def peak(self) -> int:
        """Live bytes while it runs: inputs, outputs not written in place of donated inputs, temporaries."""
        return self.argument + self.output - self.alias + self.temp + self.code


def _jit_of(program):
    """The ``jax.jit`` object behind one of the sampler's programs (bare, or wrapped with an AOT cache)."""
    return program if hasattr(program, "lower") else program.fn


def compile_program(name: str, jitted, *args) -> Program:
    t0 = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    elapsed = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    try:
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        flops = float(cost.get("flops")) if cost and cost.get("flops") is not None else None
    except Exception:  # noqa: BLE001 - not every backend implements cost analysis
        flops = None
    return Program(name, mem.argument_size_in_bytes, mem.output_size_in_bytes, mem.alias_size_in_bytes,
                   mem.temp_size_in_bytes, mem.generated_code_size_in_bytes, flops, elapsed)


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
        return self.peak <= (self.budget if budget is None else budget)


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
    sampler = ContinuousSampler(cfg, sampling, mesh, buckets=(length,), slots=slots)
    sds = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype)
    args = (params, sds((prompts, length), jnp.int32), sds((prompts, length), bool), sds((rows,), jnp.uint32),
            jax.eval_shape(jax.random.key, 0), sds((rows,), jnp.int32))
    program = compile_program(name, _jit_of(sampler._jitted_continuous(prompts, length, samples)), *args)
    used = sampler.num_slots(rows)
    caches = [jax.eval_shape(lambda: init_cache(cfg, n, size)) for n, size in
              ((used, length + sampling.max_new_tokens), (prompts, length))]
    kv = sum(device_bytes(with_shardings(c, shd.cache_shardings(c, mesh))) for c in caches)
    buffers = rows * sampling.max_new_tokens * plan_estimate.STATS_PER_TOKEN * 4  # replicated in the loop
    return program, used, kv, kv + used * cfg.vocab_size * 4 + buffers


def make_plan(config, device_memory_gb: float = 16.0) -> Plan:
    """Compiles the run's programs abstractly on the current devices and measures them; the rollout's
    programs are those of one chunk of ``rollout.max_rows_per_chunk`` rows (``Sampler.chunk_shape``)."""
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

    c, r = config, config.rollout
    mesh = shd.make_mesh(c.mesh or None)
    cfg = model_config(c)
    step_cfg, optimizer = setup.step_and_optimizer(c)
    key = jax.eval_shape(jax.random.key, 0)

    state, batch = train_inputs(c, cfg, mesh, optimizer)
    rows, prompt_len, new = r.prompts_per_step * r.n, r.max_prompt_len, r.max_new_tokens
    sds = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype)
    programs = {"train_step": compile_program(
        "train_step", jit_train_step(cfg, step_cfg, optimizer, mesh, state, batch), state, batch)}

    n_votes = r.n_votes or r.n
    slots = continuous_slots(c)
    rollout = (n_votes, new, r.temperature, r.top_k, r.top_p)
    val = (c.val.k, c.val.max_new_tokens or new, c.val.temperature, 0, c.val.top_p)
    decode_states = []
    for prefix, (samples, length, temperature, top_k, top_p) in (("", rollout), ("val_", val)):
        if prefix and samples * length <= n_votes * new:
            continue  # validation fits in the rollout's programs' footprint
        sampling = SamplingConfig(max_new_tokens=length, temperature=temperature, top_k=top_k, top_p=top_p,
                                  stop_token_ids=tuple(cfg.eos_token_ids), pad_id=cfg.pad_token_id)
        if slots:  # one program (prefill + decode) over the slots; its temporaries hold the caches
            program, used, kv, decode_state = _continuous_program(c, cfg, sampling, mesh, state.params, samples, slots,
                                                                  prefix + "rollout")
            programs[prefix + "rollout"] = program
            decode_states.append((kv, decode_state))
            if not prefix:
                chunk_rows = used
            continue
        sampler = Sampler(cfg, sampling, mesh, buckets=(prompt_len,), max_rows_per_chunk=r.max_rows_per_chunk)
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
        programs[prefix + "decode"] = compile_program(prefix + "decode", decode, state.params, decoding)

    needs_ref = bool(c.algo.kl_coef) or c.algo.report_ref_kl
    if setup.old_logprobs_source(c) == "recompute" or needs_ref:  # the loop's full-batch log-prob pass
        logprobs = jax.jit(lambda p, pt, pm, t, m: completion_logprobs(
            p, pt, pm, t, m, cfg=cfg, temperature=r.temperature, chunk_size=c.train.logprob_chunk or None,
            prompt_group=setup.prompt_group(c)))
        programs["logprobs"] = compile_program("logprobs", logprobs, state.params, batch.prompt_tokens,
                                               batch.prompt_mask, batch.tokens, batch.mask)
    copies = int(needs_ref) + int("co_rewarding_teacher" in str(c.reward.name))
    shapes = plan_estimate.shapes_of(c, cfg, dict(mesh.shape), num_params(cfg), chunk_rows, slots)
    return Plan(
        model=f"{cfg.family} L={cfg.num_layers} D={cfg.hidden_size} V={cfg.vocab_size} "
              f"dtype={cfg.dtype} params={cfg.param_dtype}",
        mesh=dict(mesh.shape), num_params=num_params(cfg),
        shapes=dict(train_rows=rows, prompt_len=prompt_len, max_new_tokens=new, rollout_prompts=r.prompts_per_step,
                    samples_per_prompt=n_votes, chunk_rows=chunk_rows, slots=slots, num_minibatches=step_cfg.num_minibatches,
                    num_microbatches=step_cfg.num_microbatches, remat=step_cfg.remat,
                    logprob_chunk=step_cfg.logprob_chunk, prompt_group=shapes.prompt_group),
        params=device_bytes(state.params), opt_state=device_bytes(state.opt_state),
        extra_params=copies * device_bytes(state.params),
        kv_cache=max(kv for kv, _ in decode_states), decode_state=max(d for _, d in decode_states), programs=programs,
        budget=int(device_memory_gb * GiB), estimate=plan_estimate.estimate(shapes), knob_shapes=shapes)


# ---------------------------------------------------------------------------------------------- report


def _size(n: float, unit: int) -> str:
    return f"{n / unit:9.3f} {'GiB' if unit == GiB else 'MiB'}"


def format_plan(plan: Plan, budget: int | None = None) -> str:
    budget = plan.budget if budget is None else budget
    est = plan.estimate
    unit = GiB if plan.peak >= GiB else 2**20
    fmt = lambda n: _size(n, unit)  # noqa: E731
    count = f"{plan.num_params / 1e9:.3f} B" if plan.num_params >= 1e8 else f"{plan.num_params / 1e6:.3f} M"
    mesh = ", ".join(f"{k}={v}" for k, v in plan.mesh.items())
    s = plan.shapes
    lines = [
        f"model: {plan.model} ({count} params)",
        f"mesh: {mesh} ({math.prod(plan.mesh.values())} devices)",
        f"train batch: {s['train_rows']} rows x (prompt {s['prompt_len']} + completion {s['max_new_tokens']}), "
        f"{s['num_minibatches']} mini-batch(es) x {s['num_microbatches']} micro-batch(es), remat={s['remat']}, "
        f"logprob_chunk={s['logprob_chunk']}, each prompt run once per {s['prompt_group']} rows",
        f"rollout: {s['rollout_prompts']} prompts x {s['samples_per_prompt']} samples, decoded "
        + (f"over {s['chunk_rows']} continuous-batching slots" if s["slots"] else f"{s['chunk_rows']} rows at a time"),
        "",
        f"per device (bytes of the largest shard)      {'estimate':>13s}",
        f"  parameters             {fmt(plan.params)}  {fmt(est['params'])}",
        f"  optimizer state        {fmt(plan.opt_state)}  {fmt(est['opt_state'])}",
        f"  reference/teacher      {fmt(plan.extra_params)}  {fmt(est['extra_params'])}",
        f"  KV cache (one chunk)   {fmt(plan.kv_cache)}  {fmt(est['kv_cache'])}",
        f"  decode state (all)     {fmt(plan.decode_state)}  {fmt(est['decode_state'])}",
        *([f"  rollout temp           {fmt(plan.programs['rollout'].temp)}  {fmt(est['decode_temp'])}"]
          if "rollout" in plan.programs else
          [f"  prefill temp           {fmt(plan.programs['prefill'].temp)}  {fmt(est['prefill_temp'])}",
           f"  decode temp            {fmt(plan.programs['decode'].temp)}  {fmt(est['decode_temp'])}"]),
        f"  train step temp        {fmt(plan.programs['train_step'].temp)}  {fmt(est['train_temp'])}",
        "",
        f"  {'program':12s} {'argument':>13s} {'output':>13s} {'aliased':>13s} {'temp':>13s} {'code':>13s} "
        f"{'GFLOP (XLA)':>12s} {'compile':>8s}",
    ]
    for p in plan.programs.values():
        flops = f"{p.flops / 1e9:12.1f}" if p.flops is not None else f"{'n/a':>12s}"
        lines.append(f"  {p.name:12s} {fmt(p.argument)} {fmt(p.output)} {fmt(p.alias)} {fmt(p.temp)} "
                     f"{fmt(p.code)} {flops} {p.compile_s:7.1f}s")
    lines += ["", "peak per phase (compiled program + resident state; estimate), "
                  f"budget {fmt(budget).strip()} per device"]
    for name, peak in plan.phases.items():
        guess = est.get({"train_step": "train_peak", "prefill": "prefill_peak", "decode": "decode_peak",
                         "rollout": "decode_peak"}.get(name, ""))
        guess = fmt(guess) if guess else f"{'':13s}"
        lines.append(f"  {name:12s} {fmt(peak)}  {peak / budget:6.1%}  {'ok  ' if peak <= budget else 'OVER'} {guess}")
    verdict = "FITS" if plan.fits(budget) else "DOES NOT FIT"
    lines += ["", f"verdict: {verdict} (peak {fmt(plan.peak).strip()} of {fmt(budget).strip()} per device)"]
    lines += [f"  knob: {k}" for k in plan_estimate.knobs(plan.knob_shapes, plan.phases, budget)]
    lines += [
              "note: XLA counts a loop body once in its FLOPs (layer scans, decode loop); temp sizes come from "
              "the compiling backend and are estimates for another one."]
    return "\n".join(lines)


def _pop_flag(args: list[str], name: str) -> str | None:
    """Removes ``--name V`` or ``--name=V`` from ``args`` and returns V."""
    for i, arg in enumerate(args):
        if arg == name:
            if i + 1 >= len(args):
                raise SystemExit(f"{name} needs a value")
            value = args[i + 1]
            del args[i:i + 2]
            return value
        if arg.startswith(name + "="):
            del args[i]
            return arg.split("=", 1)[1]
    return None


def parse_size(text: str) -> float:
    """GiB in a size like ``16GiB``, ``80GB`` (10^9 bytes), ``512MiB`` or ``16`` (GiB)."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*(GiB|GB|MiB|MB|)\s*", text)
    if not match:
        raise SystemExit(f"--device-memory {text!r}: give a size like 16GiB, 80GB or 16 (GiB)")
    unit = {"GiB": GiB, "GB": 1e9, "MiB": 2**20, "MB": 1e6, "": GiB}[match.group(2)]
    return float(match.group(1)) * unit / GiB


def suggest(config, budget_gb: float, attention_chunk: int = 1024) -> list[str]:
    """Overrides of ``rollout.max_rows_per_chunk`` (``rollout.slots`` with continuous batching) and
    ``algo.micro_batch_rollouts`` that the estimate fits in
    ``budget_gb`` GiB per device on the config's mesh (no compilation), and ``model.attention_chunk`` when the
    train step's attention scores would take over a quarter of the budget."""
    from urlvr_jax import sharding as shd
    from urlvr_jax.evaluation import continuous_slots
    from urlvr_jax.model.hf_io import num_params
    from urlvr_jax.rl import setup

    cfg, mesh = model_config(config), shd.make_mesh(config.mesh or None)
    r = config.rollout
    all_rows, slots = r.prompts_per_step * (r.n_votes or r.n), continuous_slots(config)
    shapes = plan_estimate.shapes_of(config, cfg, dict(mesh.shape), num_params(cfg), all_rows, slots)
    budget = int(budget_gb * GiB)
    if slots:
        overrides = [f"rollout.slots={plan_estimate.slots_for(shapes, budget)}"]
    else:
        overrides = [f"rollout.max_rows_per_chunk={plan_estimate.chunk_rows_for(shapes, budget)}"]
    mini_rows = config.algo.mini_batch_prompts * r.n
    micro = plan_estimate.micro_rows_for(shapes, mini_rows, budget)
    setup.batching(config)  # the config's own batching must be valid before it is changed
    shapes = dataclasses.replace(shapes, micro_rows=micro, prompt_group=plan_estimate.shared_rows(
        shapes.group, micro, dict(mesh.shape)))
    if not shapes.attention_chunk and plan_estimate.attention_bytes(shapes) > budget / 4:
        overrides.append(f"model.attention_chunk={attention_chunk}")
        shapes = dataclasses.replace(shapes, attention_chunk=attention_chunk)
        micro = plan_estimate.micro_rows_for(shapes, mini_rows, budget)
    return overrides + [f"algo.micro_batch_rollouts={micro}"]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    devices = _pop_flag(args, "--devices")
    size = _pop_flag(args, "--device-memory")
    budget_gb = parse_size(size) if size is not None else float(_pop_flag(args, "--device-memory-gb") or 16.0)
    wants_suggestion = "--suggest" in args
    args = [a for a in args if a != "--suggest"]
    if devices is not None:
        set_fake_devices(int(devices))
    import jax

    from urlvr_jax.utils.config import apply_overrides, parse_cli

    config, extra = parse_cli(args, default_config="paper_qwen3_1p7b")
    if extra:
        raise SystemExit(f"unknown flags {extra}; plan flags are --devices N, --device-memory SIZE and --suggest")
    if devices is not None and jax.device_count() != int(devices):
        raise SystemExit(f"--devices {devices}: jax already has {jax.device_count()} devices (XLA_FLAGS="
                         f"{os.environ.get('XLA_FLAGS', '')!r}); unset XLA_FLAGS or match it")
    if wants_suggestion:
        overrides = suggest(config, budget_gb)
        print(f"suggested for {budget_gb:.1f} GiB per device: {' '.join(overrides)}\n")
        config = apply_overrides(config, overrides)
    plan = make_plan(config, budget_gb)
    print(format_plan(plan))
    return 0 if plan.fits() else 1


if __name__ == "__main__":
    sys.exit(main())
