"""Plan mode's report: a :class:`~urlvr_jax.plan.build.Plan` as the text ``python -m urlvr_jax.plan`` prints."""

from __future__ import annotations

import math

from urlvr_jax.plan import estimate as plan_estimate
from urlvr_jax.plan.build import GiB, Plan
from urlvr_jax.plan.roofline import roofline

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
        *([f"  rollout temp           {fmt(plan.programs['rollout'].temp)}  {fmt(est['rollout_temp'])}"]
          if "rollout" in plan.programs else [] if "prefill" not in plan.programs else
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
    refused = {p.name: p.error for p in plan.programs.values() if p.error}
    for name, peak in plan.phases.items():
        guess = est.get({"train_step": "train_peak", "prefill": "prefill_peak", "decode": "decode_peak",
                         "rollout": "decode_peak"}.get(name, ""))
        guess = fmt(guess) if guess else f"{'':13s}"
        if name in refused:
            fit = "DOES NOT FIT" if "RESOURCE_EXHAUSTED" in refused[name] else "DOES NOT COMPILE"
            lines.append(f"  {name:12s} {fit}: the compiler refused it: {refused[name]}")
            continue
        lines.append(f"  {name:12s} {fmt(peak)}  {peak / budget:6.1%}  {'ok  ' if peak <= budget else 'OVER'} {guess}")
    if refused:
        oom = [name for name, error in refused.items() if "RESOURCE_EXHAUSTED" in error]
        failed = [name for name in refused if name not in oom]  # e.g. a Pallas kernel Mosaic cannot lower
        verdict = "DOES NOT FIT (" + "; ".join(
            ([f"{', '.join(oom)}: out of device memory in the compiler"] if oom else [])
            + ([f"{', '.join(failed)}: the compiler cannot build it"] if failed else [])) + ")"
    else:
        verdict = f"{'FITS' if plan.fits(budget) else 'DOES NOT FIT'} (peak {fmt(plan.peak).strip()} of " \
                  f"{fmt(budget).strip()} per device)"
    lines += ["", f"verdict: {verdict}"]
    oom = {name for name, error in refused.items() if "RESOURCE_EXHAUSTED" in error}
    phases = {name: budget + 1 if name in oom else 0 if name in refused else peak for name, peak in plan.phases.items()}
    lines += [f"  knob: {k}" for k in plan_estimate.knobs(plan.knob_shapes, phases, budget)]
    lines += roofline_lines(plan)
    lines += ["note: XLA's cost analysis counts a loop body once (layer scans, decode loop; the roofline's walk "
              "counts each trip); temp sizes come from the compiling backend and are estimates for another one."]
    return "\n".join(lines)


def roofline_lines(plan: Plan) -> list[str]:
    """The roofline section (:mod:`urlvr_jax.plan.roofline`), or nothing without a chip's figures."""
    line = roofline(plan)
    if line is None:
        return []
    chip = plan.chip
    lines = ["", f"roofline on {chip.name} ({chip.peak_flops / 1e12:.0f} TFLOP/s bf16, "
                 f"{chip.hbm_bandwidth / 1e9:.0f} GB/s HBM per chip; loops x trips, decode to the length limit)",
             f"  {'program':12s} {'runs/step':>9s} {'GFLOP':>10s} {'XLA dots':>10s} {'kernels':>10s} {'HBM GB':>9s} "
             f"{'time/run':>10s}  bound"]
    for p in plan.programs.values():
        t, c = line.phases[p.name], p.cost
        lines.append(f"  {p.name:12s} {t.runs:9d} {c.total_flops / 1e9:10.1f} {c.flops / 1e9:10.1f} "
                     f"{c.kernel_flops / 1e9:10.1f} {c.bytes / 1e9:9.2f} {_seconds(t.seconds):>10s}  {t.bound}")
    parts = " + ".join(f"{name} {_seconds(t.seconds * t.runs)}" for name, t in line.phases.items() if t.runs)
    lines += [f"step time >= {_seconds(line.step_seconds)} ({parts}; validation not included)",
              f"tokens/s per chip <= {line.generated_per_chip_s:,.0f} generated, {line.trained_per_chip_s:,.0f} "
              f"trained; MFU <= {line.mfu_bound:.1%} (6N per trained + 2N per generated or prefilled token)"]
    return lines


def _seconds(s: float) -> str:
    return f"{s:.3f} s" if s >= 1 else f"{s * 1e3:.2f} ms"
