"""The CPU default on several seeds: mean curves with 95% intervals, and the rise/fall claims per seed.

    python -m urlvr_jax.studies run seeds --seeds 0,1,2,3,4 [--out docs] [--no-train] [--config NAME] [key=value ...]
    python -m urlvr_jax.studies report seeds --seeds 0,1,2,3,4 [--out docs] [...]    # = run seeds --no-train

Each seed runs the CPU default (``urlvr_jax.studies.cpu_default``): a warm-started prior, then a
majority-vote arm and a ground-truth arm. Seed ``s`` sets both the RL seed (``seed``: sampling and the prompt
stream) and the warm start's seed (``warm_start.seed``: the supervised pool split, the label noise, the initial
weights), so every seed has its own prior: the prior is part of the experiment's randomness. Runs go to
``<run_dir>/seeds/seed_<s>/{prior, majority_vote, ground_truth}``; a seed whose arms have their final
checkpoints is skipped, an unfinished arm resumes from its last checkpoint.

After each seed it writes, from every finished seed: ``<out>/cpu_default_seeds.{png,json}`` and the section
of ``<out>/results.md`` between its markers (the rest of that page is kept). Per step: mean and 95%
t-interval over seeds of validation avg@k (both arms), the majority-vote reward accuracy and majority ratio.
Per seed: start, peak (value, step) and final validation avg@k, the Model Collapse Step, and the rise
``(peak - start) / SE(start)`` with the binomial standard error of the validation estimate,
``SE(p) = sqrt(p (1 - p) / (val_size * k))``; a seed "rose then fell" when the rise is at least
``RISE_SE`` standard errors and the final value is at least ``RISE_SE`` standard errors of the peak below it.
The peak is the maximum of many noisy evaluations, so it is biased upwards (about 2 SE for 30 evaluations
of a flat curve); the claims over seeds (:func:`claims`) therefore use paired per-seed differences at one
step, the mean curve's peak.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from typing import Mapping, Sequence

import numpy as np

from urlvr_jax.studies.cpu_default import arms_of, rise_then_fall
from urlvr_jax.studies.stats import band, binomial_se, collapse_step, parse_seeds, replace_section, series, t_interval
from urlvr_jax.toy.warm_start import arm_config, make_prior
from urlvr_jax.utils import multihost
from urlvr_jax.utils.config import apply_overrides, config_to_dict, parse_cli
from urlvr_jax.utils.metrics_log import read_metrics

ARMS = ("majority_vote", "ground_truth")
VAL = "val/avg@k"
# (arm, metric key, label) of every curve aggregated over seeds.
CURVES = (("majority_vote", VAL, "MV val avg@k"), ("ground_truth", VAL, "GT val avg@k"),
          ("majority_vote", "train/reward_accuracy", "MV reward accuracy"),
          ("majority_vote", "train/majority_ratio", "MV majority ratio"))
RISE_SE = 3.0
DISPLAY_KEYS = ("train.progress",)  # config keys that change no result: free to differ when resuming
SECTION_BEGIN, SECTION_END = "<!-- cpu_default_seeds:begin -->", "<!-- cpu_default_seeds:end -->"

Records = Sequence[Mapping[str, float]]


# ------------------------------------------------------------------ per seed and over seeds


def seed_summary(arms: Mapping[str, Records], n_val: int, threshold: float) -> dict:
    """One seed's numbers: start/peak/final of validation avg@k per arm, MV's rise in SE and its collapse step."""
    out = {}
    for arm, records in arms.items():
        r = rise_then_fall(records, VAL)
        if "peak" not in r:
            raise ValueError(f"{arm}: fewer than 3 validation points of {VAL}; cannot summarise the seed")
        out[arm] = {k: r[k] for k in ("start", "peak", "peak_step", "final", "final_step")}
    mv = out["majority_vote"]
    se_start, se_peak = binomial_se(mv["start"], n_val), binomial_se(mv["peak"], n_val)
    mv["rise_se"] = (mv["peak"] - mv["start"]) / se_start
    mv["fall_se"] = (mv["peak"] - mv["final"]) / se_peak
    mv["rose_then_fell"] = bool(mv["rise_se"] >= RISE_SE and mv["fall_se"] >= RISE_SE)
    mv["collapse_step"] = collapse_step(arms["majority_vote"], threshold)
    if "ground_truth" in arms:
        mv["gt_at_peak_step"] = series(arms["ground_truth"], VAL).get(mv["peak_step"])
        mv.update(tracking(series(arms["majority_vote"], VAL), series(arms["ground_truth"], VAL), mv["peak_step"],
                           n_val))
    return out


def tracking(mv: Mapping[int, float], gt: Mapping[int, float], peak_step: int, n_val: int) -> dict:
    """One seed's MV - GT at every validation step of its rise (after the start, up to its peak), each against the
    95% interval of a difference of two independent validation estimates, 1.96 sqrt(SE(mv)^2 + SE(gt)^2).
    ``tracks``: every step within it."""
    apart = [t for t in sorted(mv) if 0 < t <= peak_step and t in gt
             and abs(mv[t] - gt[t]) > 1.96 * math.hypot(binomial_se(mv[t], n_val), binomial_se(gt[t], n_val))]
    return {"gap_at_peak": mv[peak_step] - gt[peak_step] if peak_step in gt else None, "apart_steps": apart,
            "tracks": peak_step in gt and not apart}


def aggregate(records_by_seed: Mapping[int, Mapping[str, Records]], n_val: int, threshold: float) -> dict:
    """Per-seed summaries, per-step bands, the mean/interval of each per-seed number, and the claims."""
    seeds = sorted(records_by_seed)
    per_seed = {s: seed_summary(records_by_seed[s], n_val, threshold) for s in seeds}
    curves = {label: band([records_by_seed[s][arm] for s in seeds], key) for arm, key, label in CURVES
              if all(arm in records_by_seed[s] for s in seeds)}
    mv = [per_seed[s]["majority_vote"] for s in seeds]
    with_gt = all("ground_truth" in per_seed[s] for s in seeds)
    mean_curve = curves["MV val avg@k"]
    top = mean_curve["steps"][int(np.argmax(mean_curve["mean"]))]  # the mean curve's peak step
    for s, m in zip(seeds, mv):
        m["at_mean_peak"] = series(records_by_seed[s]["majority_vote"], VAL)[top]
        if with_gt:
            m["gt_at_mean_peak"] = series(records_by_seed[s]["ground_truth"], VAL).get(top)
    rise_gap = {}  # MV - GT at every validation step of the rise (after the start, up to the mean peak)
    if with_gt:
        vals = [{arm: series(records_by_seed[s][arm], VAL) for arm in ARMS} for s in seeds]
        for step in (t for t in mean_curve["steps"] if 0 < t <= top):
            pairs = [(v["majority_vote"].get(step), v["ground_truth"].get(step)) for v in vals]
            if all(None not in p for p in pairs):
                rise_gap[str(step)] = t_interval([a - b for a, b in pairs])
    collapsed = [m["collapse_step"] for m in mv if m["collapse_step"] is not None]
    over_seeds = {f"MV {k}": t_interval([m[k] for m in mv])
                  for k in ("start", "peak", "peak_step", "final", "rise_se", "at_mean_peak")}
    over_seeds["MV collapse step"] = t_interval(collapsed)
    if with_gt:
        over_seeds.update({f"GT {k}": t_interval([per_seed[s]["ground_truth"][k] for s in seeds])
                           for k in ("peak", "peak_step", "final")})
    summary = {"seeds": seeds, "n_val_samples": n_val, "collapse_threshold": threshold,
               "rise_threshold_se": RISE_SE, "mean_peak_step": top,
               "seeds_rose_then_fell": sum(m["rose_then_fell"] for m in mv), "seeds_collapsed": len(collapsed),
               "seeds_tracked": sum(bool(m.get("tracks")) for m in mv),
               "per_seed": {str(s): per_seed[s] for s in seeds}, "over_seeds": over_seeds, "curves": curves,
               "rise_gap": rise_gap}
    summary["claims"] = claims(summary)
    return summary


def claims(summary: dict) -> dict:
    """What the per-seed numbers of ``summary`` support, each as a 95% t-interval over seeds of a paired difference.

    * rise: MV validation avg@k at the mean curve's peak step minus its start (holds: the interval is above 0;
      the step is picked on the same runs, a mild upward bias);
    * fall: final minus that peak-step value (holds: the interval is below 0);
    * tracks ground truth: MV minus GT at that step (holds: the interval contains 0), and the same at every
      validation step of the rise (start excluded, up to that step; holds: every interval contains 0);
    * collapse: every seed reached the Model Collapse Step;
    * rose then fell by ``RISE_SE`` SE per seed: on at least 4 of 5 seeds (the issue's bar), scaled to the seeds run;
    * tracks ground truth per seed (:func:`tracking`): on at least 4 of 5 seeds, likewise.
    """
    mv = [summary["per_seed"][str(s)]["majority_vote"] for s in summary["seeds"]]
    rise = t_interval([m["at_mean_peak"] - m["start"] for m in mv])
    fall = t_interval([m["final"] - m["at_mean_peak"] for m in mv])
    out = {"rise": {**rise, "holds": rise["lo"] is not None and rise["lo"] > 0},
           "fall": {**fall, "holds": fall["hi"] is not None and fall["hi"] < 0},
           "collapse": {"seeds": summary["seeds_collapsed"], "holds": summary["seeds_collapsed"] == len(mv)}}
    if all(m.get("gt_at_mean_peak") is not None for m in mv):
        gap = t_interval([m["at_mean_peak"] - m["gt_at_mean_peak"] for m in mv])
        out["tracks_ground_truth"] = {**gap, "holds": gap["lo"] is not None and gap["lo"] <= 0 <= gap["hi"]}
    steps = summary.get("rise_gap", {})
    if steps:  # the same paired interval at every validation step of the rise: all must contain 0
        apart = [int(t) for t, g in steps.items() if g["lo"] is None or not g["lo"] <= 0 <= g["hi"]]
        out["tracks_during_rise"] = {"steps": [int(t) for t in steps], "apart": apart, "holds": not apart}
    if all("tracks" in m for m in mv):
        count = summary["seeds_tracked"]
        out["tracks_per_seed"] = {"seeds": count, "of": len(mv), "holds": count >= math.ceil(0.8 * len(mv))}
    count = summary["seeds_rose_then_fell"]
    out["rose_then_fell_per_seed"] = {"seeds": count, "of": len(mv), "holds": count >= math.ceil(0.8 * len(mv))}
    return out


# ------------------------------------------------------------------ runs

def seed_dir(config, seed: int) -> str:
    return os.path.join(config.run_dir, "seeds", f"seed_{seed}")


def seed_config(config, seed: int):
    """The CPU default config of one seed: its own RL seed, warm-start seed (its own prior) and run_dir."""
    return apply_overrides(config, [f"seed={seed}", f"warm_start.seed={seed}", f"run_dir={seed_dir(config, seed)}"])


def arm_steps(config, arm: str) -> int:
    return int(config.experiment.gt_steps or config.train.steps) if arm == "ground_truth" else int(config.train.steps)


def arm_finished(config, arm: str) -> bool:
    """True when the arm's run_dir holds a checkpoint of its last step."""
    ckpt_dir = os.path.join(config.run_dir, arm, "checkpoints")
    steps = [int(d) for d in os.listdir(ckpt_dir) if d.isdigit()] if os.path.isdir(ckpt_dir) else []
    return bool(steps) and max(steps) >= arm_steps(config, arm)


def run_seed(config, log=print) -> dict[str, list[dict]]:
    """Trains (or resumes) every unfinished arm of one seed's config; returns each arm's metrics records."""
    prior = None
    for arm in arms_of(config):
        if arm_finished(config, arm):
            continue
        from urlvr_jax.rl.loop import train

        prior = prior or multihost.primary_first(
            lambda: make_prior(config, os.path.join(config.run_dir, "prior"), log=log))
        log(f"--- seed {config.seed}: {arm} ---")
        train(arm_config(config, arm, prior, arm_steps(config, arm)))
    return {arm: read_metrics(os.path.join(config.run_dir, arm, "metrics.jsonl")) for arm in arms_of(config)}


def check_same_experiment(config, root: str) -> None:
    """Writes the experiment's config to ``root/config.json`` once; later calls must match it (common keys)."""
    path = os.path.join(root, "config.json")
    now = _flat(json.loads(json.dumps(config_to_dict(config))))
    if os.path.exists(path):
        with open(path) as f:
            before = _flat(json.load(f))
        changed = sorted(k for k in set(before) & set(now) if before[k] != now[k] and k not in DISPLAY_KEYS)
        if changed:
            raise SystemExit(f"{path}: the seeds there ran with another config ({', '.join(changed)} differ); "
                             f"use another run_dir or delete {root}")
    elif multihost.is_primary():
        os.makedirs(root, exist_ok=True)
        with open(path, "w") as f:
            json.dump(config_to_dict(config), f, indent=2)


def _flat(d: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, Mapping) else {f"{prefix}{k}": v})
    return out


# ------------------------------------------------------------------ outputs

PANELS = (("ground-truth accuracy (validation avg@k)", ["MV val avg@k", "GT val avg@k"]),
          ("MV reward accuracy", ["MV reward accuracy"]), ("MV majority ratio", ["MV majority ratio"]))


def plot_bands(summary: dict, records_by_seed: Mapping[int, Mapping[str, Records]], out_png: str, *,
               panels=PANELS, where: Mapping[str, tuple[str, str]] | None = None, title: str = "CPU default") -> str:
    """One panel per ``(title, curve labels)`` of ``panels`` (default: validation avg@k of both arms, MV reward
    accuracy, MV majority ratio): each curve's mean, 95% band and seeds; ``where`` maps a label to its
    (arm, metric key) (default: :data:`CURVES`)."""
    import matplotlib.pyplot as plt

    from urlvr_jax.utils.plots import save_figure  # (importing it selects the Agg backend)

    where = where or {label: (arm, key) for arm, key, label in CURVES}
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    collapse = summary["over_seeds"]["MV collapse step"]
    for ax, (heading, labels) in zip(axes[0], panels):
        for i, label in enumerate(l for l in labels if l in summary["curves"]):
            c, color = summary["curves"][label], f"C{i}"
            for s in summary["seeds"]:
                points = series(records_by_seed[s][where[label][0]], where[label][1])
                ax.plot(list(points), list(points.values()), color=color, alpha=0.18, linewidth=0.7)
            ax.plot(c["steps"], c["mean"], color=color, linewidth=1.8, label=f"{label} (mean of {c['n']})")
            if c["n"] > 1:
                # every curve is a rate: the band is drawn within [0, 1] (the JSON keeps the interval as computed)
                ax.fill_between(c["steps"], np.clip(c["lo"], 0, 1), np.clip(c["hi"], 0, 1), color=color, alpha=0.25,
                                linewidth=0)
        if collapse["mean"] is not None:
            ax.axvline(collapse["mean"], color="C3", linestyle="--", linewidth=1,
                       label=f"collapse step {collapse['mean']:.0f} (mean of {collapse['n']})")
            if collapse["lo"] is not None:
                ax.axvspan(collapse["lo"], collapse["hi"], color="C3", alpha=0.08, linewidth=0)
        ax.set_title(heading)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{title} over {len(summary['seeds'])} seeds: mean, 95% t-interval (band), each seed (thin)")
    return save_figure(fig, out_png, dpi=110)


def _fmt(x, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _interval(s: dict, digits: int = 3) -> str:
    if s["lo"] is None:
        return f"{_fmt(s['mean'], digits)} (n={s['n']})"
    return f"{s['mean']:.{digits}f} [{s['lo']:.{digits}f}, {s['hi']:.{digits}f}]"


def _apart(mv: dict) -> str:
    if "tracks" not in mv:
        return "—"
    return "none (tracks)" if mv["tracks"] else ", ".join(map(str, mv["apart_steps"]))


def _yes(claim: dict) -> str:
    return "yes" if claim["holds"] else "**no**"


def markdown(summary: dict, command: str, requested: Sequence[int], figure: str, *, title: str = "CPU default",
             about: str = "Each seed has its own warm-started prior and RL seed.",
             section: tuple[str, str] = (SECTION_BEGIN, SECTION_END)) -> str:
    """The results section (between the ``section`` markers): command, figure, per-seed table and the means with
    95% intervals."""
    seeds = summary["seeds"]
    lines = [section[0], f"## {title} over seeds", "",
             f"Command: `{command}`", ""]
    if len(seeds) < len(requested):
        lines += [f"**Partial: {len(seeds)} of {len(requested)} seeds finished** ({', '.join(map(str, seeds))}).", ""]
    lines += [f"![{title} over seeds]({figure})", "",
              f"{about} Validation: {summary['n_val_samples']} samples "
              f"(val_size × k); SE = sqrt(p(1-p)/{summary['n_val_samples']}). Rise = (peak − start) / SE(start); "
              f"'rose then fell': rise ≥ {RISE_SE:g} SE and final ≤ peak − {RISE_SE:g} SE(peak). "
              f"Collapse step: first step with MV reward accuracy < {summary['collapse_threshold']:g}. "
              f"A seed's peak is the best of {len(summary['curves']['MV val avg@k']['steps'])} noisy evaluations, "
              "so its rise is biased upwards (by up to ~2 SE on a flat curve); "
              "the claims below compare every seed at one step instead.", "",
              "| seed | MV start | MV peak (step) | MV final | rise (SE) | rose then fell | collapse step "
              "| GT at MV peak step | MV − GT apart at (steps of the rise) | GT peak (step) | GT final |",
              "|" + "---|" * 11]
    for s in seeds:
        mv, gt = summary["per_seed"][str(s)]["majority_vote"], summary["per_seed"][str(s)].get("ground_truth", {})
        lines.append(f"| {s} | {mv['start']:.3f} | {mv['peak']:.3f} ({mv['peak_step']}) | {mv['final']:.3f} | "
                     f"{mv['rise_se']:.1f} | {'yes' if mv['rose_then_fell'] else 'no'} | "
                     f"{_fmt(mv['collapse_step'])} | {_fmt(mv.get('gt_at_peak_step'))} | {_apart(mv)} | "
                     f"{_fmt(gt.get('peak'))} ({_fmt(gt.get('peak_step'))}) | {_fmt(gt.get('final'))} |")
    o = summary["over_seeds"]
    lines += ["", f"Rose by ≥ {RISE_SE:g} SE then fell: **{summary['seeds_rose_then_fell']} of {len(seeds)}** seeds; "
              f"collapsed: {summary['seeds_collapsed']} of {len(seeds)}; tracked ground truth through the rise: "
              f"{summary['seeds_tracked']} of {len(seeds)}.", "",
              "| over seeds (mean [95% t-interval]) | value |", "|---|---|"]
    for name, stat in o.items():
        if "mean" in stat:
            digits = 1 if name.endswith(("peak_step", "collapse step", "rise_se")) else 3
            lines.append(f"| {name} | {_interval(stat, digits)} |")
    c, step = summary["claims"], summary["mean_peak_step"]
    lines += ["", f"Claims (95% t-interval over seeds of the paired per-seed difference; step {step} is the "
              "mean MV curve's peak):", "",
              "| claim | interval | holds |", "|---|---|---|",
              f"| rise: MV at step {step} − MV start > 0 | {_interval(c['rise'])} | {_yes(c['rise'])} |",
              f"| fall: MV final − MV at step {step} < 0 | {_interval(c['fall'])} | {_yes(c['fall'])} |"]
    if "tracks_ground_truth" in c:
        lines.append(f"| MV tracks GT: MV − GT at step {step} contains 0 | {_interval(c['tracks_ground_truth'])} "
                     f"| {_yes(c['tracks_ground_truth'])} |")
    if "tracks_during_rise" in c:
        r, gaps = c["tracks_during_rise"], summary["rise_gap"]
        each = "; ".join(f"{t}: {_interval(gaps[str(t)])}" for t in r["steps"])
        lines.append(f"| MV tracks GT at every step of the rise (MV − GT contains 0 at each) | {each} | "
                     f"{_yes(r)}{'' if r['holds'] else ' (apart at ' + ', '.join(map(str, r['apart'])) + ')'} |")
    if "tracks_per_seed" in c:
        lines.append(f"| tracks GT on ≥ 80% of seeds (per seed: MV − GT within 1.96 √(SE_MV² + SE_GT²) at every "
                     f"step of its rise) | {c['tracks_per_seed']['seeds']} of {len(seeds)} | "
                     f"{_yes(c['tracks_per_seed'])} |")
    lines += [f"| every seed collapses | {c['collapse']['seeds']} of {len(seeds)} | {_yes(c['collapse'])} |",
              f"| rose ≥ {RISE_SE:g} SE then fell on ≥ 80% of seeds | {c['rose_then_fell_per_seed']['seeds']} of "
              f"{len(seeds)} | {_yes(c['rose_then_fell_per_seed'])} |"]
    return "\n".join(lines + ["", section[1]])


def write_section(path: str, section: str) -> None:
    """Replaces this module's section of the markdown page ``path`` (or appends it), keeping the rest."""
    replace_section(path, section, SECTION_BEGIN, SECTION_END, "# Results")


def write_outputs(summary: dict, records_by_seed, out: str, command: str, requested: Sequence[int]) -> None:
    figure = plot_bands(summary, records_by_seed, os.path.join(out, "cpu_default_seeds.png"))
    with open(os.path.join(out, "cpu_default_seeds.json"), "w") as f:
        json.dump({"command": command, "requested_seeds": list(requested), **summary}, f, indent=1)
    write_section(os.path.join(out, "results.md"), markdown(summary, command, requested, os.path.basename(figure)))


# ------------------------------------------------------------------ CLI

def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m urlvr_jax.studies run seeds", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument("--out", default="docs", help="folder of the figure, JSON and results.md")
    parser.add_argument("--no-train", action="store_true",
                        help="train nothing: summarise the seeds whose arms have finished (while a run goes on)")
    args, rest = parser.parse_known_args(argv)
    config, extra = parse_cli(rest, default_config="cpu_default")
    if extra:
        raise SystemExit(f"unknown flags {extra}; overrides are written key=value")
    if "majority_vote" not in arms_of(config):
        raise SystemExit(f"experiment.arms={config.experiment.arms!r} must include majority_vote")
    requested = parse_seeds(args.seeds)
    # the command that makes the results (--no-train only re-reads them)
    command = shlex.join(["python", "-m", "urlvr_jax.studies", "run", "seeds", *(a for a in argv if a != "--no-train")])
    check_same_experiment(config, os.path.join(config.run_dir, "seeds"))
    n_val = int(config.data.val_size * config.val.k)
    say = print if multihost.is_primary() else (lambda *args: None)
    records_by_seed: dict[int, dict] = {}
    for seed in requested:
        t0, one = time.time(), seed_config(config, seed)
        if args.no_train and not all(arm_finished(one, arm) for arm in arms_of(one)):
            continue
        records_by_seed[seed] = run_seed(one, log=say)
        say(f"seed {seed} ready ({time.time() - t0:.0f}s; finished arms are only read)")
        summary = aggregate(records_by_seed, n_val, config.train.collapse_threshold)
        if multihost.is_primary():
            os.makedirs(args.out, exist_ok=True)
            write_outputs(summary, records_by_seed, args.out, command, requested)
    if not records_by_seed:
        raise SystemExit(f"--no-train: no seed of {args.seeds} has finished arms under {config.run_dir}/seeds")
    keys = ("seeds", "seeds_rose_then_fell", "seeds_collapsed", "seeds_tracked", "per_seed", "over_seeds", "claims")
    say(json.dumps({k: summary[k] for k in keys}, indent=1))
    return 0


def report_main(argv: list[str]) -> int:
    """``report seeds``: the figure, JSON and results.md section again from the finished seeds, training nothing."""
    return main([*argv, "--no-train"])
