"""Phase diagram of the coupled toy: where does majority-vote GRPO rise then fall?

    python -m urlvr_jax.theory.phase [--quick]   # prints the table, writes docs/theory_phase.{png,json}

Grid: mu (mean prior logit of the correct answer), kappa (initial shared bias on the default answer, the coupling
that every prompt shares) and the pool size, several seeds per cell, on `COUPLED_DEFAULT` otherwise. As in
benchmarks/theory_sweeps.py, every (mu, kappa) prior of one pool and every seed run in one vmapped call of the
shared jitted runner (`batched_train`): one compile per pool size. Per seed: the module's `rise_then_fall`
criterion on the pool accuracy curve (the same curve `check_coupling` uses) and the Model Collapse Step (first step
with majority-vote reward accuracy < 1%). Per cell also the initial aligned share and default-answer share (share
of prompts whose initial mode is the correct / the default answer; `gap` = their difference, which places the band)
and the drift of the shared default-answer bias b[0] (final minus kappa: which side won the tug of war over it).
See docs/theory_phase.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from urlvr_jax.theory.checks import RISE_FALL_MU
from urlvr_jax.theory.coupled import COUPLED_DEFAULT, KAPPA, NUM_ANSWERS, POOL, rise_then_fall
from urlvr_jax.theory.dynamics import GRPOConfig, batched_train, collapse_step, stack_priors
from urlvr_jax.theory.toys import DEFAULT_ANSWER, answer_marginal, coupled_prior, init_params, log_policy

FULL = {"mus": tuple(float(x) for x in np.arange(0.5, 4.01, 0.25)),
        "kappas": tuple(float(x) for x in np.arange(1.0, 4.01, 0.25)), "pools": (64, 256, 1024), "seeds": 5}
QUICK = {"mus": (0.5, 1.0, 1.5, 1.75, 2.0, 2.5, 3.0), "kappas": (1.0, 2.0, 3.0), "pools": (256, 1024), "seeds": 2}
DEFAULT = {"mu": RISE_FALL_MU, "kappa": KAPPA, "pool": POOL}
REGIONS = {"rise-then-fall": "F", "no rise (collapse)": "n", "rise without collapse": "r", "mixed": "m"}
DOCS = Path(__file__).resolve().parents[2] / "docs"


def region(cell: dict) -> str:
    """Majority outcome over seeds: rise-then-fall; no rise (and collapse); rise without collapse; else mixed."""
    if cell["rise_fall_frac"] >= 0.5:
        return "rise-then-fall"
    if cell["collapse_frac"] >= 0.5 and cell["rose_frac"] < 0.5:
        return "no rise (collapse)"
    if cell["collapse_frac"] < 0.5 and cell["rose_frac"] >= 0.5:
        return "rise without collapse"
    return "mixed"


def _r(x) -> float:
    return round(float(x), 4)


def _cell(acc: np.ndarray, ra: np.ndarray, b0_drift: np.ndarray, steps: int) -> dict:
    """Statistics of one cell from per-seed curves acc, ra [S, steps] and final b[0] - kappa [S]."""
    rf = [rise_then_fall(a) for a in acc]
    cs = np.asarray(jax.vmap(collapse_step)(jnp.asarray(ra)))
    collapsed = cs < steps
    return {"rise_fall_frac": _r(np.mean([r[0] for r in rf])),
            "rose_frac": _r(np.mean([r[1] >= 0.05 for r in rf])),  # rise_then_fall's min_rise
            "mean_rise": _r(np.mean([r[1] for r in rf])), "mean_fall": _r(np.mean([r[3] for r in rf])),
            "mean_peak_step": _r(np.mean([r[2] for r in rf])), "final_accuracy": _r(acc[:, -1].mean()),
            "collapse_frac": _r(collapsed.mean()),
            "mean_collapse_step": _r(cs[collapsed].mean()) if collapsed.any() else None,
            "b0_drift": _r(b0_drift.mean())}


def initial_shares(prior) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per stacked prior: initial pass@1, share of prompts whose initial mode is correct (aligned) and share whose
    initial mode is the default answer."""
    def one(p):
        pa = answer_marginal(*log_policy(init_params(p), p))
        mode = jnp.argmax(pa, -1)
        return (jnp.take_along_axis(pa, p.c[:, None], -1).mean(), (mode == p.c).mean(),
                (mode == DEFAULT_ANSWER).mean())
    return tuple(np.asarray(x) for x in jax.vmap(one)(prior))


def phase_diagram(mus: Sequence[float], kappas: Sequence[float], pools: Sequence[int], seeds: int,
                  config: GRPOConfig = COUPLED_DEFAULT, prior_seed: int = 1) -> dict:
    """Majority-vote GRPO on the coupled toy over mus x kappas x pools, `seeds` runs per cell.

    Returns a JSON-ready dict: the grid, the default setting, and one dict per cell (pool, mu, kappa, initial
    pass@1 / aligned share / default-answer share and their `gap`, `_cell`'s statistics, `region`).
    """
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    cells = []
    for pool in pools:
        grid = [(float(mu), float(kappa)) for mu in mus for kappa in kappas]
        key = jax.random.PRNGKey(prior_seed)  # as `coupled_priors`: only mu and kappa differ between cells
        priors = stack_priors([coupled_prior(key, pool, NUM_ANSWERS, mu, kappa) for mu, kappa in grid])
        params, m = batched_train(config)(keys, priors)
        acc, ra = np.asarray(m.accuracy), np.asarray(m.reward_accuracy)  # [cells, seeds, steps]
        b0 = np.asarray(params.b[..., DEFAULT_ANSWER])  # [cells, seeds]
        acc0, aligned, default = initial_shares(priors)
        for i, (mu, kappa) in enumerate(grid):
            cell = {"pool": int(pool), "mu": mu, "kappa": kappa, "acc0": _r(acc0[i]),
                    "aligned": _r(aligned[i]), "default_share": _r(default[i]),
                    **_cell(acc[i], ra[i], b0[i] - kappa, config.steps)}
            cell["gap"] = _r(cell["aligned"] - cell["default_share"])  # aligned minus default-answer share
            cell["region"] = region(cell)
            cells.append(cell)
    return {"grid": {"mus": [float(x) for x in mus], "kappas": [float(x) for x in kappas],
                     "pools": [int(p) for p in pools], "seeds": int(seeds), "steps": int(config.steps)},
            "default": DEFAULT, "cells": cells}


def find_cell(result: dict, pool: int, mu: float, kappa: float) -> dict:
    """The cell of `result` at (pool, mu, kappa)."""
    return next(c for c in result["cells"] if c["pool"] == pool and np.isclose(c["mu"], mu)
                and np.isclose(c["kappa"], kappa))


def fraction_map(result: dict, pool: int, key: str = "rise_fall_frac") -> np.ndarray:
    """[mus, kappas] array of one statistic for one pool."""
    g = result["grid"]
    return np.array([[find_cell(result, pool, mu, k)[key] for k in g["kappas"]] for mu in g["mus"]])


def format_table(result: dict) -> str:
    """Per pool: mu x kappa map (region letter + rise-then-fall fraction), region counts, and the rise-then-fall
    cells with their mean rise and collapse statistics."""
    g, lines = result["grid"], []
    legend = ", ".join(f"{v} = {k}" for k, v in REGIONS.items())
    lines.append(f"{g['seeds']} seeds x {g['steps']} steps per cell; cell = region letter + rise-then-fall fraction "
                 f"({legend}); * = default setting")
    for pool in g["pools"]:
        lines.append(f"\npool {pool}: rows mu, columns kappa")
        lines.append("  mu \\ k " + "".join(f"{k:>7.2f}" for k in g["kappas"]))
        for mu in g["mus"]:
            row = ""
            for k in g["kappas"]:
                c = find_cell(result, pool, mu, k)
                star = "*" if (pool, mu, k) == (DEFAULT["pool"], DEFAULT["mu"], DEFAULT["kappa"]) else " "
                row += f" {star}{REGIONS[c['region']]}{c['rise_fall_frac']:4.2f}"
            lines.append(f"  {mu:6.2f} " + row)
        cells = [c for c in result["cells"] if c["pool"] == pool]
        counts = {r: sum(c["region"] == r for c in cells) for r in REGIONS}
        lines.append("  regions: " + ", ".join(f"{r} {n}" for r, n in counts.items()))
        for r in REGIONS:
            sel = [c for c in cells if c["region"] == r]
            if sel:
                span = lambda key: f"{min(c[key] for c in sel):+.2f}..{max(c[key] for c in sel):+.2f}"
                mcs = [c["mean_collapse_step"] for c in sel if c["mean_collapse_step"] is not None]
                lines.append(f"    {r:22s} aligned - default share {span('gap')}, mean rise {span('mean_rise')}, "
                             f"b0 drift {span('b0_drift')}, MCS " + (f"{min(mcs):.0f}..{max(mcs):.0f}" if mcs else "-"))
        band = [c for c in cells if c["region"] == "rise-then-fall"]
        if band:
            lines.append("   mu     k  aligned  default  rise-fall  mean rise  mean fall  collapsed  MCS   b0 drift")
        for c in band:
            mcs = f"{c['mean_collapse_step']:5.0f}" if c["mean_collapse_step"] is not None else "    -"
            lines.append(f"  {c['mu']:4.2f}  {c['kappa']:4.2f}  {c['aligned']:7.2f}  {c['default_share']:7.2f}  "
                         f"{c['rise_fall_frac']:9.2f}  {c['mean_rise']:+9.3f}  {c['mean_fall']:9.3f}  "
                         f"{c['collapse_frac']:9.2f}  {mcs}  {c['b0_drift']:+8.2f}")
    return "\n".join(lines)


def _edges(x: np.ndarray) -> np.ndarray:
    """Cell edges of a (possibly uneven) grid: midpoints, and half a gap beyond each end."""
    if len(x) == 1:
        return np.array([x[0] - 0.5, x[0] + 0.5])
    mid = (x[1:] + x[:-1]) / 2
    return np.concatenate([[2 * x[0] - mid[0]], mid, [2 * x[-1] - mid[-1]]])


def figure(result: dict):
    """One heat map per pool of the rise-then-fall fraction over (mu, kappa); letters mark the other regions and a
    star the default setting (filled on the default pool). Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    g = result["grid"]
    mus, kappas = np.asarray(g["mus"]), np.asarray(g["kappas"])
    fig, axes = plt.subplots(1, len(g["pools"]), figsize=(4.2 * len(g["pools"]) + 0.8, 4.2), squeeze=False,
                             sharey=True)
    for ax, pool in zip(axes[0], g["pools"]):
        frac = fraction_map(result, pool)
        im = ax.pcolormesh(_edges(mus), _edges(kappas), frac.T, cmap="viridis", vmin=0, vmax=1)
        for i, mu in enumerate(mus):
            for j, k in enumerate(kappas):
                letter = REGIONS[find_cell(result, pool, mu, k)["region"]]
                if letter != "F":
                    ax.text(mu, k, letter, ha="center", va="center", fontsize=6, color="white")
        marker = dict(marker="*", s=180, facecolor="red" if pool == DEFAULT["pool"] else "none", edgecolor="red")
        ax.scatter([DEFAULT["mu"]], [DEFAULT["kappa"]], **marker)
        ax.set_title(f"pool {pool}" + (" (default)" if pool == DEFAULT["pool"] else ""))
        ax.set_xlabel("mu (mean logit of the right answer)")
    axes[0, 0].set_ylabel("kappa (shared default-answer bias)")
    fig.colorbar(im, ax=axes[0].tolist(), label="fraction of seeds rising then falling")
    fig.suptitle(f"Coupled toy, majority-vote GRPO ({g['seeds']} seeds x {g['steps']} steps per cell); "
                 "n = no rise (collapse), r = rise without collapse, m = mixed; star = default", fontsize=9)
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small grid (2 pools, 2 seeds)")
    parser.add_argument("--out", default=None, help="path stem of the .png and .json (default: docs/theory_phase; "
                        "with --quick, theory_phase_quick in the temp directory, so the full run's files stay)")
    args = parser.parse_args()
    grid = QUICK if args.quick else FULL
    stem = Path(tempfile.gettempdir()) / "theory_phase_quick" if args.quick else DOCS / "theory_phase"
    out = Path(args.out) if args.out else stem
    t0, c0 = time.perf_counter(), time.process_time()
    result = phase_diagram(**grid)
    result["seconds"] = {"wall": round(time.perf_counter() - t0, 1), "cpu": round(time.process_time() - c0, 1)}
    print(format_table(result))
    d = find_cell(result, DEFAULT["pool"], DEFAULT["mu"], DEFAULT["kappa"])  # both grids contain it
    print(f"\ndefault (mu={d['mu']}, kappa={d['kappa']}, pool {d['pool']}): {d['region']}, rise-then-fall in "
          f"{d['rise_fall_frac']:.0%} of seeds, mean rise {d['mean_rise']:+.3f}, collapse in "
          f"{d['collapse_frac']:.0%} (mean MCS {d['mean_collapse_step']})")
    out.parent.mkdir(parents=True, exist_ok=True)
    head = json.dumps({k: v for k, v in result.items() if k != "cells"})[:-1]  # one cell per line
    out.with_suffix(".json").write_text(head + ', "cells": [\n' + ",\n".join(json.dumps(c) for c in result["cells"])
                                        + "\n]}\n")
    import matplotlib
    matplotlib.use("Agg")
    figure(result).savefig(out.with_suffix(".png"), dpi=120, bbox_inches="tight")
    print(f"\nwrote {out.with_suffix('.png')} and {out.with_suffix('.json')} "
          f"({result['seconds']['wall']:.0f} s wall, {result['seconds']['cpu']:.0f} s CPU)")


if __name__ == "__main__":
    main()
