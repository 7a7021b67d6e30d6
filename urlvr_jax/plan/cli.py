"""``python -m urlvr_jax.plan``'s flags (``--devices``, ``--topology``, ``--device-memory``, ``--suggest``) and entry
point."""

from __future__ import annotations

import dataclasses
import os
import re
import sys

from urlvr_jax.plan import estimate as plan_estimate
from urlvr_jax.plan.build import GiB, make_plan, model_config
from urlvr_jax.plan.report import format_plan
from urlvr_jax.plan.topology import compile_devices

USAGE = """\
python -m urlvr_jax.plan [--config NAME[:PRESET]] [--devices N | --topology NAME] [--device-memory SIZE] [--suggest]
                         [key=value ...]
  --devices N          N fake CPU devices, the XLA:CPU compiler's memory figures
  --topology NAME      a slice's compiler without the hardware: v4, v5e, v5p, v6e (e.g. v5e:8x8) or a GPU
                       target (h100:8, h100:2x8, h200:8, a100:8)
  --device-memory SIZE the budget per device (e.g. 80GB; default: the chip's memory, else 16 GiB)
  --suggest            search the knobs for a configuration that fits
  key=value            config overrides (mesh=fsdp:16,tensor:4, rollout.max_rows_per_chunk=64, ...)"""


def set_fake_devices(n: int) -> None:
    """Asks for ``n`` fake CPU devices; must run before jax creates its backends."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


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


def suggest(config, budget_gb: float, attention_chunk: int = 1024, devices=None) -> list[str]:
    """Overrides of ``rollout.max_rows_per_chunk`` (``rollout.slots`` with continuous batching) and
    ``algo.micro_batch_rollouts`` that the estimate fits in
    ``budget_gb`` GiB per device on the config's mesh (no compilation), and ``model.attention_chunk`` when the
    train step's attention scores would take over a quarter of the budget."""
    from urlvr_jax import sharding as shd
    from urlvr_jax.evaluation import continuous_slots
    from urlvr_jax.model.hf_io import num_params
    from urlvr_jax.rl import setup

    cfg, mesh = model_config(config), shd.make_mesh(config.mesh or None, devices=devices)
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
    if "-h" in args or "--help" in args:
        print(USAGE)
        return 0
    devices = _pop_flag(args, "--devices")
    topology = _pop_flag(args, "--topology")
    size = _pop_flag(args, "--device-memory")
    budget_gb = parse_size(size) if size is not None else _pop_flag(args, "--device-memory-gb")
    wants_suggestion = "--suggest" in args
    args = [a for a in args if a != "--suggest"]
    if devices is not None and topology is not None:
        raise SystemExit("give --devices N (fake CPU devices) or --topology NAME (a slice's compiler), not both")
    if devices is not None:
        set_fake_devices(int(devices))
    if topology is not None:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")  # compile-only devices; nothing runs
    import jax

    from urlvr_jax.utils.config import apply_overrides, parse_cli

    config, extra = parse_cli(args, default_config="paper_qwen3_1p7b")
    if extra:
        raise SystemExit(f"unknown flags {extra}; plan flags are --devices N, --topology NAME, --device-memory SIZE "
                         "and --suggest")
    if devices is not None and jax.device_count() != int(devices):
        raise SystemExit(f"--devices {devices}: jax already has {jax.device_count()} devices (XLA_FLAGS="
                         f"{os.environ.get('XLA_FLAGS', '')!r}); unset XLA_FLAGS or match it")
    chip, target = None, None
    if topology is not None:
        target, chip = compile_devices(topology)
    if budget_gb is None:  # the chip's HBM, else 16 GiB
        budget_gb = chip.hbm_bytes / GiB if chip is not None else 16.0
    budget_gb = float(budget_gb)
    if wants_suggestion:
        overrides = suggest(config, budget_gb, devices=target)
        print(f"suggested for {budget_gb:.1f} GiB per device: {' '.join(overrides)}\n")
        config = apply_overrides(config, overrides)
    plan = make_plan(config, budget_gb, devices=target, chip=chip)
    print(format_plan(plan))
    return 0 if plan.fits() else 1
