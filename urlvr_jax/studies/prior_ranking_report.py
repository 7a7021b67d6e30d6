"""The prior ranking's report (``python -m urlvr_jax.studies report prior_ranking``): read the study's runs,
summarise them over seeds, correlate, and write ``<docs>/prior_ranking.{json,png}`` and the md section.

Statistics work on the per-seed data saved in the json (:func:`summarise`, :func:`bootstrap_rho`), so the
committed file can be re-checked without the runs (tests/studies/test_prior_ranking.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex

import numpy as np

from urlvr_jax import collapse_step as cs
from urlvr_jax.studies.prior_ranking import KINDS, VAL, parse_specs, run_dir
from urlvr_jax.studies.stats import replace_section, series, t_interval
from urlvr_jax.utils.metrics_log import read_metrics

PROTOCOLS = tuple(k.removeprefix("mcs_") for k in KINDS if k.startswith("mcs_"))
PREDICTORS = ("mcs_default", "mcs_aggressive", "passk_gain", "entropy")
# the target; beside it, the accuracy GT RL reaches and the prior's own (GT RL's starting) accuracy
TARGETS = ("gt_gain", "gt_peak", "gt_start")
TARGET_LABELS = {"gt_gain": "GT gain", "gt_peak": "the GT *peak* (the accuracy GT RL reaches, not what it adds)",
                 "gt_start": "the prior's own validation accuracy (GT start)"}
PAGE = "prior_ranking.md"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


# ------------------------------------------------------------------ reading the runs


def _done(path: str) -> dict | None:
    done = os.path.join(path, "done.json")
    return json.load(open(done)) if os.path.exists(done) else None


def load_study(out: str) -> dict:
    """Per prior, per seed: MCS (step, collapsed, tokens) per protocol, initial entropy, the GT validation curve
    and its cumulative rollout tokens; the probe's pass@k and pass@1. Only seeds finished for every prior."""
    path = os.path.join(out, "study.json")
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing: run `python -m urlvr_jax.studies run prior_ranking --out {out}` first")
    study = json.load(open(path))
    specs, parents = parse_specs(study["priors"])
    names = [s.name for s in specs]
    seeds = [s for s in study["seeds"]
             if all(_done(run_dir(out, n, k, s)) for n in names for k in KINDS)]
    probes = {n: _done(run_dir(out, n, "probe")) for n in names}
    if not seeds or not all(probes.values()):
        raise SystemExit(f"{out}: no seed has finished every run of every prior yet (or a probe is missing)")
    priors = {}
    for spec in specs:
        n = spec.name
        probe = next(r for r in read_metrics(run_dir(out, n, "probe")) if "val/pass@k" in r)  # step 0
        per_seed = []
        for s in seeds:
            mcs = {}
            for p in PROTOCOLS:
                done = _done(run_dir(out, n, f"mcs_{p}", s))
                budget = study["aggressive_budget" if p == "aggressive" else "budget"]
                mcs[p] = vars(cs.mcs_from_run(done["collapse_step"], budget, done["rollout_tokens"]))
            first = next(r for r in read_metrics(run_dir(out, n, "mcs_default", s)) if "train/entropy_mean" in r)
            gt = read_metrics(run_dir(out, n, "gt", s))
            made = series(gt, "train/generated_tokens")  # per step; train/rollout_tokens is the running total
            curve = series(gt, VAL)
            per_seed.append({"seed": s, "mcs": mcs, "entropy": first["train/entropy_mean"],
                             "gt_curve": {str(k): v for k, v in curve.items()},
                             "gt_tokens": {str(k): sum(v for t, v in made.items() if t <= k) for k in curve}})
        what = ";".join(o.split(".", 1)[1] for o in spec.overrides)
        priors[n] = {"differs": (f"from={parents[n]};" if n in parents else "") + what,
                     "probe": {"k": study["probe_k"], "pass@k": probe["val/pass@k"],
                               "pass@1": probe["val/pass@1"]}, "per_seed": per_seed}
    config = {k: study[k] for k in ("seeds", "budget", "aggressive_budget", "gt_steps", "gt_every", "probe_k")}
    return {"study": {**config, "seeds_used": seeds, "priors_spec": study["priors"]}, "priors": priors}


# ------------------------------------------------------------------ statistics


def gt_peak(curves: list[dict]) -> dict:
    """Seed-mean validation curve, its peak step and the gain = mean peak - mean start; interval of the gain from
    the seeds' paired differences at that step. The peak of a noisy mean curve is biased upwards."""
    steps = sorted(set.intersection(*(set(int(k) for k in c) for c in curves)))
    values = np.array([[c[str(t)] for t in steps] for c in curves])
    mean = values.mean(0)
    i = int(np.argmax(mean))
    return {"steps": steps, "mean": mean.tolist(), "peak_step": steps[i], "start": float(mean[0]),
            "peak": float(mean[i]), "gain": float(mean[i] - mean[0]), "at_last_step": i == len(steps) - 1,
            "gain_interval": t_interval(values[:, i] - values[:, 0])}


def prior_values(prior: dict, idx=None) -> dict:
    """The ranked quantities of one prior over its seeds (``idx``: a resample of the seed positions)."""
    seeds = prior["per_seed"] if idx is None else [prior["per_seed"][i] for i in idx]
    out = {f"mcs_{p}": float(np.mean([s["mcs"][p]["step"] for s in seeds])) for p in PROTOCOLS}
    gt = gt_peak([s["gt_curve"] for s in seeds])
    out["gt_gain"], out["gt_peak"], out["gt_start"] = gt["gain"], gt["peak"], gt["start"]
    out["entropy"] = float(np.mean([s["entropy"] for s in seeds]))
    out["passk_gain"] = prior["probe"]["pass@k"] - prior["probe"]["pass@1"]
    return out


def rho_all(values: list[dict]) -> dict:
    """Spearman rho of every predictor against each target over the priors (None where undefined)."""
    return {(t, k): cs.rank_correlation([v[k] for v in values], [v[t] for v in values])[0]
            for t in TARGETS for k in PREDICTORS}


def bootstrap_rho(priors: dict, resamples: int, resample_priors: bool, seed: int = 0) -> dict:
    """95% percentile intervals of each rho: seeds resampled within every prior (one index draw per prior, shared
    by its MCS, entropy and GT runs), and, with ``resample_priors``, the priors themselves resampled too."""
    rng = np.random.default_rng(seed)
    names = list(priors)
    draws = {(t, k): [] for t in TARGETS for k in PREDICTORS}
    for _ in range(resamples):
        picked = [names[i] for i in rng.integers(len(names), size=len(names))] if resample_priors else names
        values = [prior_values(priors[n], rng.integers(len(priors[n]["per_seed"]), size=len(priors[n]["per_seed"])))
                  for n in picked]
        for k, r in rho_all(values).items():
            if r is not None:
                draws[k].append(r)
    return {k: {"lo": float(np.percentile(d, 2.5)), "hi": float(np.percentile(d, 97.5)), "resamples": len(d)}
            if d else {"lo": None, "hi": None, "resamples": 0} for k, d in draws.items()}


def summarise(data: dict, resamples: int) -> dict:
    """Per-prior summaries, rho with both bootstrap intervals, and the token accounting."""
    rows = {}
    for name, prior in data["priors"].items():
        seeds = prior["per_seed"]
        gt = gt_peak([s["gt_curve"] for s in seeds])
        row = {"differs": prior["differs"], "n_seeds": len(seeds), **prior_values(prior), "gt": gt,
               "passk": prior["probe"]["pass@k"]}
        for p in PROTOCOLS:
            row[f"mcs_{p}_interval"] = t_interval([s["mcs"][p]["step"] for s in seeds])
            row[f"mcs_{p}_collapsed"] = sum(s["mcs"][p]["collapsed"] for s in seeds)
            row[f"tokens_mcs_{p}"] = float(np.mean([s["mcs"][p]["tokens"] for s in seeds]))
        row["tokens_gt_peak"] = float(np.mean([s["gt_tokens"][str(gt["peak_step"])] for s in seeds]))
        row["tokens_gt_run"] = float(np.mean([s["gt_tokens"][str(gt["steps"][-1])] for s in seeds]))
        row["entropy_interval"] = t_interval([s["entropy"] for s in seeds])
        rows[name] = row
    point = rho_all(list(rows.values()))
    within = bootstrap_rho(data["priors"], resamples, resample_priors=False)
    both = bootstrap_rho(data["priors"], resamples, resample_priors=True)
    rho = {t: {k: {"rho": point[t, k], "seeds_resampled": within[t, k], "priors_and_seeds_resampled": both[t, k]}
               for k in PREDICTORS} for t in TARGETS}
    gt_total = sum(r["tokens_gt_peak"] for r in rows.values())
    tokens = {"gt_to_peak": gt_total, "gt_run": sum(r["tokens_gt_run"] for r in rows.values())}
    for p in PROTOCOLS:
        m = sum(r[f"tokens_mcs_{p}"] for r in rows.values())
        tokens[f"mcs_{p}"] = m
        tokens[f"ratio_gt_over_mcs_{p}"] = gt_total / m if m else None
    return {"priors": rows, "rho": rho["gt_gain"], "rho_by_target": rho, "tokens": tokens}


# ------------------------------------------------------------------ outputs


def _iv(stat: dict, fmt: str = "{:.0f}") -> str:
    if stat["lo"] is None:
        return fmt.format(stat["mean"])
    return f"{fmt.format(stat['mean'])} [{fmt.format(stat['lo'])}, {fmt.format(stat['hi'])}]"


def _rho_text(r: dict) -> str:
    if r["rho"] is None:
        return "n/a"
    a, b = r["seeds_resampled"], r["priors_and_seeds_resampled"]
    fmt = lambda iv: "n/a" if iv["lo"] is None else f"[{iv['lo']:.2f}, {iv['hi']:.2f}]"
    return f"{r['rho']:.2f} (seeds resampled {fmt(a)}; priors and seeds resampled {fmt(b)})"


LABELS = {"mcs_default": "MCS (default)", "mcs_aggressive": "MCS (aggressive, mini-batch 1)",
          "passk_gain": "pass@k gain of the prior", "entropy": "initial entropy of the prior"}


def markdown(data: dict, summary: dict, command: str, figure: str, name: str = "prior_ranking") -> str:
    st = data["study"]
    k = st["probe_k"]
    begin, end = markers(name)
    lines = [begin, f"## Results: {name} (generated)", "", f"Command: `{command}`", "",
             f"Seeds used: {st['seeds_used']} (of {st['seeds']}); MCS budgets {st['budget']} (default) / "
             f"{st['aggressive_budget']} (aggressive) steps; GT RL {st['gt_steps']} steps, validated every "
             f"{st['gt_every']}; pass@k with k = {k}. Mean [95% t-interval over seeds].", "", f"![ranking]({figure})",
             "", "| prior | differs from the base config | MCS default (collapsed/seeds) | MCS aggressive | "
             "GT start | GT gain | GT peak step | tokens to MCS default / aggressive | GT tokens to peak | "
             f"pass@{k} / pass@{k} − pass@1 | initial entropy |", "|" + "---|" * 11]
    for name, r in summary["priors"].items():
        n = r["n_seeds"]
        mcs = [f"{_iv(r[f'mcs_{p}_interval'])} ({r[f'mcs_{p}_collapsed']}/{n})" for p in PROTOCOLS]
        peak = f"{r['gt']['peak_step']}" + (" (last)" if r["gt"]["at_last_step"] else "")
        lines.append(f"| {name} | `{r['differs']}` | {' | '.join(mcs)} | {r['gt']['start']:.3f} | "
                     f"{_iv(r['gt']['gain_interval'], '{:+.3f}')} | {peak} | "
                     f"{r['tokens_mcs_default']:,.0f} / {r['tokens_mcs_aggressive']:,.0f} | {r['tokens_gt_peak']:,.0f} | "
                     f"{r['passk']:.3f} / {r['passk_gain']:.3f} | {_iv(r['entropy_interval'], '{:.3f}')} |")
    lines += ["", "An MCS run that never collapsed counts as its budget (a lower bound). GT gain = peak of the "
              "seed-mean validation curve − its start; its interval is over the seeds' differences at that step.", "",
              "Spearman ρ against GT gain (bootstrap 95% percentile intervals):", ""]
    lines += [f"- {LABELS[key]}: ρ = {_rho_text(summary['rho'][key])}" for key in PREDICTORS]
    for target in TARGETS[1:]:
        lines += ["", f"Beside it, Spearman ρ against {TARGET_LABELS[target]}:", ""]
        lines += [f"- {LABELS[key]}: ρ = {_rho_text(summary['rho_by_target'][target][key])}" for key in PREDICTORS]
    t = summary["tokens"]
    lines += ["", "Rollout tokens (training rollouts, summed over priors, mean over seeds): GT RL to its peak "
              f"{t['gt_to_peak']:,.0f}; to the MCS: default {t['mcs_default']:,.0f}, aggressive "
              f"{t['mcs_aggressive']:,.0f}. GT / MCS = {t['ratio_gt_over_mcs_default']:.2f}x (default), "
              f"{t['ratio_gt_over_mcs_aggressive']:.2f}x (aggressive); the paper: 5.6x. Locating the peak takes the "
              f"whole GT run ({st['gt_steps']} steps, {t['gt_run']:,.0f} tokens, validation not counted): "
              f"{t['gt_run'] / t['mcs_default']:.2f}x / {t['gt_run'] / t['mcs_aggressive']:.2f}x the MCS runs' tokens.",
              end]
    return "\n".join(lines)


def figure(summary: dict, path: str) -> str:
    import matplotlib.pyplot as plt

    from urlvr_jax.utils.plots import save_figure

    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    rows = summary["priors"]
    for ax, key in zip(axes[0], ("mcs_default", "mcs_aggressive")):
        for name, r in rows.items():
            iv, giv = r[f"{key}_interval"], r["gt"]["gain_interval"]
            xerr = None if iv["lo"] is None else [[iv["mean"] - iv["lo"]], [iv["hi"] - iv["mean"]]]
            yerr = None if giv["lo"] is None else [[r["gt_gain"] - giv["lo"]], [giv["hi"] - r["gt_gain"]]]
            ax.errorbar(iv["mean"], r["gt_gain"], xerr=xerr, yerr=yerr, fmt="o", capsize=3)
            ax.annotate(name, (iv["mean"], r["gt_gain"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        rho = summary["rho"][key]["rho"]
        ax.set(xlabel=f"{LABELS[key]} (steps)", ylabel="GT gain (peak − start)",
               title=f"{LABELS[key]}: ρ = " + ("n/a" if rho is None else f"{rho:.2f}"))
    for name, r in rows.items():
        axes[1, 0].plot(r["gt"]["steps"], r["gt"]["mean"], label=name)
        axes[1, 0].plot(r["gt"]["peak_step"], r["gt"]["peak"], "k.", ms=6)
    axes[1, 0].set(xlabel="GT-RL step", ylabel="validation avg@k (seed mean)", title="GT RL: seed-mean curves, peaks")
    axes[1, 0].legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    for name, r in rows.items():
        axes[1, 1].plot(r["passk_gain"], r["gt_gain"], "o")
        axes[1, 1].annotate(name, (r["passk_gain"], r["gt_gain"]), textcoords="offset points", xytext=(4, 4),
                            fontsize=8)
    rho = summary["rho"]["passk_gain"]["rho"]
    axes[1, 1].set(xlabel="pass@k − pass@1 of the prior", ylabel="GT gain",
                   title="baseline: pass@k gain, ρ = " + ("n/a" if rho is None else f"{rho:.2f}"))
    return save_figure(fig, path)


def report(out: str, docs: str, resamples: int, command: str, name: str = "prior_ranking", log=print) -> dict:
    """``<docs>/<name>.{json,png}`` and the ``<name>`` section of ``<docs>/prior_ranking.md``."""
    data = load_study(out)
    summary = summarise(data, resamples)
    os.makedirs(docs, exist_ok=True)
    png = figure(summary, os.path.join(docs, f"{name}.png"))
    payload = {"command": command, "bootstrap_resamples": resamples, **data, "summary": summary}
    with open(os.path.join(docs, f"{name}.json"), "w") as f:
        json.dump(payload, f, indent=1)
    section = markdown(data, summary, command, os.path.basename(png), name)
    replace_section(os.path.join(docs, PAGE), section, *markers(name),
                    "# Ranking transformer priors by their Model Collapse Step")
    log(section)
    return payload


def main(argv: list[str]) -> int:
    """``report prior_ranking``: table, rho with bootstrap intervals, tokens, figure."""
    ap = argparse.ArgumentParser(prog="python -m urlvr_jax.studies report prior_ranking", allow_abbrev=False,
                                 description="table, rho with bootstrap intervals, tokens, figure")
    ap.add_argument("--out", default="runs/prior_ranking", help="the study folder written by run")
    ap.add_argument("--docs", default="docs", help="where prior_ranking.{md,json,png} go")
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for rho's interval")
    ap.add_argument("--name", default="prior_ranking", help="basename of the json/png and the md section's name")
    args, rest = ap.parse_known_args(argv)
    if rest:
        raise SystemExit(f"report takes no config overrides, got {rest}")
    if not args.name.replace("_", "").isalnum():
        raise SystemExit(f"--name must be letters, digits and underscores, got {args.name!r}")
    report(args.out, args.docs, args.bootstrap, shlex.join(["python", "-m", "urlvr_jax.studies", "report",
                                                              "prior_ranking", *argv]), args.name)
    return 0
