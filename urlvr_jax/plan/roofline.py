"""A step's roofline on a ``--topology``'s chip: the least time its compiled programs can take.

Each program's time per run is at least ``max(FLOPs / peak bf16 FLOP/s, HBM bytes / HBM bandwidth)`` with its
per-device FLOPs and bytes from the HLO walk (:mod:`urlvr_jax.plan.hlo_cost`: loop bodies times their trips, the
decode loops at their worst case, every row to its length limit, splash kernels counted from their shapes). A step
runs the rollout (each chunk's prefill and decode, or the continuous program once), the log-prob pass when the
config has one, and the train step; validation (every ``val.every`` steps) is left out. The step's model FLOPs,
``6 N`` per trained token plus ``2 N`` per generated or prefilled token (N parameters), over the chips' peak times
the step's time bound the MFU from above. Collectives (their time over the interconnect) are not in the bound.
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class PhaseTime:
    seconds: float  # per run
    runs: int  # per step
    bound: str  # "compute" or "memory"


@dataclasses.dataclass(frozen=True)
class Roofline:
    phases: dict[str, PhaseTime]
    step_seconds: float
    generated_per_chip_s: float  # generated tokens per second per chip
    trained_per_chip_s: float
    mfu_bound: float


def program_seconds(cost, chip) -> tuple[float, str]:
    """(the least seconds one run of a program of ``cost`` takes on ``chip``, which of its limits binds)."""
    compute, memory = cost.total_flops / chip.peak_flops, cost.bytes / chip.hbm_bandwidth
    return max(compute, memory), "compute" if compute >= memory else "memory"


def roofline(plan) -> Roofline | None:
    """The plan's :class:`Roofline` on its chip; None without a chip or with a program refused or not measured."""
    programs = plan.programs.values()
    if plan.chip is None or any(p.error or p.cost is None for p in programs):
        return None
    phases = {}
    for p in programs:
        seconds, bound = program_seconds(p.cost, plan.chip)
        phases[p.name] = PhaseTime(seconds, plan.runs.get(p.name, 0), bound)
    step = sum(t.seconds * t.runs for t in phases.values())
    chips = math.prod(plan.mesh.values())
    tokens = plan.tokens
    model_flops = plan.num_params * (6 * tokens["trained"] + 2 * (tokens["generated"] + tokens["prefilled"]))
    return Roofline(phases, step, tokens["generated"] / step / chips, tokens["trained"] / step / chips,
                    model_flops / (chips * plan.chip.peak_flops * step))
