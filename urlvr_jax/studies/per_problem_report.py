"""The per-problem and out-of-distribution views' report: categories, counts over seeds, a figure and a docs page.

    python -m urlvr_jax.studies report per_problem [--root runs/studies] [--out docs/studies]

Reads ``<root>/per_problem/toy`` (written by :mod:`urlvr_jax.studies.per_problem`) and writes
``<out>/per_problem_toy.{json,png}`` and the generated section of ``.md`` (hand-written findings are kept).

Per-problem view. A problem's majority is *right* when the most frequent answer of its ``k`` samples is the gold
answer. Before = the prior's first measurement, after = the measurement at the last step of a seed's run. Categories
(every problem in exactly one): ``amplified success`` right -> right, ``amplified failure`` wrong -> wrong,
``wrong -> correct`` and ``correct -> wrong``. Within the kept ones: *sharpened* = the same majority answer with a
larger share after; *flipped, prior measurements agree*: flips of problems whose majority is right (or wrong)
in both of the prior's measurements; *accuracy up* (kept right) and *accuracy down* (kept wrong) compare sample accuracies. The noise
floor of a flip is the count of picked problems whose majority is right in one of the prior's two independent
measurements and wrong in the other. Agreement across seeds: the share of problems in the same category on every
seed. Out-of-distribution view: label accuracy (share of unseen problems with a right majority, val/maj@k) and
accuracy (val/avg@k) on the unseen problems over steps, mean and 95% t-interval over seeds; per seed, how many
unseen problems moved wrong -> right and right -> wrong between the prior's first measurement and ``final.json``
(noise floor: the same counts between the prior's two measurements; and wrong -> right among the problems wrong
in both).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter

import numpy as np

from urlvr_jax.studies.runner import DEFAULT_ROOT
from urlvr_jax.studies.stats import band, replace_section, t_interval

PAGE = "per_problem_toy"
STUDY = "per_problem"
CATEGORIES = ("amplified success", "amplified failure", "wrong -> correct", "correct -> wrong")
BEGIN, END = "<!-- study:per_problem:toy:begin -->", "<!-- study:per_problem:toy:end -->"


def view_dir(root: str) -> str:
    """Where ``run per_problem`` writes: ``<root>/per_problem/toy``."""
    return os.path.join(root, STUDY, "toy")


def category(before: bool, after: bool) -> str:
    return CATEGORIES[0 if before and after else 1 if not (before or after) else 2 if after else 3]


def _read_jsonl(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _seed_dirs(folder: str) -> dict[int, str]:
    if not os.path.isdir(folder):
        return {}
    return {int(name.split("_")[1]): os.path.join(folder, name) for name in sorted(os.listdir(folder))
            if name.startswith("seed_")}


def _moves(before: list[dict], after: list[dict], again: list[dict] | None = None) -> dict:
    """Problems whose majority went wrong -> right and right -> wrong; given the prior's second measurement
    ``again``, also wrong -> right among the problems wrong in both of the prior's measurements."""
    pairs = [(b["majority_correct"], a["majority_correct"]) for b, a in zip(before, after)]
    out = {"wrong_to_right": sum(not b and a for b, a in pairs), "right_to_wrong": sum(b and not a for b, a in pairs)}
    if again is not None:
        out["wrong_to_right, prior wrong twice"] = sum(not b and not g["majority_correct"] and a for (b, a), g in
                                                       zip(pairs, again))
    return out


def single_summary(prior: dict, folder: str) -> dict:
    """Categories per seed (complete seeds only: every picked problem done), counts over seeds, agreement."""
    picked = prior["picked"]
    runs = {seed: {line["index"]: line for line in _read_jsonl(os.path.join(d, "results.jsonl"))}
            for seed, d in _seed_dirs(folder).items() if os.path.exists(os.path.join(d, "results.jsonl"))}
    runs = {seed: lines for seed, lines in runs.items() if set(picked) <= set(lines)}
    per_seed, problems = {}, []
    for index in picked:
        p = prior["candidates"][index]
        b = p["prior"]
        row = dict(index=index, prompt=p["prompt"], answer=p["answer"], prior_accuracy=b["accuracy"],
                   prior_majority=b["majority"], prior_share=b["share"], prior_right=b["majority_correct"],
                   prior_stable=b["majority_correct"] == p["prior_again"]["majority_correct"], after={})
        for seed, lines in runs.items():
            a = lines[index]["curve"][-1]
            row["after"][seed] = dict(accuracy=a["accuracy"], majority=a["majority"], share=a["share"],
                                      category=category(b["majority_correct"], a["majority_correct"]),
                                      kept=a["majority"] == b["majority"],
                                      sharpened=a["majority"] == b["majority"] and a["share"] > b["share"])
        problems.append(row)
    for seed in runs:
        rows = [(r, r["after"][seed]) for r in problems]
        counts = Counter(a["category"] for _, a in rows)
        kept_right = [(r, a) for r, a in rows if a["category"] == CATEGORIES[0]]
        kept_wrong = [(r, a) for r, a in rows if a["category"] == CATEGORIES[1]]
        per_seed[seed] = {**{c: counts.get(c, 0) for c in CATEGORIES},
                          "flipped": counts.get(CATEGORIES[2], 0) + counts.get(CATEGORIES[3], 0),
                          "flipped, prior measurements agree": sum(a["category"] in CATEGORIES[2:] and r["prior_stable"]
                                                                   for r, a in rows),
                          "kept majority answer": sum(a["kept"] for _, a in rows),
                          "sharpened": sum(a["sharpened"] for _, a in rows),
                          "accuracy up (kept right)": sum(a["accuracy"] > r["prior_accuracy"] for r, a in kept_right),
                          "accuracy down (kept wrong)": sum(a["accuracy"] < r["prior_accuracy"]
                                                            for r, a in kept_wrong)}
    keys = list(next(iter(per_seed.values()))) if per_seed else []
    same = [len({a["category"] for a in r["after"].values()}) == 1 for r in problems] if runs else []
    noise = sum(prior["candidates"][i]["prior"]["majority_correct"] != prior["candidates"][i]["prior_again"]
                ["majority_correct"] for i in picked)
    steps = [point["step"] for point in next(iter(runs.values()))[picked[0]]["curve"]] if runs else []
    curves = {}
    for stratum, right in (("right prior majority", True), ("wrong prior majority", False)):
        idx = [i for i in picked if prior["candidates"][i]["prior"]["majority_correct"] == right]
        if not idx:
            continue
        records = [[{"step": 0, "accuracy": float(np.mean([prior["candidates"][i]["prior"]["accuracy"] for i in idx]))}]
                   + [{"step": s, "accuracy": float(np.mean([lines[i]["curve"][j]["accuracy"] for i in idx]))}
                      for j, s in enumerate(steps)] for lines in runs.values()]
        curves[stratum] = band(records, "accuracy")
    shares = {kind: t_interval([r["prior_share"] for r in problems for a in r["after"].values()
                                if (a["category"] in CATEGORIES[2:]) == (kind == "flipped")])
              for kind in ("flipped", "kept")}
    return dict(seeds=sorted(runs), problems=problems, per_seed=per_seed, n=len(picked),
                distinct_prompts=len({r["prompt"] for r in problems}), prior_share=shares,
                over_seeds={key: t_interval([per_seed[s][key] for s in per_seed]) for key in keys},
                agreement=float(np.mean(same)) if same else None, noise_flips=noise, curves=curves)


def ood_summary(prior: dict, folder: str) -> dict:
    from urlvr_jax.utils.metrics_log import read_metrics

    before = [p["prior"] for p in prior["candidates"]]
    seeds = {s: d for s, d in _seed_dirs(folder).items() if os.path.exists(os.path.join(d, "final.json"))}
    records, per_seed, finals = [], {}, {}
    for seed, d in seeds.items():
        with open(os.path.join(d, "final.json")) as f:
            final = json.load(f)
        rec = read_metrics(os.path.join(d, "metrics.jsonl"))
        records.append(rec)
        val = [r for r in rec if "val/maj@k" in r]
        finals[seed] = final["final"]
        per_seed[seed] = dict(train_problems=final["train_problems"], label_start=val[0]["val/maj@k"],
                              label_final=val[-1]["val/maj@k"], accuracy_start=val[0]["val/avg@k"],
                              accuracy_final=val[-1]["val/avg@k"],
                              label_measured_final=float(np.mean([a["majority_correct"] for a in final["final"]])),
                              **_moves(before, final["final"], [p["prior_again"] for p in prior["candidates"]]))
    keys = list(next(iter(per_seed.values()))) if per_seed else []
    moved_every_seed = [i for i, b in enumerate(before)
                        if finals and not b["majority_correct"] and all(f[i]["majority_correct"] for f in finals.values())]
    return dict(seeds=sorted(seeds), per_seed=per_seed,
                over_seeds={key: t_interval([per_seed[s][key] for s in per_seed]) for key in keys},
                label_accuracy=band(records, "val/maj@k"), accuracy=band(records, "val/avg@k"),
                wrong_to_right_every_seed=[prior["candidates"][i]["prompt"] for i in moved_every_seed])


def summarize(src: str) -> dict:
    path = os.path.join(src, "prior.json")
    if not os.path.exists(path):
        raise ValueError(f"no prior measurement at {path}: run `python -m urlvr_jax.studies run per_problem` first")
    with open(path) as f:
        prior = json.load(f)
    cand, pool = prior["candidates"], prior["pool"]
    with open(os.path.join(src, "settings.json")) as f:
        settings = json.load(f)
    ood = {}
    for name in sorted(os.listdir(src), key=lambda n: ("right" in n, n)):  # ood_wrong, ood_wrong_6 (wrong:6), ood_right
        if name.startswith("ood_") and _seed_dirs(os.path.join(src, name)):
            ood[name[len("ood_"):]] = ood_summary(prior, os.path.join(src, name))
    return dict(settings=settings, prior=dict(
        k=prior["k"], candidates=len(cand), candidate_accuracy=float(np.mean([p["prior"]["accuracy"] for p in cand])),
        candidate_label_accuracy=float(np.mean([p["prior"]["majority_correct"] for p in cand])),
        pool=len(pool), pool_wrong=sum(not p["prior"]["majority_correct"] for p in pool),
        unseen_noise=_moves([p["prior"] for p in cand], [p["prior_again"] for p in cand])),
        single=single_summary(prior, os.path.join(src, "single")), ood=ood)


# ---------------------------------------------------------------------------------------------- outputs

def _ci(s: dict, digits: int = 2) -> str:
    if s.get("mean") is None:
        return "n/a"
    if s.get("lo") is None:
        return f"{s['mean']:.{digits}f}"
    return f"{s['mean']:.{digits}f} [{s['lo']:.{digits}f}, {s['hi']:.{digits}f}]"


def _arm_label(arm: str) -> str:
    kind, _, count = arm.partition("_")
    return f"{count + ' ' if count else ''}{kind}-majority problems"


def table(summary: dict) -> str:
    single, n = summary["single"], summary["single"]["n"]
    lines = [f"Per-problem view: {n} problems ({single['distinct_prompts']} distinct prompts) trained alone, {len(single['seeds'])} seeds "
             f"({', '.join(map(str, single['seeds']))}); counts per seed, mean [95% t-interval]", "",
             "| category | " + " | ".join(f"seed {s}" for s in single["seeds"]) + " | over seeds |",
             "|---|" + "---|" * (len(single["seeds"]) + 1)]
    for key, stat in single["over_seeds"].items():
        lines.append(f"| {key} | " + " | ".join(str(single["per_seed"][s][key]) for s in single["seeds"])
                     + f" | {_ci(stat)} |")
    agree = "n/a" if single["agreement"] is None else f"{single['agreement']:.3f}"
    lines += ["", f"Same category on every seed: {agree} of the problems; flips between two measurements of the prior "
              f"(noise floor): {single['noise_flips']} of {n}; prior majority share of the flipped (problem, seed) "
              f"pairs {_ci(single['prior_share']['flipped'])}, of the kept ones {_ci(single['prior_share']['kept'])}",
              ""]
    if summary["ood"]:
        noise = summary["prior"]["unseen_noise"]
        lines += [f"Out-of-distribution view: {summary['prior']['candidates']} unseen problems; prior re-measured: "
                  f"{noise['wrong_to_right']} wrong -> right, {noise['right_to_wrong']} right -> wrong (noise floor)", "",
                  "| trained on | seeds | problems | label acc. start | label acc. final | accuracy start | "
                  "accuracy final | wrong -> right | of them wrong twice in the prior | right -> wrong | "
                  "wrong -> right on every seed |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for arm, o in summary["ood"].items():
            s = o["over_seeds"]
            lines.append(f"| {_arm_label(arm)} | {len(o['seeds'])} | {_ci(s['train_problems'], 0)} | "
                         f"{_ci(s['label_start'])} | {_ci(s['label_final'])} | {_ci(s['accuracy_start'])} | "
                         f"{_ci(s['accuracy_final'])} | {_ci(s['wrong_to_right'], 1)} | "
                         f"{_ci(s['wrong_to_right, prior wrong twice'], 1)} | {_ci(s['right_to_wrong'], 1)} | "
                         f"{len(o['wrong_to_right_every_seed'])} |")
    return "\n".join(lines)


def plot(summary: dict, out_png: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from urlvr_jax.utils.plots import save_figure

    fig, axes = plt.subplots(1, 4, figsize=(20, 4.6))
    colors = dict(zip(CATEGORIES, ("tab:green", "tab:red", "tab:blue", "tab:orange")))
    ax = axes[0]
    for cat in CATEGORIES:
        pts = [(r["prior_accuracy"], a["accuracy"]) for r in summary["single"]["problems"] for a in r["after"].values()
               if a["category"] == cat]
        if pts:
            ax.scatter(*zip(*pts), s=18, alpha=0.7, color=colors[cat], label=f"{cat} ({len(pts)})")
    ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls=":")
    ax.set(xlabel="prior accuracy", ylabel="accuracy after training alone", title="per problem x seed")
    ax.legend(fontsize=7)

    def draw(ax, b, label, color=None):
        if not b["steps"]:
            return
        line, = ax.plot(b["steps"], b["mean"], label=f"{label} (n={b['n']})", color=color)
        if b["n"] > 1:
            ax.fill_between(b["steps"], np.clip(b["lo"], 0, 1), np.clip(b["hi"], 0, 1), alpha=0.2, color=line.get_color())

    for stratum, b in summary["single"]["curves"].items():
        draw(axes[1], b, stratum)
    axes[1].set(xlabel="step", ylabel="mean accuracy of the problems", title="trained alone: accuracy", ylim=(0, 1))
    for arm, o in summary["ood"].items():
        draw(axes[2], o["label_accuracy"], _arm_label(arm))
        draw(axes[3], o["accuracy"], _arm_label(arm))
    axes[2].set(xlabel="step", ylabel="label accuracy (maj@k)", title="unseen problems: label accuracy")
    axes[3].set(xlabel="step", ylabel="accuracy (avg@k)", title="unseen problems: accuracy")
    for ax in axes[1:]:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return save_figure(fig, out_png)


def markdown(summary: dict, figure: str) -> str:
    s = summary["settings"]
    return "\n".join([
        BEGIN, "## Results (toy scale, generated)", "",
        "Commands: `python -m urlvr_jax.studies run per_problem --seeds "
        f"{','.join(map(str, summary['single']['seeds']))}`, then `python -m urlvr_jax.studies report per_problem`.",
        "", f"Settings: {json.dumps(s)}", "",
        f"Prior (k = {summary['prior']['k']} samples per problem): accuracy {summary['prior']['candidate_accuracy']:.3f}"
        f" and label accuracy {summary['prior']['candidate_label_accuracy']:.3f} on the {summary['prior']['candidates']}"
        f" candidate (unseen) problems; {summary['prior']['pool_wrong']} of the {summary['prior']['pool']} training-pool"
        " problems have a wrong majority.", "",
        table(summary), "", f"![per_problem]({figure})", "", END])


def write_report(src: str, out: str, name: str = PAGE) -> dict:
    summary = summarize(src)
    if not summary["single"]["seeds"] and not summary["ood"]:
        raise ValueError(f"no finished per-problem or out-of-distribution run under {src}")
    base = os.path.join(out, name)
    os.makedirs(out, exist_ok=True)
    with open(base + ".json", "w") as f:
        json.dump(summary, f, indent=1)
    plot(summary, base + ".png")
    replace_section(base + ".md", markdown(summary, os.path.basename(base) + ".png"), BEGIN, END,
                    "# Per-problem and out-of-distribution views (paper section 5)")
    return summary


def main(argv: list[str]) -> int:
    """``report per_problem``: the page, JSON and figure from the finished runs under ``--root``."""
    parser = argparse.ArgumentParser(prog="python -m urlvr_jax.studies report per_problem",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--out", default=os.path.join("docs", "studies"), help="where the page goes")
    args = parser.parse_args(argv)
    try:
        summary = write_report(view_dir(args.root), args.out)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {os.path.join(args.out, PAGE)}.{{md,json,png}}")
    print(table(summary))
    return 0
