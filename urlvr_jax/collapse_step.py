"""Model Collapse Step (MCS) tool: rank priors by how long majority-vote URLVR runs before it collapses.

    python -m urlvr_jax.collapse_step --priors A,B,C,D [--config cpu_default]
        [--protocols default,aggressive] [--budget 200] [--gt-steps N] [--labels auto|none]
        [--out runs/mcs] [--toy] [--toy-seeds 2] [--toy-pool 1024] [key=value overrides]

MCS = the first step whose reward accuracy (share of rollouts whose majority-vote reward equals the
ground-truth reward) is below ``train.collapse_threshold`` (1%). A run that never collapses within the
step budget gets MCS = budget, shown as ``≥budget`` (a lower bound; ranked and correlated as the budget).
Protocols: ``default`` (the config's mini-batches) and ``aggressive`` (one prompt per mini-batch, i.e.
many optimizer steps per rollout batch; the paper's cheap setting).

Priors (comma-separated, all of one family):
  * a Hugging Face directory path, e.g. ``runs/cpu_default/prior``;
  * ``warm:<name>=<k=v;k=v>``: a tiny transformer warm-started by ``warm_start.make_prior`` with the
    given ``warm_start`` fields (``warm:weak=train_fraction=0.3;default_fraction=0.4``); keys spelt
    ``model.<k>`` set the model instead (``warm:wide=model.hidden_size=128;model.head_dim=32``: width/depth).
    Cached under ``<out>/priors/``;
  * ``toy:<mu>``: the theory's coupled toy with mean correct-answer logit ``mu`` (all toy priors run
    in one ``collapse_step_experiment`` call per protocol). ``--toy`` = ``toy:0,toy:1,toy:1.5,toy:2,toy:2.5``.

With labels (``--labels auto``: the task's validation examples carry answers; always for the toy) the
tool also runs ground-truth RL for ``--gt-steps`` steps under the default protocol and reports
GT gain = final validation avg@k - initial validation avg@k (toy: pool accuracy after ``gt_steps``
GT-GRPO steps - initial accuracy), Spearman rho(MCS, GT gain) per protocol and the rollout tokens spent:
the GT runs' tokens / the MCS runs' tokens is the analogue of the paper's "5.6x" (Table 3). Toy tokens
count one token per rollout (a rollout is one answer). Results go to ``<out>/mcs_results.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import warnings

import numpy as np

from urlvr_jax.utils.config import apply_overrides, config_to_dict, parse_cli
from urlvr_jax.utils.metrics_log import read_metrics

PRIOR_FORMS = ("<HF directory path> (an existing directory with config.json)",
               "toy:<mu> (theory coupled toy, e.g. toy:1.5)",
               "warm:<name>=<k=v;k=v> (warm-started tiny transformer, e.g. warm:weak=train_fraction=0.3)")
PROTOCOLS = {"default": (), "aggressive": ("algo.mini_batch_prompts=1",)}
TOY_PRIORS = "toy:0,toy:1,toy:1.5,toy:2,toy:2.5"


@dataclasses.dataclass(frozen=True)
class PriorSpec:
    kind: str  # hf | toy | warm
    name: str
    path: str = ""  # hf
    mu: float = 0.0  # toy
    overrides: tuple[str, ...] = ()  # warm: warm_start.<k>=<v> (or model.<k>=<v>)


def _bad_spec(spec: str, why: str) -> ValueError:
    forms = "\n  ".join(PRIOR_FORMS)
    return ValueError(f"bad prior spec {spec!r}: {why}. A prior is one of:\n  {forms}")


def parse_prior(spec: str) -> PriorSpec:
    """One prior spec (see the module docstring); ValueError listing the accepted forms."""
    spec = spec.strip()
    if spec.startswith("toy:"):
        try:
            return PriorSpec("toy", spec, mu=float(spec[4:]))
        except ValueError:
            raise _bad_spec(spec, "toy:<mu> needs a number") from None
    if spec.startswith("warm:"):
        name, sep, body = spec[5:].partition("=")
        if not sep or not name.strip() or not body.strip():
            raise _bad_spec(spec, "warm:<name>=<k=v;k=v> needs a name and at least one k=v")
        items = [kv.strip() for kv in body.split(";") if kv.strip()]
        if any("=" not in kv or not kv.split("=", 1)[0].strip() for kv in items):
            raise _bad_spec(spec, "each warm_start override must be k=v, separated by ';'")
        overrides = tuple(kv if kv.startswith("model.") else f"warm_start.{kv}" for kv in items)
        return PriorSpec("warm", name.strip(), overrides=overrides)
    if os.path.isdir(spec) and os.path.exists(os.path.join(spec, "config.json")):
        return PriorSpec("hf", os.path.basename(os.path.normpath(spec)), path=spec)
    why = "no such directory" if not os.path.isdir(spec) else "the directory has no config.json"
    raise _bad_spec(spec, why)


def parse_priors(text: str) -> list[PriorSpec]:
    """Comma-separated prior specs: unique names, one family (all toy, or all transformer)."""
    specs = [parse_prior(s) for s in text.split(",") if s.strip()]
    if not specs:
        raise _bad_spec(text, "no prior given")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"prior names must be unique, got {names}")
    if len({s.kind == "toy" for s in specs}) > 1:
        raise ValueError("toy:<mu> priors cannot be ranked together with transformer priors (HF / warm:); "
                         "run them separately")
    return specs


@dataclasses.dataclass
class MCS:
    step: float
    collapsed: bool  # False: never below the threshold within the budget; step is the budget
    tokens: int  # rollout tokens spent by the MCS run

    def shown(self) -> str:
        value = f"{self.step:g}" if self.collapsed else f"≥{self.step:g}"
        return value


def mcs_from_run(collapse_step: int | None, budget: int, tokens: int) -> MCS:
    """MCS of one run: its collapse step, or the budget (marked) if it never collapsed."""
    if collapse_step is None:
        return MCS(float(budget), False, int(tokens))
    return MCS(float(collapse_step), True, int(tokens))


@dataclasses.dataclass
class PriorResult:
    name: str
    kind: str
    mcs: dict[str, MCS]  # protocol -> MCS
    gt_gain: float | None = None
    gt_tokens: int | None = None
    info: dict = dataclasses.field(default_factory=dict)


def rank_correlation(x, y) -> tuple[float | None, str]:
    """Spearman rho (ties get average ranks) and a note; None with the reason where it is undefined."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        return None, f"undefined: needs at least 3 priors, got {len(x)}"
    for label, v in (("MCS", x), ("GT gain", y)):
        if np.ptp(v) == 0:
            return None, f"undefined: every prior has the same {label} ({v[0]:g}); nothing to rank"
    rho = float(spearmanr(x, y).statistic)
    ties = len(set(x.tolist())) < len(x)
    return rho, "ties share their average rank" if ties else ""


def ranking(results: list[PriorResult], protocol: str) -> list[str]:
    """Prior names by MCS, most trainable (largest MCS) first; stable for ties."""
    return [r.name for r in sorted(results, key=lambda r: -r.mcs[protocol].step)]


def ranking_text(names: list[str], values: dict[str, float]) -> str:
    """``a > b = c`` for names already sorted by decreasing value."""
    text = names[0]
    for prev, name in zip(names, names[1:]):
        text += (" = " if values[prev] == values[name] else " > ") + name
    return text


def summarize(results: list[PriorResult], protocols: list[str]) -> dict:
    """Rankings, Spearman rho per protocol and the token accounting."""
    out: dict = {"ranking": {p: ranking(results, p) for p in protocols}, "rho": {}, "tokens": {}}
    labelled = all(r.gt_gain is not None for r in results)
    out["tokens"]["mcs"] = {p: int(sum(r.mcs[p].tokens for r in results)) for p in protocols}
    if labelled:
        gains = [r.gt_gain for r in results]
        out["ranking"]["gt_gain"] = [r.name for r in sorted(results, key=lambda r: -r.gt_gain)]
        for p in protocols:
            rho, note = rank_correlation([r.mcs[p].step for r in results], gains)
            out["rho"][p] = {"rho": rho, "note": note}
        gt = int(sum(r.gt_tokens or 0 for r in results))
        out["tokens"]["gt"] = gt
        out["tokens"]["ratio_gt_over_mcs"] = {p: (gt / m if m else None) for p, m in out["tokens"]["mcs"].items()}
    return out


def format_report(results: list[PriorResult], protocols: list[str], summary: dict) -> str:
    """The ranking table, the rankings, rho and the token ratio as text."""
    head = ["prior"] + [f"MCS ({p})" for p in protocols] + ["GT gain"] + [f"tokens MCS ({p})" for p in protocols]
    head += ["tokens GT"]
    rows = [[r.name] + [r.mcs[p].shown() for p in protocols]
            + ["-" if r.gt_gain is None else f"{r.gt_gain:+.4f}"] + [f"{r.mcs[p].tokens:,}" for p in protocols]
            + ["-" if r.gt_tokens is None else f"{r.gt_tokens:,}"] for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    lines = [line(head), line(["-" * w for w in widths])] + [line(row) for row in rows]
    if any(not r.mcs[p].collapsed for r in results for p in protocols):
        lines.append("≥: never collapsed within the budget; MCS = budget (a lower bound)")
    for p in protocols:
        steps = {r.name: r.mcs[p].step for r in results}
        lines.append(f"ranking by MCS ({p}): " + ranking_text(summary["ranking"][p], steps))
    if "gt_gain" in summary["ranking"]:
        gains = {r.name: r.gt_gain for r in results}
        lines.append("ranking by GT gain: " + ranking_text(summary["ranking"]["gt_gain"], gains))
    for p, r in summary["rho"].items():
        value = "n/a" if r["rho"] is None else f"{r['rho']:.3f}"
        lines.append(f"Spearman rho(MCS {p}, GT gain) = {value}" + (f"  ({r['note']})" if r["note"] else ""))
    tokens = summary["tokens"]
    for p, m in tokens["mcs"].items():
        text = f"rollout tokens: MCS ({p}) {m:,}"
        if "gt" in tokens:
            ratio = tokens["ratio_gt_over_mcs"][p]
            text += f" vs GT {tokens['gt']:,} (labels needed): GT / MCS = " + ("n/a" if ratio is None else f"{ratio:.2f}x")
        lines.append(text)
    return "\n".join(lines)


# ---------------------------------------------------------------------- toy priors


def run_toy(specs: list[PriorSpec], protocols: list[str], budget: int | None, gt_steps: int | None,
            labels: bool, seeds: int = 2, pool: int | None = None) -> list[PriorResult]:
    """The theory's coupled toy: one ``collapse_step_experiment`` call per protocol (+ one for GT if needed).

    MCS is the theory's collapse step (0-based index of the first step below 1%, mean over seeds);
    it is marked ``≥`` only when no seed collapsed. Aggressive: one prompt per mini-batch.
    """
    from urlvr_jax.theory import coupled

    pool = pool or coupled.POOL
    base = coupled.COUPLED_DEFAULT._replace(steps=budget or coupled.COUPLED_DEFAULT.steps)
    batch, n = min(base.batch_size, pool), base.num_rollouts
    gt_steps = gt_steps or 64
    mus = [s.mu for s in specs]
    run = lambda cfg, gts: coupled.collapse_step_experiment(mus, seeds=seeds, pool=pool, config=cfg, gt_steps=gts)
    rows, gt_rows = {}, None
    for p in protocols:
        cfg = base if p == "default" else base._replace(num_minibatches=batch)
        rows[p] = run(cfg, gt_steps if labels and p == "default" else 1)
        if labels and p == "default":
            gt_rows = rows[p]
    if labels and gt_rows is None:  # GT gain always under the default protocol
        gt_rows = run(base._replace(steps=1), gt_steps)
    results = []
    for i, spec in enumerate(specs):
        mcs = {}
        for p in protocols:
            step = float(rows[p][i]["collapse_step"])
            collapsed = step < base.steps
            mcs[p] = MCS(step, collapsed, int(round(min(step + 1, base.steps) * batch * n)))
        info = {"mu": spec.mu, "aligned": rows[protocols[0]][i]["aligned"], "acc0": rows[protocols[0]][i]["acc0"]}
        results.append(PriorResult(spec.name, "toy", mcs, gt_rows[i]["gt_gain"] if labels else None,
                                   gt_steps * batch * n if labels else None, info))
    return results


# ---------------------------------------------------------------------- transformer priors


def labels_available(config) -> bool:
    """Whether the validation examples carry reference answers (needed for GT RL and its gain)."""
    from urlvr_jax.rl.data import validation_examples

    examples = validation_examples(config.data)
    return bool(examples) and all(str(ex.answer).strip() for ex in examples)


def prepare_prior(config, spec: PriorSpec, out: str) -> str:
    """The HF directory of a transformer prior, warm-starting (and caching) ``warm:`` priors."""
    if spec.kind == "hf":
        return spec.path
    from urlvr_jax.toy.warm_start import make_prior

    cfg = apply_overrides(config, spec.overrides)
    key = json.dumps([config_to_dict(cfg)[k] for k in ("warm_start", "model", "data", "tokenizer")], sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    return make_prior(cfg, os.path.join(out, "priors", f"{spec.name}-{digest}"))


def _fresh_run(config, prior_dir: str, reward: str, run_dir: str, overrides: list[str]):
    from urlvr_jax.rl.loop import train
    from urlvr_jax.toy.warm_start import arm_config

    if os.path.isdir(run_dir):
        shutil.rmtree(run_dir)  # a stale checkpoint of another budget would be resumed
    cfg = apply_overrides(arm_config(config, reward, prior_dir), [f"run_dir={run_dir}", *overrides])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="plot skipped")  # MCS runs have no validation curve
        return train(cfg)


def gt_gain_of(run_dir: str) -> float:
    """Final validation avg@k - initial (step 0) validation avg@k of a run."""
    values = [r["val/avg@k"] for r in read_metrics(run_dir) if "val/avg@k" in r]
    if len(values) < 2:
        raise ValueError(f"{run_dir}: needs validation avg@k at the start and at the end, found {len(values)}")
    return float(values[-1] - values[0])


def run_transformer(config, spec: PriorSpec, prior_dir: str, protocols: list[str], budget: int, gt_steps: int,
                    labels: bool, out: str) -> PriorResult:
    """MV URLVR until collapse (or the budget) per protocol, then GT RL for ``gt_steps`` if labelled."""
    never_ckpt = [f"train.checkpoint_every={10 ** 9}", "train.keep_checkpoints=1"]
    mcs = {}
    for p in protocols:
        overrides = ["train.stop_at_collapse=true", f"train.steps={budget}", "data.val_size=0", "val.every=0",
                     *never_ckpt, *PROTOCOLS[p]]
        result = _fresh_run(config, prior_dir, "majority_vote", os.path.join(out, spec.name, f"mcs_{p}"), overrides)
        mcs[p] = mcs_from_run(result.collapse_step, budget, result.rollout_tokens)
    gain = tokens = None
    if labels:
        gt_reward = "countdown" if "countdown" in (config.data.task, config.data.dataset) else "ground_truth"
        overrides = ["train.stop_at_collapse=false", f"train.steps={gt_steps}", "val.every=0", *never_ckpt]
        result = _fresh_run(config, prior_dir, gt_reward, os.path.join(out, spec.name, "gt"), overrides)
        gain, tokens = gt_gain_of(result.run_dir), result.rollout_tokens
    return PriorResult(spec.name, spec.kind, mcs, gain, tokens, {"prior_dir": prior_dir})


# ---------------------------------------------------------------------- the study


def run_study(config, specs: list[PriorSpec], protocols: list[str], out: str, budget: int | None = None,
              gt_steps: int | None = None, labels: str = "auto", toy_seeds: int = 2,
              toy_pool: int | None = None, log=print) -> dict:
    """Run every prior under every protocol, print the report, write ``<out>/mcs_results.json``."""
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown or not protocols:
        raise ValueError(f"unknown protocols {unknown}; choose from {', '.join(PROTOCOLS)}")
    if labels not in ("auto", "none"):
        raise ValueError(f"--labels must be auto or none, got {labels!r}")
    os.makedirs(out, exist_ok=True)
    if specs[0].kind == "toy":
        has_labels = labels == "auto"
        results = run_toy(specs, protocols, budget, gt_steps, has_labels, toy_seeds, toy_pool)
    else:
        has_labels = labels == "auto" and labels_available(config)
        budget, gt_steps = budget or config.train.steps, gt_steps or config.train.steps
        results = []
        for spec in specs:
            prior_dir = prepare_prior(config, spec, out)
            log(f"--- prior {spec.name}: {prior_dir} ---")
            results.append(run_transformer(config, spec, prior_dir, protocols, budget, gt_steps, has_labels, out))
    if not has_labels:
        log("no labels: ground-truth RL, GT gain and rho are skipped")
    summary = summarize(results, protocols)
    report = format_report(results, protocols, summary)
    log(report)
    payload = {"priors": [dataclasses.asdict(r) for r in results], "protocols": protocols, "budget": budget,
               "gt_steps": gt_steps, "labels": has_labels, **summary, "report": report}
    path = os.path.join(out, "mcs_results.json")
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
    log(f"results: {path}")
    return payload


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m urlvr_jax.collapse_step", allow_abbrev=False,
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--priors", default="", help="comma-separated: " + " | ".join(PRIOR_FORMS))
    ap.add_argument("--toy", action="store_true", help=f"shortcut for --priors {TOY_PRIORS}")
    ap.add_argument("--config", default="cpu_default", help="config for transformer priors (name or path)")
    ap.add_argument("--protocols", default="default,aggressive", help=f"comma-separated: {', '.join(PROTOCOLS)}")
    ap.add_argument("--budget", type=int, default=None, help="MCS step budget (default: train.steps; toy: 400)")
    ap.add_argument("--gt-steps", type=int, default=None, help="GT RL steps (default: train.steps; toy: 64)")
    ap.add_argument("--labels", default="auto", choices=("auto", "none"))
    ap.add_argument("--out", default="runs/mcs", help="output folder (priors, runs, mcs_results.json)")
    ap.add_argument("--toy-seeds", type=int, default=2)
    ap.add_argument("--toy-pool", type=int, default=None, help="toy prompt pool size (default 1024)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args, rest = build_parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.toy and args.priors:
        raise SystemExit("give either --toy or --priors, not both")
    config, extra = parse_cli(["--config", args.config, *rest])
    if extra:
        raise SystemExit(f"unknown flags {extra}; config overrides are written key=value")
    try:
        specs = parse_priors(TOY_PRIORS if args.toy else args.priors)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    if specs[0].kind == "toy" and rest:
        warnings.warn(f"config overrides {rest} do not affect toy priors")
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    run_study(config, specs, protocols, args.out, args.budget, args.gt_steps, args.labels,
              args.toy_seeds, args.toy_pool)
    return 0


if __name__ == "__main__":
    from urlvr_jax.utils.entry import run_main

    run_main(main)  # huge pages for XLA's buffers, the pod's processes (URLVR_DISTRIBUTED=1), then main
