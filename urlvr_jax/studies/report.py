"""A study's report: every arm's numbers over its seeds with 95% t-intervals, a table, a figure and a docs page.

    python -m urlvr_jax.studies report STUDY [--scale toy] [--root runs/studies] [--out docs/studies]

Reads the finished runs (``study_done.json``) under ``<root>/<study>/<scale>/<arm>/seed_<s>/metrics.jsonl`` and
writes ``<out>/<study>_<scale>.json`` (every number), ``.png`` (mean curves with 95% bands, one column per group
of arms: the reward family in ``methods``, the knob in ``sweep``) and the generated section of ``.md`` (the rest
of that page, hand-written findings, is kept).

Per seed: validation avg@k at step 0, at the step where the arm's mean curve peaks, and at the end; the *fall step*,
the first validation step after the seed's peak whose avg@k is below the start (when accuracy is back under where it
began: a label-based timing that every method has); the Model Collapse Step (first step with training reward
accuracy below ``THRESHOLD``) or, where there is none, the lowest reward accuracy reached, for rewards that are 0 or
1 (``BINARY_REWARDS``: reward accuracy, proxy == ground truth, means nothing for a real-valued reward such as
self-certainty or a cluster share); and the failure-mode metrics (response length, repeated 4-grams, distinct answers per
prompt) averaged over the first and the last ``TAIL`` of the training steps. Over seeds: the mean and 95%
t-interval of each, the paired differences peak - start and final - peak, and how many seeds collapsed.
"""

from __future__ import annotations

import json
import os
import re
from typing import Mapping

import numpy as np

from urlvr_jax.studies.stats import Records, band, collapse_step, replace_section, series, t_interval
from urlvr_jax.studies.tables import study_runs

VAL, REWARD_ACCURACY = "val/avg@k", "train/reward_accuracy"
FAILURE_KEYS = {"response length": "train/response_length", "repetition": "train/repetition",
                "distinct answers": "train/distinct_answers"}
# The reward against the truth, first / last 10% of the steps (in the JSON): how often the label-free reward says 1,
# how often the answer is right, and how often the two agree.
REWARD_KEYS = {"proxy reward": "train/proxy_reward", "ground-truth reward": "train/ground_truth_reward",
               "reward accuracy": "train/reward_accuracy"}
THRESHOLD = 0.01  # the paper's Model Collapse Step: reward accuracy below 1%
BINARY_REWARDS = frozenset({"majority_vote", "srt_threshold", "co_rewarding_teacher", "ground_truth", "countdown",
                            "self_verify", "format"})
TAIL = 0.1
GROUP_BY = {"methods": "family", "sweep": "knob"}
# (title, metric, (low, high) the values lie in: bands are clipped to it)
ROWS = (("validation accuracy (avg@k)", VAL, (0.0, 1.0)), ("reward accuracy (0/1 rewards)", REWARD_ACCURACY, (0.0, 1.0)),
        ("distinct answers per prompt", "train/distinct_answers", (0.0, None)))


def page_name(study: str, scale: str) -> str:
    return f"{study}_{scale}"


def arm_reward(root: str, study: str, scale: str, arm: str, seed: int) -> str:
    """The ``reward.name`` a run trained with (from its config.json)."""
    with open(os.path.join(root, study, scale, arm, f"seed_{seed}", "config.json")) as f:
        return json.load(f)["reward"]["name"]


def finished_runs(root: str, study: str, scale: str) -> dict[str, dict[int, list[dict]]]:
    """``{arm: {seed: metrics records}}`` of the study's finished runs, arms in the study table's order."""
    from urlvr_jax.utils.metrics_log import read_metrics

    out: dict[str, dict[int, list[dict]]] = {}
    for arm in dict.fromkeys(r.name for r in study_runs(study, scale)):
        arm_dir = os.path.join(root, study, scale, arm)
        seeds = sorted(int(m.group(1)) for d in (os.listdir(arm_dir) if os.path.isdir(arm_dir) else [])
                       if (m := re.fullmatch(r"seed_(\d+)", d)) and os.path.exists(os.path.join(arm_dir, d,
                                                                                            "study_done.json")))
        if seeds:
            out[arm] = {s: read_metrics(os.path.join(arm_dir, f"seed_{s}", "metrics.jsonl")) for s in seeds}
    return out


def _window_mean(records: Records, key: str, last: bool) -> float | None:
    points = list(series(records, key).values())
    if not points:
        return None
    n = max(1, int(round(TAIL * len(points))))
    return float(np.mean(points[-n:] if last else points[:n]))


def fall_step(val: Mapping[int, float]) -> int | None:
    """The first step after the peak of ``val`` ({step: avg@k}) whose value is below the first one, or None."""
    if len(val) < 2:
        return None
    steps = sorted(val)
    top = max(steps, key=lambda s: (val[s], -s))
    return next((s for s in steps if s > top and val[s] < val[steps[0]]), None)


def seed_numbers(records: Records, peak_step: int | None, binary: bool = True) -> dict:
    """One seed's numbers (see the module docstring); ``peak_step``: the arm's mean-curve peak step; ``binary``:
    the reward is 0/1, so reward accuracy and the collapse step mean something."""
    val, accuracy = series(records, VAL), series(records, REWARD_ACCURACY)
    out = {"steps": max((int(r["step"]) for r in records), default=0),
           "val_start": val.get(min(val)) if val else None, "val_final": val[max(val)] if val else None,
           "val_at_peak": val.get(peak_step) if peak_step is not None else None, "fall_step": fall_step(val),
           "collapse_step": collapse_step(records, THRESHOLD) if binary else None,
           "min_reward_accuracy": min(accuracy.values()) if accuracy and binary else None}
    for name, key in {**FAILURE_KEYS, **REWARD_KEYS}.items():
        out[f"{name} start"], out[f"{name} final"] = _window_mean(records, key, False), _window_mean(records, key, True)
    return out


def _difference(per_seed: list[dict], a: str, b: str) -> dict:
    return t_interval([s[a] - s[b] for s in per_seed if s[a] is not None and s[b] is not None])


def arm_summary(records_by_seed: Mapping[int, Records], labels: Mapping[str, str], reward: str = "") -> dict:
    """Numbers over the seeds of one arm: per-seed values, the mean curve's peak, intervals, collapses."""
    curve = band(list(records_by_seed.values()), VAL)
    peak_step = curve["steps"][int(np.argmax(curve["mean"]))] if curve["steps"] else None
    binary = all(part.partition(":")[0] in BINARY_REWARDS for part in reward.split(",")) if reward else True
    per_seed = {s: seed_numbers(r, peak_step, binary) for s, r in sorted(records_by_seed.items())}
    values = list(per_seed.values())
    keys = [k for k in values[0] if k not in ("collapse_step", "fall_step", "steps")]
    collapsed = [v["collapse_step"] for v in values if v["collapse_step"] is not None]
    fell = [v["fall_step"] for v in values if v["fall_step"] is not None]
    return {"labels": dict(labels), "reward": reward, "binary_reward": binary, "seeds": sorted(per_seed),
            "steps": max(v["steps"] for v in values), "peak_step": peak_step,
            "fell": len(fell), "fall_step": t_interval(fell),
            "collapsed": len(collapsed), "collapse_step": t_interval(collapsed),
            "over_seeds": {k: t_interval([v[k] for v in values]) for k in keys},
            "rise": _difference(values, "val_at_peak", "val_start"),
            "fall": _difference(values, "val_final", "val_at_peak"),
            "per_seed": {str(s): v for s, v in per_seed.items()}}


# ---------------------------------------------------------------------------------------------- outputs

def _num(x, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _ci(s: dict, digits: int = 3) -> str:
    if s["mean"] is None:
        return "—"
    if s["lo"] is None:
        return f"{s['mean']:.{digits}f}"
    return f"{s['mean']:.{digits}f} [{s['lo']:.{digits}f}, {s['hi']:.{digits}f}]"


def _collapse(arm: dict) -> str:
    n = len(arm["seeds"])
    if not arm["binary_reward"]:
        return "n/a (real-valued reward)"
    if not arm["collapsed"]:
        low = arm["over_seeds"]["min_reward_accuracy"]["mean"]
        return f"none by step {arm['steps']} (0/{n}; min reward acc. {_num(low, 2)})"
    return f"{_ci(arm['collapse_step'], 0)} ({arm['collapsed']}/{n})"


def table(summary: dict) -> str:
    """The markdown table of a report: one row per arm."""
    cols = ["arm", "seeds", "val start", "val at peak (step)", "val final", "peak − start", "final − peak",
            "fall step (fell/seeds)", "collapse step (collapsed/seeds)", "length start → final", "repetition final", "distinct answers start → final"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for name, arm in summary["arms"].items():
        o = arm["over_seeds"]
        lines.append("| " + " | ".join([
            name, str(len(arm["seeds"])), _ci(o["val_start"]), f"{_ci(o['val_at_peak'])} ({arm['peak_step']})",
            _ci(o["val_final"]), _ci(arm["rise"]), _ci(arm["fall"]),
            f"{_ci(arm['fall_step'], 0)} ({arm['fell']}/{len(arm['seeds'])})", _collapse(arm),
            f"{_num(o['response length start']['mean'], 1)} → {_num(o['response length final']['mean'], 1)}",
            _num(o["repetition final"]["mean"]),
            f"{_num(o['distinct answers start']['mean'], 2)} → {_num(o['distinct answers final']['mean'], 2)}"]) + " |")
    return "\n".join(lines)


def plot(summary: dict, runs: Mapping[str, Mapping[int, Records]], out_png: str) -> str:
    """Mean over seeds (line) and 95% t-band per arm; rows: ``ROWS``, columns: groups of arms."""
    import matplotlib.pyplot as plt

    from urlvr_jax.utils.plots import save_figure  # (importing it selects the Agg backend)

    by = GROUP_BY.get(summary["study"])
    groups: dict[str, list[str]] = {}
    reference = [n for n, arm in summary["arms"].items() if arm["labels"].get("method") == "ground_truth"]
    for name, arm in summary["arms"].items():
        if name not in reference:
            groups.setdefault(arm["labels"].get(by, "all") if by else "all", []).append(name)
    groups = groups or {"all": []}
    rows = [row for row in ROWS if any(row[1] in r for seeds in runs.values() for rs in seeds.values() for r in rs)]
    fig, axes = plt.subplots(len(rows), len(groups), figsize=(4.6 * len(groups), 3.2 * len(rows)), squeeze=False)
    for col, (group, names) in enumerate(groups.items()):
        for row, (title, key, (low, high)) in enumerate(rows):
            ax = axes[row][col]
            # ground truth (the reference every intrinsic reward is read against) in every column, in black
            for i, name in enumerate(names + reference):
                b = band(list(runs[name].values()), key)
                if not b["steps"] or (key == REWARD_ACCURACY and not summary["arms"][name]["binary_reward"]):
                    continue
                style = "--" if summary["arms"][name]["labels"].get("prior", "A") != "A" else "-"
                color = "k" if name in reference else f"C{i % 10}"
                ax.plot(b["steps"], b["mean"], style, color=color, linewidth=1.4, label=name)
                if b["n"] > 1:
                    ax.fill_between(b["steps"], np.clip(b["lo"], low, high), np.clip(b["hi"], low, high), color=color,
                                    alpha=0.15, linewidth=0)
            ax.set_title(f"{group}: {title}" if group != "all" else title, fontsize=9)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
            if row == 0:
                ax.legend(fontsize=6)
    seeds = sorted({s for arm in summary["arms"].values() for s in arm["seeds"]})
    fig.suptitle(f"{summary['study']} ({summary['scale']}): mean over seeds {seeds} and 95% t-band")
    return save_figure(fig, out_png, dpi=100)


def markdown(summary: dict, figure: str) -> str:
    study, scale = summary["study"], summary["scale"]
    begin, end = _markers(study, scale)
    return "\n".join([
        begin, f"## Results ({scale} scale, generated)", "",
        f"Commands: `python -m urlvr_jax.studies run {study} --scale {scale} --seeds "
        f"{','.join(map(str, summary['seeds']))}`, then `python -m urlvr_jax.studies report {study} "
        f"--scale {scale}`.", "",
        f"![{study}]({figure})", "",
        "Means over seeds with 95% t-intervals in brackets (none with one seed). *val*: validation avg@k; *at peak*: "
        "at the step where the arm's mean curve peaks (picked on the same runs: biased upwards); *peak − start* and "
        "*final − peak*: paired per-seed differences. Fall step: first validation step after a seed's peak below its "
        "start. Collapse step: first step with reward accuracy < 1% (0/1 rewards only), over the seeds that reached it. Failure modes: response length (tokens), share of repeated 4-grams and distinct "
        f"answers per prompt, averaged over the first / last {TAIL:.0%} of the training steps.", "",
        table(summary), "", end])


def write_report(study: str, scale: str, root: str, out: str, name: str | None = None) -> dict:
    """Summarises the finished runs of ``study`` and writes ``<out>/<name>.{json,png,md}`` (name: study_scale)."""

    labels = {r.name: r.labels for r in study_runs(study, scale)}
    runs = finished_runs(root, study, scale)
    if not runs:
        raise ValueError(f"study {study!r} ({scale}): no finished run under {os.path.join(root, study, scale)}; "
                         f"run `python -m urlvr_jax.studies run {study} --scale {scale}` first")
    summary = {"study": study, "scale": scale, "root": root, "collapse_threshold": THRESHOLD,
               "seeds": sorted({s for seeds in runs.values() for s in seeds}),
               "arms": {arm: arm_summary(seeds, labels[arm], arm_reward(root, study, scale, arm, min(seeds)))
                        for arm, seeds in runs.items()}}
    base = os.path.join(out, name or page_name(study, scale))
    os.makedirs(out, exist_ok=True)
    with open(base + ".json", "w") as f:
        json.dump(summary, f, indent=1)
    plot(summary, runs, base + ".png")
    replace_section(base + ".md", markdown(summary, os.path.basename(base) + ".png"), *_markers(study, scale),
                    f"# Study: {study}")
    return summary


def _markers(study: str, scale: str) -> tuple[str, str]:
    return f"<!-- study:{study}:{scale}:begin -->", f"<!-- study:{study}:{scale}:end -->"
