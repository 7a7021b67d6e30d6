"""The paper's studies as data: each run is a base config (toy or paper scale) plus a table of overrides.

    python -m urlvr_jax.studies list [STUDY] [--scale toy|paper]
    python -m urlvr_jax.studies run STUDY [--scale toy|paper] [--seeds 0,1,2] [--only k=v ...]
                                    [--dry-run] [--root runs/studies] [--set key=value ...]
    python -m urlvr_jax.studies report STUDY [--scale toy|paper] [--root runs/studies] [--out docs/studies]
    python -m urlvr_jax.train --config study:study=sweep,method=majority_vote,knob=temperature,value=0.6,seed=1

``run`` trains every selected arm on every seed, seed by seed (all arms of seed 0 first, so a partial study is a
complete one on fewer seeds), each in ``<root>/<study>/<scale>/<arm>/seed_<s>``: a finished run is skipped, an
unfinished one resumes from its last checkpoint. ``report`` writes ``<out>/<study>_<scale>.{md,json,png}`` from the
finished runs (:mod:`urlvr_jax.studies.report`). The seed is the RL seed (sampling, the prompt stream and,
where a study draws one, the data pool); every seed of a toy study starts from the same warm-started prior.

Studies (paper digest sections 3, 5, 6):

* ``methods``: the 11 intrinsic rewards of the paper's taxonomy (5 certainty-based, 6 ensemble-based) beside
  ground truth, from one prior; then majority vote, self-certainty and ground truth from a second prior with a
  stronger shared attractor (``warm_start.default_fraction`` 0.16 instead of 0.08): same prior, different
  methods vs same methods, different prior.
* ``failure_modes``: the certainty rewards (probability, trajectory and token entropy, self-certainty) beside majority
  vote and ground truth with room to change length (toy: 16 new tokens instead of 4), read on the failure-mode
  metrics every run logs: response length (the probability reward's length collapse), repeated 4-grams (entropy
  rewards' repetition) and distinct answers per prompt.
* ``mixed``: majority vote mixed half and half with trajectory entropy and with self-certainty (the parts are
  ``methods`` arms with the same prior, settings and seeds).
* ``sweep``: the 5 intrinsic methods x {temperature 0.6/0.8/1.0/1.2, mini-batch prompts 1/8/16/32/64,
  rollouts n 4/8/16/32, KL off / k3 0.005}; every other knob at the paper default (T 1.0, mini-batch 64 =
  on-policy, n 8, no KL), so a knob's default value is the same run in every knob (run once, ``<method>-default``);
  toy: 300 steps, as the toy base (at 150 no arm reached the collapse step).
* ``dataset_size``: majority vote on {32, 128, 512, 2048, 8192, 16384} prompts, global batch 32, a fixed 600
  steps (so 600 epochs at 32, ~1.2 at 16384); each seed on its own subset.
* ``ttt``: test-time training, majority vote trained *and* validated on one test split (``test_split``) beside
  the same model trained on the training set and validated on that split (``train_set``).
* ``countdown``: self-verification vs trajectory-level entropy vs majority vote vs the oracle (Countdown checker).

Scale mapping. ``paper``: ``configs/paper_qwen3_1p7b`` (Qwen3-1.7B-Base, DAPO-17k, 64 x 8, lr 1e-6, T 1.0,
responses up to 7168 tokens, validation T 0.6 / top-p 0.95, no KL) with the paper's values. ``toy``:
``configs/toy_studies`` (char-level 2-layer transformer warm-started to an imperfect prior, cached once in
``<root>/prior``) with 32 prompts per step, so mini-batch sizes are scaled by 32/64 (paper 1 -> toy 1,
8 -> 4, 16 -> 8, 32 -> 16, 64 -> 32 = on-policy); dataset sizes and steps are both divided by 4 (sizes
8 ... 4096 over 150 steps: the same number of epochs per size as the paper); TTT's test split is a fixed
pool of 32 generated problems (AMC23 at paper scale: 40 problems, batch 40) validated on the same problems.
Temperatures, rollout counts and the KL coefficient are not scaled.

Toy Countdown: a tiny model warm-started on solutions of 3-number Countdown (numbers 1-9, targets <= 30) in a
compact prompt (``"3 5 7>22:"``, answers in ``<answer>`` tags) and, on half of its supervised pairs, on verifying
candidate solutions (``TOY_VERIFY_TEMPLATE``, verdict ``true``/``false`` from the Countdown checker;
:func:`~urlvr_jax.toy.warm_start.verification_pairs`): verifying takes one evaluation, solving a search,
so the prior can check better than it can solve, as in the paper. Arms: self-verification, trajectory entropy,
majority vote and the oracle (Countdown checker).

The tables of runs and the study-wide overrides are in :mod:`urlvr_jax.studies.tables`; this module turns
them into configs and runs them.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
from typing import Any

import ml_collections

from urlvr_jax.studies.stats import parse_seeds
from urlvr_jax.studies.tables import SCALES, SEEDS, STUDIES, STUDY_OVERRIDES, Run, study_runs

DEFAULT_ROOT = os.path.join("runs", "studies")
# The toy's verification prompt (the self_verify reward's template): numbers, target, the candidate response.
TOY_VERIFY_TEMPLATE = "{numbers}>{target}?{solution}="


# ---------------------------------------------------------------------------------------------- configs

def _load(name: str) -> ml_collections.ConfigDict:
    from urlvr_jax.utils.config import load_config

    cfg = copy.deepcopy(load_config(name))
    cfg.unlock()
    return cfg


def toy_base(task: str = "arithmetic") -> ml_collections.ConfigDict:
    """``configs/toy_studies`` (the CPU default's model and data, the prior of the committed study pages): the
    config a toy prior is warm-started from."""
    c = _load("toy_studies")
    if task == "countdown":  # compact prompts ("3 5 7>22:"); the prior also learns to verify (issue 22, item 6)
        c.data.update(task="countdown", template="raw")
        c.data.task_options = ml_collections.ConfigDict(dict(min_numbers=3, max_numbers=3, max_number=9,
                                                             max_target=30, fmt="compact"))
        c.model.max_position_embeddings = 128  # prompts ~10 chars, verification prompts ~50
        c.rollout.update(max_new_tokens=32, max_prompt_len=64)
        c.reward.options = ml_collections.ConfigDict({"self_verify": {"template": TOY_VERIFY_TEMPLATE}})
        c.warm_start.task_options = ml_collections.ConfigDict()
        c.warm_start.update(default_answer="<answer>1 + 2 + 3</answer>", noise_fraction=0.2, pool_size=512,
                            verify_fraction=0.5, verify_template=TOY_VERIFY_TEMPLATE)
    return c


def _set(cfg: ml_collections.ConfigDict, key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = cfg
    for part in parents:
        node = node[part]
    if leaf not in node:
        raise KeyError(f"study override {key!r}: no such config field")
    node[leaf] = ml_collections.ConfigDict(value) if isinstance(value, dict) else value


def _fit_micro_batch(c: ml_collections.ConfigDict) -> None:
    """Paper scale micro-batches 16 rollouts; keep that a divisor of a (possibly smaller) mini-batch."""
    if c.algo.micro_batch_rollouts:
        c.algo.micro_batch_rollouts = math.gcd(c.algo.micro_batch_rollouts, c.algo.mini_batch_prompts * c.rollout.n)


def study_task(study: str) -> str:
    return "countdown" if study == "countdown" else "arithmetic"


def prior_dir(root: str, study: str, prior: str = "A") -> str:
    """``<root>/prior[_<task>][_<variant>]``: one warm-started prior per task and prior variant (``PRIORS``)."""
    name = "prior" if study_task(study) == "arithmetic" else f"prior_{study_task(study)}"
    return os.path.join(root, name if prior == "A" else f"{name}_{prior}")


def run_dir(root: str, study: str, scale: str, arm: str, seed: int) -> str:
    return os.path.join(root, study, scale, arm, f"seed_{seed}")


def build_config(run: Run, scale: str, root: str = DEFAULT_ROOT, seed: int = 0) -> ml_collections.ConfigDict:
    """The locked config of ``run`` at ``scale`` on RL seed ``seed`` (toy runs point at the prior in ``prior_dir``)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid scales: {', '.join(SCALES)}")
    c = toy_base(study_task(run.study)) if scale == "toy" else _load("paper_qwen3_1p7b")
    for key, value in {**STUDY_OVERRIDES[run.study][scale], **run.overrides}.items():
        _set(c, key, value)
    c.seed = int(seed)
    if scale == "toy" and run.study == "ttt":
        c.data.val_seed = c.seed * 1_000_003  # make_pool's first round: validate on the training pool
    if scale == "paper" and run.study == "dataset_size":  # each seed trains on its own slice of DAPO-17k
        size = int(run.labels["size"])
        c.data.split = f"train[{seed * size}:{(seed + 1) * size}]"
    _fit_micro_batch(c)
    c.name = f"{run.study}/{run.name}/seed_{seed}"
    c.run_dir = run_dir(root, run.study, scale, run.name, seed)
    c.study = ml_collections.ConfigDict(dict(name=run.study, run=run.name, scale=scale,
                                             labels=json.dumps(run.labels), prior_dir=""))
    if scale == "toy":
        prior = prior_dir(root, run.study, run.labels.get("prior", "A"))
        c.study.prior_dir = prior
        c.model.update(source="hf", path=prior)
        c.tokenizer.update(kind="hf", path=prior)
    c.lock()
    return c


def ensure_prior(config: ml_collections.ConfigDict, log=print) -> str | None:
    """Warm-starts the toy prior of ``config``'s study (cached; from the study's base, with the run's
    ``warm_start`` settings). Paper-scale configs need none."""
    if not config.study.prior_dir:
        return None
    from urlvr_jax.toy.warm_start import make_prior

    base = toy_base(study_task(config.study.name))
    base.warm_start = copy.deepcopy(config.warm_start)
    return make_prior(base, config.study.prior_dir, log=log)


def _same(a: str, b: str) -> bool:
    try:
        return a == b or float(a) == float(b) or (b == "off" and float(a) == 0.0)
    except ValueError:
        return a == b


def select(runs: list[Run], only: dict[str, str]) -> list[Run]:
    """Runs whose labels match every ``only`` item (unknown keys or values: error listing the valid ones,
    among the runs the earlier items left)."""
    study = runs[0].study
    for key, value in only.items():
        valid = sorted({r.labels[key] for r in runs if key in r.labels})
        if not valid:
            keys = sorted({k for r in runs for k in r.labels})
            raise ValueError(f"study {study!r} has no label {key!r}; valid labels: {', '.join(keys)}")
        if not any(_same(value, v) for v in valid):
            raise ValueError(f"study {study!r}: {key}={value!r} is not valid; valid values: {', '.join(valid)}")
        runs = [r for r in runs if _same(value, r.labels.get(key, ""))]
    return runs


def parse_arg(arg: str) -> dict[str, str]:
    items = {}
    for part in filter(None, (p.strip() for p in (arg or "").split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"study config argument {part!r} is not key=value (e.g. study=sweep,method=majority_vote)")
        items[key.strip()] = value.strip()
    return items


def config_from_arg(arg: str) -> ml_collections.ConfigDict:
    """``study=NAME[,scale=toy|paper][,seed=S][,root=DIR][,warm=auto|skip][,<label>=<value>...]`` -> one run's config.

    The labels must pick exactly one run (seed: 0 unless given); at toy scale ``warm=auto`` (default) warm-starts
    the prior if needed (``prior=auto|skip`` is accepted too where the study has no ``prior`` label).
    """
    items = parse_arg(arg)
    study = items.pop("study", None)
    if study is None:
        raise ValueError(f"study config needs study=NAME; valid studies: {', '.join(STUDIES)}; e.g. "
                         "study:study=sweep,method=majority_vote,knob=temperature,value=0.6,scale=toy")
    scale, root = items.pop("scale", "toy"), items.pop("root", DEFAULT_ROOT)
    seed = items.pop("seed", "0")
    if not seed.isdigit():
        raise ValueError(f"study config seed={seed!r} is not a non-negative integer")
    warm = items.pop("warm", None)
    if warm is None and items.get("prior") in ("auto", "skip"):
        warm = items.pop("prior")
    warm = warm or "auto"
    if warm not in ("auto", "skip"):
        raise ValueError(f"study config warm={warm!r} is not one of auto, skip")
    runs = select(study_runs(study, scale), items)
    names = sorted({r.name for r in runs})
    if len(names) != 1:
        keys = sorted({k for r in runs for k in r.labels})
        raise ValueError(f"study {study!r}: {items or 'no labels'} match {len(names)} runs; give {', '.join(keys)} "
                         f"(see `python -m urlvr_jax.studies list {study}`)")
    config = build_config(runs[0], scale, root, int(seed))
    if warm == "auto":
        ensure_prior(config)
    config.unlock()  # load_config locks it again
    return config


# ---------------------------------------------------------------------------------------------- runner

def _finished(config) -> bool:
    return os.path.exists(os.path.join(config.run_dir, "study_done.json"))


def run_study(study: str, scale: str = "toy", only: dict[str, str] | None = None, root: str = DEFAULT_ROOT,
              overrides: list[str] | None = None, dry_run: bool = False, seeds: tuple[int, ...] = SEEDS,
              log=print) -> dict:
    """Runs (sequentially, seed by seed) the selected arms of ``study``; finished runs are skipped, unfinished
    ones resume. Returns the study's report over the finished runs (``<root>/<study>/<scale>/report.*``)."""
    from urlvr_jax.studies import report
    from urlvr_jax.utils.config import apply_overrides

    runs = list({r.name: r for r in select(study_runs(study, scale), only or {})}.values())
    todo = [(seed, run) for seed in seeds for run in runs]
    for index, (seed, run) in enumerate(todo, 1):
        config = apply_overrides(build_config(run, scale, root, seed), overrides or [])
        status = "done" if _finished(config) else "dry-run" if dry_run else "run"
        log(f"[{status} {index}/{len(todo)}] {study}/{scale}/{run.name} seed {seed} -> {config.run_dir}")
        if status != "run":
            continue
        ensure_prior(config, log=log)
        from urlvr_jax.rl.loop import train

        result = train(config)
        with open(os.path.join(config.run_dir, "study_done.json"), "w") as f:
            json.dump({"steps": result.steps, "collapse_step": result.collapse_step,
                       "rollout_tokens": result.rollout_tokens}, f)
    if dry_run:
        return {"study": study, "scale": scale, "runs": [r.name for r in runs], "seeds": list(seeds)}
    summary = report.write_report(study, scale, root, os.path.join(root, study, scale), name="report")
    log(report.table(summary))
    return summary


def list_runs(study: str | None, scale: str) -> str:
    lines = []
    for name in [study] if study else list(STUDIES):
        runs = study_runs(name, scale)
        lines.append(f"{name} ({scale}): {len({r.name for r in runs})} arms x {len(SEEDS)} seeds by default; "
                     f"study overrides {STUDY_OVERRIDES[name][scale]}")
        for run in runs:
            labels = ",".join(f"{k}={v}" for k, v in run.labels.items())
            lines.append(f"  {run.name:<40} study={name},{labels},scale={scale}  {run.overrides}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m urlvr_jax.studies", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("list", "run", "report"))
    parser.add_argument("study", nargs="?", help=f"one of {', '.join(STUDIES)}")
    parser.add_argument("--scale", default="toy", choices=SCALES)
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="RL seeds, e.g. 0,1,2 (run)")
    parser.add_argument("--only", action="append", default=[], metavar="LABEL=VALUE")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--out", default=os.path.join("docs", "studies"), help="report: where the page goes")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print(list_runs(args.study, args.scale))
            return 0
        if not args.study:
            parser.error(f"{args.command} needs a study: {', '.join(STUDIES)}")
        study_runs(args.study, args.scale)  # an unknown study or scale: one clear line
        if args.command == "report":
            from urlvr_jax.studies import report

            summary = report.write_report(args.study, args.scale, args.root, args.out)
            print(report.table(summary))
            print(f"wrote {os.path.join(args.out, report.page_name(args.study, args.scale))}.{{md,json,png}}")
            return 0
        only = parse_arg(",".join(args.only))
        run_study(args.study, args.scale, only, args.root, args.set, args.dry_run, parse_seeds(args.seeds))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
