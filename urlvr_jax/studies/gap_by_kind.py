"""Where majority voting and ground-truth RL part during the rise: their accuracy gap split by the prior's kinds.

    python -m urlvr_jax.studies run gap_by_kind --seeds 0,1,2,3,4 [--steps 10,20,30,40,60] [--k 64]
        [--out docs/gap_by_kind.json] [--config cpu_default] [key=value ...]
    python -m urlvr_jax.studies report gap_by_kind --out docs/gap_by_kind.json    # its table again, from the JSON

For each seed of :mod:`urlvr_jax.studies.seeds` (its prior must exist under ``<run_dir>/seeds/seed_<s>/prior``;
the seeds command makes it), both arms are replayed from the prior with their own configs for ``max(steps)``
steps, the same updates as the seeds' runs, and at each of ``steps`` every validation problem is sampled ``k``
times. The problems are sorted by the *prior's* kind (:mod:`urlvr_jax.toy.prior_kinds`: aligned,
misaligned, clueless), and the gap in validation accuracy, MV − GT, is the sum over kinds of

    share(kind) x (accuracy_MV(kind) − accuracy_GT(kind)),

each term with a 95% t-interval over seeds. The theory (paper section 5: sharpening helps where confidence
agrees with correctness) predicts no gap on the aligned problems, where both rewards push the same answer, and
all of it on the misaligned ones (ground truth raises the right answer's mass, the vote a wrong majority) and
clueless ones (ground truth cannot act, the vote sharpens a wrong answer). Each arm's share of problems whose
majority is right *now* shows whether training moves problems between kinds: on the CPU default the vote turns
aligned problems into wrong-majority ones during the rise, and that is where the gap sits (docs/results.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

import numpy as np

from urlvr_jax.studies.stats import parse_seeds, t_interval
from urlvr_jax.toy.prior_kinds import KINDS, kind_of, measure

MEASURE_KEY = 6_000_000  # + step: the measurements' sampling key, one for both arms; training keys are the run's


def arm_run(config, arm: str, prior: str):
    """One arm of one seed as the seeds command builds it (same config, same keys), not yet trained."""
    from urlvr_jax.rl.loop import URLVRRun
    from urlvr_jax.studies.seeds import arm_steps
    from urlvr_jax.toy.warm_start import arm_config

    return URLVRRun(arm_config(config, arm, prior, arm_steps(config, arm)))


def replay(config, arm: str, prior: str, steps: list[int], k: int, log=print) -> dict:
    """``{step: per-problem measurements}`` of one arm replayed from ``prior`` (step 0, if asked: the prior)."""
    import jax


    run, out = arm_run(config, arm, prior), {}
    for step in range(0, max(steps) + 1):
        if step:
            run.rollout_step(step)  # the loop's step: rollout, reward, update (validation draws no training key)
        if step in steps:
            out[step] = measure(run, run.state.params, run.val_examples, k, jax.random.key(MEASURE_KEY + step))
            log(f"  {arm} step {step}: accuracy {np.mean([p['accuracy'] for p in out[step]]):.3f}")
    return out


FIELDS = ("share", "mv", "gt", "term", "mv_right_majority", "gt_right_majority")


def split(kinds: list[str], mv: list[dict], gt: list[dict]) -> dict:
    """Per kind (and ``all``): share, both arms' mean accuracy and share of problems whose majority is right now,
    and the kind's term of the gap."""
    out = {}
    for kind in (*KINDS, "all"):
        idx = [i for i, k in enumerate(kinds) if kind in (k, "all")]
        mean = lambda arm, field: float(np.mean([arm[i][field] for i in idx])) if idx else None
        share, acc_mv, acc_gt = len(idx) / len(kinds), mean(mv, "accuracy"), mean(gt, "accuracy")
        out[kind] = dict(share=share, mv=acc_mv, gt=acc_gt, term=share * (acc_mv - acc_gt) if idx else 0.0,
                         mv_right_majority=mean(mv, "majority_correct"), gt_right_majority=mean(gt, "majority_correct"))
    return out


def over_seeds(per_seed: dict) -> dict:
    """{step: {kind: {field: t-interval over seeds}}}, with the paired MV − GT difference of the right-majority
    shares as ``right_majority_gap``."""
    def fields(rows: list[dict]) -> dict:
        out = {f: t_interval([r[f] for r in rows]) for f in FIELDS}
        out["right_majority_gap"] = t_interval([None if r["mv_right_majority"] is None
                                                else r["mv_right_majority"] - r["gt_right_majority"] for r in rows])
        return out

    first = next(iter(per_seed.values()))
    return {step: {kind: fields([s[step][kind] for s in per_seed.values()]) for kind in (*KINDS, "all")}
            for step in first}


def table(summary: dict) -> str:
    def cell(s, signed=False):
        if s["mean"] is None:
            return "—"
        f = "{:+.3f}" if signed else "{:.3f}"
        return f.format(s["mean"]) + ("" if s["lo"] is None else f" [{f.format(s['lo'])}, {f.format(s['hi'])}]")

    def majority(s):
        both = [s[f"{arm}_right_majority"]["mean"] for arm in ("mv", "gt")]
        if None in both:
            return "—"
        return f"{both[0]:.2f} / {both[1]:.2f} ({cell(s['right_majority_gap'], signed=True)})"

    lines = ["| step | problems (prior's kind) | share | MV accuracy | GT accuracy | share x (MV − GT) "
             "| right majority: MV / GT (MV − GT) |", "|---|---|---|---|---|---|---|"]
    for step, kinds in summary.items():
        for kind in (*KINDS, "all"):
            s = kinds[kind]
            lines.append(f"| {step} | {kind} | {s['share']['mean']:.2f} | {cell(s['mv'])} | {cell(s['gt'])} | "
                         f"{cell(s['term'], signed=True)} | {majority(s)} |")
    return "\n".join(lines)


def print_summary(summary: dict, seeds: int, k: int) -> None:
    print(f"{seeds} seeds, {k} samples per problem; mean [95% t-interval over seeds]")
    print(table(summary))


def main(argv: list[str] | None = None) -> int:
    """``run gap_by_kind``: replay both arms of every seed, split the gap, print it and write ``--out``."""
    from urlvr_jax.studies.seeds import seed_config
    from urlvr_jax.utils.config import parse_cli

    p = argparse.ArgumentParser(prog="python -m urlvr_jax.studies run gap_by_kind", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (their priors must exist)")
    p.add_argument("--steps", default="10,20,30,40,60", help="RL steps to measure at (default %(default)s)")
    p.add_argument("--k", type=int, default=64, help="samples per validation problem (default %(default)s)")
    p.add_argument("--out", default="", help="write per-seed and over-seed splits as JSON here")
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = p.parse_known_args(argv)
    config, extra = parse_cli(rest, default_config="cpu_default")
    if extra:
        p.error(f"unknown flags {extra}; overrides are written key=value")
    try:
        steps = sorted({int(s) for s in args.steps.split(",") if s.strip()})
    except ValueError:
        steps = []
    if not steps or steps[0] < 1:
        p.error(f"--steps {args.steps!r}: expected positive comma-separated steps like 10,20,30,40,60")
    from urlvr_jax.toy.warm_start import is_prior

    per_seed = {}
    for seed in parse_seeds(args.seeds):
        one = seed_config(config, seed)
        prior = os.path.join(one.run_dir, "prior")
        if not is_prior(prior):
            raise SystemExit(f"seed {seed}: no prior at {prior}; make it with "
                             f"python -m urlvr_jax.studies run seeds --seeds {seed}")
        print(f"--- seed {seed} ---")
        mv = replay(one, "majority_vote", prior, [0, *steps], args.k)  # step 0: the prior, whose kinds sort them
        gt = replay(one, "ground_truth", prior, steps, args.k)
        kinds = [kind_of(problem) for problem in mv[0]]
        per_seed[seed] = {step: split(kinds, mv[step], gt[step]) for step in steps}
    summary = over_seeds(per_seed)
    print_summary(summary, len(per_seed), args.k)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"command": shlex.join(["python", "-m", "urlvr_jax.studies", "run", "gap_by_kind", *argv]),
                       "k": args.k, "steps": steps, "per_seed": per_seed, "over_seeds": summary}, f, indent=1)
    return 0


def report_main(argv: list[str]) -> int:
    """``report gap_by_kind --out FILE``: the table again from the JSON that ``run gap_by_kind --out FILE`` wrote."""
    p = argparse.ArgumentParser(prog="python -m urlvr_jax.studies report gap_by_kind", description=report_main.__doc__)
    p.add_argument("--out", required=True, help="the JSON written by run (e.g. docs/gap_by_kind_cpu_default.json)")
    args = p.parse_args(argv)
    if not os.path.isfile(args.out):
        p.error(f"--out {args.out}: no such file; write it with python -m urlvr_jax.studies run gap_by_kind --out FILE")
    with open(args.out) as f:
        data = json.load(f)
    print(f"command: {data['command']}")
    print_summary(data["over_seeds"], len(data["per_seed"]), data["k"])
    return 0
