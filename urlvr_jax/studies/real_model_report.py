"""The findings of the real-model study (:mod:`urlvr_jax.studies.real_model`), from its committed files.

    python -m urlvr_jax.studies report real_model [--root runs/real_model] [--out docs] [--seeds 0,1,2,3,4]

Reads the per-step metrics of every finished arm (copied first from ``<root>``, where the runs are, to
``<out>/real_model/<arm>_s<seed>.jsonl``, which are committed) and the answers per validation problem
(``<out>/real_model/answers.json``), and writes ``<out>/real_model.json``, ``<out>/real_model.png`` and the
generated section of ``<out>/real_model.md`` (its hand-written text is kept). So the page's numbers are
recomputed from the committed files alone with ``--root`` pointing nowhere.

Over seeds it uses the CPU default's seed study (:func:`urlvr_jax.studies.seeds.aggregate`: start, peak and final
validation avg@k per arm, the rise/fall claims, the Model Collapse Step) and adds, per validation problem, the
theorem's prediction: does the final policy's greedy answer equal the initial model's majority answer (of
``k`` samples at the rollout temperature), on problems where that majority was right and where it was wrong; and
the shared-default-answer check: the largest share of the problems on which the final greedy answer is one value.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import sys
from typing import Mapping, Sequence

import numpy as np

from urlvr_jax.studies import seeds as seed_study
from urlvr_jax.studies.stats import band, parse_seeds, replace_section, t_interval
from urlvr_jax.utils.config import parse_cli
from urlvr_jax.utils.metrics_log import read_metrics

ARMS = {"mv": "majority_vote", "gt": "ground_truth"}  # run-directory prefix -> reward
CONFIG = "smollm2_cpu"
EXTRA_CURVES = (("train/entropy_mean", "entropy"), ("train/response_length", "response length"),
                ("train/repetition", "repetition (4-grams)"), ("train/ground_truth_reward", "train GT reward"))
SECTION = ("<!-- real_model:begin -->", "<!-- real_model:end -->")
TITLE = "SmolLM2-135M-Instruct on sums, majority vote and ground truth"
ABOUT = ("Every seed starts from the same pretrained model; the seed is the RL seed (sampling, prompt stream).")


def arm_dir(root: str, arm: str, seed: int) -> str:
    return os.path.join(root, f"{arm}_s{seed}")


def majority(samples: Sequence[int | None]) -> tuple[int | None, float]:
    """The most frequent answer among the non-empty ones (ties: the first seen) and its share of all samples."""
    counts = collections.Counter(a for a in samples if a is not None)
    if not counts:
        return None, 0.0
    answer, count = counts.most_common(1)[0]
    return answer, count / len(samples)


def collect(root: str, out_dir: str, seeds: Sequence[int]) -> dict[int, dict[str, list[dict]]]:
    """{seed: {arm name: records}} of the seeds with both arms in ``out_dir`` (runs in ``root`` copied first)."""
    os.makedirs(out_dir, exist_ok=True)
    found = {}
    for seed in seeds:
        arms = {}
        for arm, name in ARMS.items():
            source, kept = os.path.join(arm_dir(root, arm, seed), "metrics.jsonl"), os.path.join(
                out_dir, f"{arm}_s{seed}.jsonl")
            if os.path.exists(source):
                shutil.copyfile(source, kept)
            if os.path.exists(kept):
                arms[name] = read_metrics(kept)
        if len(arms) == len(ARMS):
            found[seed] = arms
    return found


def problem_view(answers: Mapping, seeds: Sequence[int]) -> dict:
    """Per problem and per arm over seeds: the final greedy answer against the initial majority (the theorem's
    prediction), accuracy, and the largest share of problems answered with one value (a shared default)."""
    initial = answers["initial"]
    start = [majority(p["samples"]) for p in initial]
    rows = [{"question": p["question"], "answer": p["answer"], "initial_majority": m, "initial_share": round(s, 3),
             "initial_greedy": p["greedy"], "final_greedy": {}} for p, (m, s) in zip(initial, start)]
    right = [m == row["answer"] for (m, _), row in zip(start, rows)]  # the initial majority is right
    per_seed: dict[str, dict[str, list]] = {}
    for arm in ARMS:
        for seed in seeds:
            final = answers.get(f"{arm}_s{seed}")
            if final is None:
                continue
            greedy = [p["greedy"] for p in final]
            for row, g in zip(rows, greedy):
                row["final_greedy"][f"{arm}_s{seed}"] = g
            same = [g is not None and g == m for g, (m, _) in zip(greedy, start)]
            top = collections.Counter(g for g in greedy if g is not None).most_common(1)
            stats = {
                "greedy_accuracy": np.mean([g == row["answer"] for g, row in zip(greedy, rows)]),
                "final_majority_accuracy": np.mean([majority(p["samples"])[0] == row["answer"]
                                                    for p, row in zip(final, rows)]),
                "greedy_is_initial_majority": np.mean(same),
                "where_majority_right": np.mean([s for s, r in zip(same, right) if r]) if any(right) else None,
                "where_majority_wrong": np.mean([s for s, r in zip(same, right) if not r]) if not all(right) else None,
                "no_answer": np.mean([g is None for g in greedy]),
                "top_answer_share": top[0][1] / len(greedy) if top else 0.0,
            }
            for key, value in stats.items():
                per_seed.setdefault(arm, {}).setdefault(key, []).append(None if value is None else float(value))
    return {"k": answers.get("k"), "problems": len(rows),
            "initial": {"majority_accuracy": float(np.mean(right)),
                        "greedy_accuracy": float(np.mean([p["greedy"] == p["answer"] for p in initial])),
                        "mean_majority_share": float(np.mean([s for _, s in start])),
                        "answer_rate": float(np.mean([a is not None for p in initial for a in p["samples"]]))},
            "over_seeds": {arm: {key: t_interval(values) for key, values in stats.items()}
                           for arm, stats in per_seed.items()},
            "per_seed": per_seed, "rows": rows}


def summarise(records_by_seed: Mapping[int, Mapping[str, list]], answers: Mapping | None, n_val: int,
              threshold: float, toy: Mapping | None) -> dict:
    summary = seed_study.aggregate(records_by_seed, n_val, threshold)
    seeds = summary["seeds"]
    for arm in ARMS.values():
        for key, label in EXTRA_CURVES:
            summary["curves"][f"{arm} {label}"] = band([records_by_seed[s][arm] for s in seeds], key)
    cost = {}
    for arm in ARMS.values():
        times = {k: [r[f"train/{k}"] for s in seeds for r in records_by_seed[s][arm] if f"train/{k}" in r]
                 for k in ("rollout_time", "update_time")}
        cost[arm] = {f"{k} median [range]": [float(np.median(v)), float(min(v)), float(max(v))]
                     for k, v in times.items() if v}
    summary["seconds_per_step"] = cost
    if answers is not None:
        summary["problems"] = problem_view(answers, seeds)
    if toy is not None:
        summary["toy"] = {k: toy["over_seeds"].get(k) for k in ("MV start", "MV peak", "MV peak_step", "MV final",
                                                                "MV collapse step", "GT peak", "GT final")}
    return summary


def _where() -> dict[str, tuple[str, str]]:
    """Curve label -> (arm, metric key), for the seed study's curves and the extra ones."""
    extra = {f"{arm} {label}": (arm, key) for arm in ARMS.values() for key, label in EXTRA_CURVES}
    return {**{label: (arm, key) for arm, key, label in seed_study.CURVES}, **extra}


PANELS = (seed_study.PANELS[0], ("MV reward accuracy, majority ratio", ["MV reward accuracy", "MV majority ratio"]),
          ("entropy of the rollouts", [f"{arm} entropy" for arm in ARMS.values()]),
          ("response length (tokens)", [f"{arm} response length" for arm in ARMS.values()]))


def problems_markdown(view: Mapping) -> list[str]:
    """The per-problem findings: over seeds per arm, then one row per validation problem."""
    i = view["initial"]
    lines = ["### Per validation problem", "",
             f"The initial model on the {view['problems']} validation problems ({view['k']} samples each at the "
             f"rollout temperature): its majority answer is right on {i['majority_accuracy']:.3f} of them, its "
             f"greedy answer on {i['greedy_accuracy']:.3f}; the majority's mean share is "
             f"{i['mean_majority_share']:.3f}; {i['answer_rate']:.3f} of its samples give an answer (the answer "
             f"rate). After training, per arm (mean [95% t-interval] over seeds):", "",
             "| final policy | greedy accuracy | majority accuracy | greedy = initial majority | ... where that "
             "majority was right | ... where it was wrong | no answer | largest share of one greedy answer |",
             "|" + "---|" * 8]
    for arm, stats in view["over_seeds"].items():
        lines.append(f"| {ARMS[arm]} | " + " | ".join(seed_study._interval(stats[k]) if k in stats else "—" for k in (
            "greedy_accuracy", "final_majority_accuracy", "greedy_is_initial_majority", "where_majority_right",
            "where_majority_wrong", "no_answer", "top_answer_share")) + " |")
    runs = sorted({name for row in view["rows"] for name in row["final_greedy"]})
    lines += ["", "Each problem: the answer, the initial majority (its share of the samples), the initial greedy "
              "answer and each run's final greedy answer (bold: equals the initial majority; — : no answer).", "",
              "| problem | answer | initial majority (share) | initial greedy | " + " | ".join(runs) + " |",
              "|" + "---|" * (4 + len(runs))]
    for row in view["rows"]:
        m = row["initial_majority"]
        finals = ["—" if g is None else f"**{g}**" if g == m else str(g)
                  for g in (row["final_greedy"].get(name) for name in runs)]
        lines.append(f"| {row['question']} | {row['answer']} | {'—' if m is None else m} ({row['initial_share']:.2f}) "
                     f"| {'—' if row['initial_greedy'] is None else row['initial_greedy']} | " + " | ".join(finals) + " |")
    return lines


def toy_markdown(summary: Mapping) -> list[str]:
    """The real model's numbers beside the toy CPU default's (docs/cpu_default_seeds.json), over seeds."""
    toy, o = summary.get("toy"), summary["over_seeds"]
    if not toy:
        return []
    lines = ["### Beside the toy CPU default", "", "| over seeds (mean [95% t-interval]) | SmolLM2-135M, sums "
             f"({len(summary['seeds'])} seeds) | toy CPU default (docs/results.md) |", "|---|---|---|"]
    for key, stat in toy.items():
        digits = 1 if key.endswith(("peak_step", "collapse step")) else 3
        lines.append(f"| {key} | {seed_study._interval(o[key], digits) if o.get(key, {}).get('n') else '— (none)'} "
                     f"| {seed_study._interval(stat, digits) if stat else '—'} |")
    return lines


def markdown(summary: Mapping, command: str, requested: Sequence[int], figure: str) -> str:
    begin, end = SECTION
    text = seed_study.markdown(summary, command, requested, figure, title=TITLE, about=ABOUT, section=SECTION)
    body = text[len(begin):-len(end)].rstrip("\n").split("\n")
    cost = ["", "Seconds per step (median [range] over every step of every seed; 2-3 runs at a time shared the "
            "2-core VM):", "",
            "| arm | rollout | update |", "|---|---|---|"]
    for arm, c in summary["seconds_per_step"].items():
        cells = [f"{c[k][0]:.1f} [{c[k][1]:.1f}, {c[k][2]:.1f}]" if k in c else "—"
                 for k in ("rollout_time median [range]", "update_time median [range]")]
        cost.append(f"| {arm} | " + " | ".join(cells) + " |")
    extra = cost + [""] + toy_markdown(summary)
    if "problems" in summary:
        extra += [""] + problems_markdown(summary["problems"])
    return "\n".join([begin, *body[1:], *extra, "", end])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m urlvr_jax.studies report real_model",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated RL seeds (default %(default)s)")
    parser.add_argument("--root", default="runs/real_model", help="the runs' folder (default %(default)s)")
    parser.add_argument("--out", default="docs", help="folder of real_model.md and its files (default %(default)s)")
    args = parser.parse_args(argv)
    requested = parse_seeds(args.seeds)
    files = os.path.join(args.out, "real_model")
    records_by_seed = collect(args.root, files, requested)
    if not records_by_seed:
        raise SystemExit(f"no seed of {args.seeds} has both arms' metrics in {args.root} or {files}")
    source, kept = os.path.join(args.root, "answers.json"), os.path.join(files, "answers.json")
    if os.path.exists(source):
        shutil.copyfile(source, kept)
    answers = json.load(open(kept)) if os.path.exists(kept) else None
    config = parse_cli(["--config", CONFIG])[0]  # the study's validation size and collapse threshold
    n_val = int(config.data.val_size * config.val.k)
    toy_path = os.path.join(args.out, "cpu_default_seeds.json")
    toy = json.load(open(toy_path)) if os.path.exists(toy_path) else None
    summary = summarise(records_by_seed, answers, n_val, config.train.collapse_threshold, toy)
    command = "python -m urlvr_jax.studies run real_model --seeds " + args.seeds
    figure = seed_study.plot_bands(summary, records_by_seed, os.path.join(args.out, "real_model.png"),
                                   panels=PANELS, where=_where(), title=TITLE)
    with open(os.path.join(args.out, "real_model.json"), "w") as f:
        json.dump({"command": command, "requested_seeds": list(requested), **summary}, f, indent=1)
    replace_section(os.path.join(args.out, "real_model.md"),
                               markdown(summary, command, requested, os.path.basename(figure)), *SECTION,
                               "# " + TITLE)
    print(json.dumps({k: summary[k] for k in ("seeds", "over_seeds", "claims")}, indent=1))
    return 0
