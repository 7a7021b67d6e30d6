"""Rank genuinely different transformer priors by their Model Collapse Step (MCS) against their GT-RL gain.

    python -m urlvr_jax.studies run prior_ranking [--priors SPECS] [--only NAMES] [--seeds 0,1,2] [--budget 300]
        [--aggressive-budget 300] [--gt-steps 200] [--gt-every 10] [--probe-k 64] [--out runs/prior_ranking]
        [key=value ...]
    python -m urlvr_jax.studies report prior_ranking [--out runs/prior_ranking] [--docs docs]
        [--bootstrap 2000] [--name prior_ranking]    (:mod:`urlvr_jax.studies.prior_ranking_report`)

The priors (:data:`PRIORS`, ``collapse_step``'s ``warm:`` specs on ``--config``, by default ``configs/toy_studies``,
the CPU default's model and task with the studies' prior settings) differ the way the paper's
models do: pre-training budget (``warm_start.steps``), data mixture (``train_fraction``, ``noise_fraction``),
width/depth (``model.*``), the strength of a planted shared bias (``default_fraction``: the share of targets
replaced by the one default answer), and a base/tuned pair (``from=base``: the base prior fine-tuned further
on clean targets). Each prior is fixed (``warm_start.seed=0``); the RL seed (``seed``) varies.

``run`` warm-starts every prior, then per prior: one *probe* (the prior's validation pass@k and pass@1 with
``--probe-k`` samples, no training) and per seed: majority-vote URLVR to its MCS (first step with reward accuracy
below 1%; ``≥budget`` if none) under the ``default`` and ``aggressive`` (one prompt per mini-batch) protocols,
and ground-truth RL for ``--gt-steps`` steps validated every ``--gt-every`` steps. Every run keeps the CPU
default's learning-rate path (warm-up over the same number of RL steps, whatever its length, if not shorter). Seeds go outer,
so a stopped study has whole seeds; a finished run (``done.json``) is skipped, an unfinished one restarted.
Compiled programs are cached under ``<out>/jax_cache`` (the runs share shapes).

``report`` writes ``<docs>/<name>.{json,png}`` and the ``<name>`` section of ``<docs>/prior_ranking.md`` between
its markers (hand-written text around it is kept). The multiple-choice variant: ``run --config cpu_default_mc
--out runs/prior_ranking_mc``, ``report --out runs/prior_ranking_mc --name prior_ranking_mc``. Per prior: MCS per protocol (mean, 95% t-interval over
seeds), GT gain = peak of the seed-mean validation curve - its start (interval: the seeds' paired differences
at that step), the peak step, rollout tokens to the MCS and to the GT peak, and the baselines (pass@k gain =
pass@k - pass@1 of the prior; initial entropy = mean token entropy of the prior's first rollout batch).
Spearman rho of each against GT gain, with bootstrap 95% intervals: resampling seeds within priors, and
resampling priors as well. Token ratio (the paper's 5.6x): GT tokens to the peak / tokens to the MCS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from urlvr_jax import collapse_step as cs
from urlvr_jax.studies.stats import parse_seeds
from urlvr_jax.utils.config import parse_cli

PRIORS = ",".join((
    "warm:base=seed=0",  # the studies' prior A (configs/toy_studies)
    "warm:short=steps=500",  # pre-training budget: a third of base's
    "warm:narrow=train_fraction=0.4",  # data mixture: less of the task seen
    "warm:noisy=noise_fraction=0.6",  # data mixture: noisier targets
    "warm:small=model.hidden_size=32;model.intermediate_size=64;model.head_dim=8;model.num_layers=1",
    "warm:large=model.hidden_size=128;model.intermediate_size=256;model.head_dim=32;model.num_layers=3",
    "warm:biased=default_fraction=0.2",  # planted shared bias: 0.08 -> 0.2 of the targets are the default answer
    "warm:tuned=from=base;steps=300;lr=1e-3;noise_fraction=0.1;default_fraction=0.0",  # base + clean fine-tuning
))
KINDS = ("mcs_default", "mcs_aggressive", "gt")
VAL = "val/avg@k"
NEVER_CKPT = (f"train.checkpoint_every={10 ** 9}", "train.keep_checkpoints=1")


# ------------------------------------------------------------------ priors and runs


def parse_specs(text: str) -> tuple[list[cs.PriorSpec], dict[str, str]]:
    """``warm:`` specs (``collapse_step.parse_prior``) and each prior's parent (``from=<name>``, an earlier prior)."""
    specs, parents = [], {}
    for spec in cs.parse_priors(text):
        if spec.kind != "warm":
            raise ValueError(f"prior {spec.name!r}: the ranking needs warm:<name>=<k=v;...> priors, got {spec.kind}")
        parent = [o.split("=", 1)[1] for o in spec.overrides if o.startswith("warm_start.from=")]
        if parent:
            if parent[0] not in [s.name for s in specs]:
                raise ValueError(f"prior {spec.name!r}: from={parent[0]} must name a prior listed before it")
            parents[spec.name] = parent[0]
            spec = cs.PriorSpec("warm", spec.name, overrides=tuple(o for o in spec.overrides
                                                                   if not o.startswith("warm_start.from=")))
        specs.append(spec)
    return specs, parents


def prepare_priors(config, specs, parents, out: str, log=print) -> dict[str, str]:
    """Every prior's HF directory; a ``from=`` prior warm-starts from its parent's weights."""
    dirs = {}
    for spec in specs:
        if spec.name in parents:
            parent = dirs[parents[spec.name]]
            spec = cs.PriorSpec("warm", spec.name, overrides=spec.overrides + ("model.source=hf",
                                                                              f"model.path={parent}"))
        dirs[spec.name] = cs.prepare_prior(config, spec, out)
        log(f"prior {spec.name}: {dirs[spec.name]}")
    return dirs


def run_dir(out: str, prior: str, kind: str, seed: int | None = None) -> str:
    return os.path.join(out, "runs", prior, kind if seed is None else f"{kind}_s{seed}")


def schedule(config, steps: int) -> str:
    """The warm-up ratio that keeps the config's learning-rate path (warm-up over the same RL steps) for ``steps``;
    a run shorter than that warm-up warms up over its whole length."""
    return f"optim.warmup_ratio={min(config.optim.warmup_ratio * config.train.steps / steps, 1.0):.6g}"


def run_overrides(config, kind: str, args) -> tuple[str, list[str]]:
    """(reward, overrides) of one run kind: probe, mcs_<protocol> or gt."""
    if kind == "probe":
        return "ground_truth", ["train.steps=1", "val.every=1", f"val.k={args.probe_k}", schedule(config, 1)]
    if kind == "gt":
        return "ground_truth", ["train.stop_at_collapse=false", f"train.steps={args.gt_steps}",
                                f"val.every={args.gt_every}", schedule(config, args.gt_steps)]
    protocol = kind.removeprefix("mcs_")
    budget = args.aggressive_budget if protocol == "aggressive" else args.budget
    return "majority_vote", ["train.stop_at_collapse=true", f"train.steps={budget}", "data.val_size=0",
                             "val.every=0", schedule(config, budget), *cs.PROTOCOLS[protocol]]


def ensure_run(config, prior_dir: str, kind: str, seed: int, path: str, args, log=print) -> dict:
    """One run, skipped when its ``done.json`` exists; returns that record."""
    done = os.path.join(path, "done.json")
    if os.path.exists(done):
        return json.load(open(done))
    reward, overrides = run_overrides(config, kind, args)
    log(f"--- {path} ---")
    result = cs._fresh_run(config, prior_dir, reward, path, [f"seed={seed}", *NEVER_CKPT, *overrides])
    record = {"kind": kind, "seed": seed, "steps": result.steps, "collapse_step": result.collapse_step,
              "rollout_tokens": result.rollout_tokens, "prior_dir": prior_dir}
    with open(done + ".tmp", "w") as f:
        json.dump(record, f)
    os.replace(done + ".tmp", done)
    return record


def run(config, args, log=print) -> None:
    specs, parents = parse_specs(args.priors)
    dirs = prepare_priors(config, specs, parents, args.out, log)
    json.dump({"priors": args.priors, "seeds": args.seeds, "budget": args.budget,
               "aggressive_budget": args.aggressive_budget, "gt_steps": args.gt_steps, "gt_every": args.gt_every,
               "probe_k": args.probe_k, "prior_dirs": dirs},
              open(os.path.join(args.out, "study.json"), "w"), indent=1)
    for spec in specs:
        ensure_run(config, dirs[spec.name], "probe", 0, run_dir(args.out, spec.name, "probe"), args, log)
    for seed in args.seeds:
        for spec in specs:
            for kind in KINDS:
                ensure_run(config, dirs[spec.name], kind, seed, run_dir(args.out, spec.name, kind, seed), args, log)


# ------------------------------------------------------------------ command line


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m urlvr_jax.studies run prior_ranking", allow_abbrev=False,
                                 description="warm-start the priors and run every seed (resumable)")
    ap.add_argument("--priors", default=PRIORS, help="comma-separated warm:<name>=<k=v;...> specs")
    ap.add_argument("--only", default="", help="comma-separated names: run just these of --priors")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated RL seeds")
    ap.add_argument("--budget", type=int, default=300, help="MCS step budget, default protocol")
    ap.add_argument("--aggressive-budget", type=int, default=300, help="MCS step budget, aggressive protocol")
    ap.add_argument("--gt-steps", type=int, default=200, help="ground-truth RL steps")
    ap.add_argument("--gt-every", type=int, default=10, help="validate the GT runs every this many steps")
    ap.add_argument("--probe-k", type=int, default=64, help="samples per problem for the prior's pass@k")
    ap.add_argument("--config", default="toy_studies")
    ap.add_argument("--out", default="runs/prior_ranking")
    return ap


def only(priors: str, names: str) -> str:
    """The specs of ``priors`` named in ``names`` (in ``priors``' order)."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    specs = {s.strip()[5:].split("=", 1)[0].strip(): s.strip() for s in priors.split(",") if s.strip()}
    unknown = [n for n in wanted if n not in specs]
    if unknown:
        raise SystemExit(f"--only names unknown priors {unknown}; the priors are {', '.join(specs)}")
    return ",".join(spec for name, spec in specs.items() if name in wanted)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args, rest = build_parser().parse_known_args(argv)
    args.seeds = parse_seeds(args.seeds)
    for name in ("budget", "aggressive_budget", "gt_steps", "gt_every", "probe_k"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    config, extra = parse_cli(["--config", args.config, *rest])
    if extra:
        raise SystemExit(f"unknown flags {extra}; config overrides are written key=value")
    try:
        parse_specs(args.priors)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    if args.only:
        args.priors = only(args.priors, args.only)
    os.makedirs(args.out, exist_ok=True)
    import jax  # the runs share shapes: a persistent compilation cache saves most of each run's compile time

    jax.config.update("jax_compilation_cache_dir", os.path.join(args.out, "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    json.dump({"argv": argv}, open(os.path.join(args.out, "run_command.json"), "w"))
    run(config, args)
    return 0
