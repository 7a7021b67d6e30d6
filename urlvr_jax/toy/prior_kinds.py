"""What kinds of prompts a warm-started prior holds: where majority voting can only agree with ground truth, and
where the two rewards part.

    python -m urlvr_jax.toy.prior_kinds --priors runs/cpu_default/seeds/seed_*/prior [--config cpu_default]
        [--k 64] [--out prior_kinds.json] [key=value ...]

Each validation problem of ``--config`` (its task, ``data.val_size``, ``data.val_seed``) is sampled ``k`` times at
the validation settings and sorted into one of three kinds (the paper's alignment condition, per prompt):

* **aligned**: the majority answer is right. Majority voting rewards what ground truth rewards (up to vote noise).
* **misaligned**: the majority is wrong but the right answer has mass (accuracy >= ``MASS``): ground-truth RL can
  raise it, majority voting pushes the wrong majority instead.
* **clueless**: the right answer is (nearly) never sampled (accuracy < ``MASS``): ground truth has nothing to
  reinforce, majority voting still sharpens a wrong answer.

Per prior and over priors (mean with a 95% t-interval), split by the task's ``n_ops`` where problems have one: the
share of each kind and its mean accuracy. Label accuracy (the majority-vote reward's agreement with the labels at
the prompt level) is the aligned share.
"""

from __future__ import annotations

import argparse
import collections
import json
from types import SimpleNamespace

import jax
import numpy as np

MASS = 0.05
KINDS = ("aligned", "misaligned", "clueless")


def kind_of(problem: dict) -> str:
    """One measured problem (:func:`measure`'s dict) -> its kind."""
    if problem["majority_correct"]:
        return "aligned"
    return "misaligned" if problem["accuracy"] >= MASS else "clueless"


def tally(problems: list[dict], groups: list) -> dict:
    """{group: {kind: {"share", "accuracy"}, "n"}} over the problems, plus an ``all`` group."""
    by_group = collections.defaultdict(list)
    for problem, group in zip(problems, groups):
        by_group[str(group)].append(problem)
        if group != "all":
            by_group["all"].append(problem)
    out = {}
    for group, items in sorted(by_group.items()):
        kinds = collections.defaultdict(list)
        for p in items:
            kinds[kind_of(p)].append(p["accuracy"])
        out[group] = {"n": len(items), **{k: {"share": len(kinds[k]) / len(items),
                                              "accuracy": sum(kinds[k]) / len(kinds[k]) if kinds[k] else None}
                                          for k in KINDS}}
    return out


def measure(run, params, examples, k: int, key) -> list[dict]:
    """Per problem, from ``k`` samples at the validation settings: accuracy, majority answer and its share, and
    whether the majority answer is right."""
    from urlvr_jax import evaluation
    from urlvr_jax.rewards import metrics as rmetrics
    from urlvr_jax.rewards.ensemble import majority_labels
    from urlvr_jax.rewards.registry import compute_rewards
    from urlvr_jax.rl import setup

    c, protocol, chunk, out = run.config, run.val_protocol, max(run.config.rollout.prompts_per_step, 1), []
    for start in range(0, len(examples), chunk):
        part = list(examples[start:start + chunk])
        prompts = setup.prompt_texts(c, run.tokenizer, part, template=protocol.template)
        _, host, texts = evaluation.sample_texts(c, run.tokenizer, run.val_sampler, params, prompts,
                                                 jax.random.fold_in(key, start), k)
        batch = evaluation.reward_batch(host, texts, part, k, protocol.extract)
        correct = np.asarray(compute_rewards(protocol.gt_reward, batch), float)
        labels, shares = majority_labels(batch)
        right = rmetrics.label_accuracy([labels[g] for g in range(len(part))], [ex.answer for ex in part],
                                        [ex.info.get("answer_type") for ex in part])
        groups = np.asarray(batch.group_ids)
        out += [dict(accuracy=float(correct[groups == g].mean()), majority=labels[g], share=float(shares[g]),
                     majority_correct=bool(right[g])) for g in range(len(part))]
    return out


def measure_prior(config, prior_dir: str, k: int, seed: int = 0) -> dict:
    """Samples ``k`` answers per validation problem from the prior at ``prior_dir`` and tallies the kinds."""
    from urlvr_jax import evaluation
    from urlvr_jax.toy.warm_start import from_prior
    from urlvr_jax.rl import setup
    from urlvr_jax.rl.data import validation_examples, validation_protocol
    from urlvr_jax.utils.config import apply_overrides

    c = apply_overrides(config, from_prior(prior_dir))
    tokenizer = setup.build_tokenizer(c)
    cfg, params = setup.build_model(c, tokenizer, None, jax.random.key(seed))
    run = SimpleNamespace(config=c, tokenizer=tokenizer, val_protocol=validation_protocol(c.data),
                          val_sampler=evaluation.validation_sampler(c, cfg, tokenizer, None))
    examples = validation_examples(c.data)
    problems = measure(run, params, examples, k, jax.random.key(seed))
    groups = [f"n_ops={ex.info['n_ops']}" if "n_ops" in ex.info else "all" for ex in examples]
    return tally(problems, groups)


def over_priors(results: dict[str, dict]) -> dict:
    """Mean and 95% t-interval over priors of every share and accuracy."""
    from urlvr_jax.studies.stats import t_interval

    first = next(iter(results.values()))
    return {group: {kind: {field: t_interval([r[group][kind][field] for r in results.values()
                                              if r[group][kind][field] is not None])
                           for field in ("share", "accuracy")} for kind in KINDS}
            for group in first}


def table(summary: dict) -> str:
    def cell(s):
        return "—" if s["mean"] is None else (f"{s['mean']:.2f}" if s["lo"] is None
                                              else f"{s['mean']:.2f} [{s['lo']:.2f}, {s['hi']:.2f}]")
    lines = ["| problems | " + " | ".join(f"{k} share | {k} accuracy" for k in KINDS) + " |", "|---" * 7 + "|"]
    for group, kinds in summary.items():
        lines.append(f"| {group} | " + " | ".join(f"{cell(kinds[k]['share'])} | {cell(kinds[k]['accuracy'])}"
                                                  for k in KINDS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from urlvr_jax.utils.config import parse_cli

    p = argparse.ArgumentParser(prog="python -m urlvr_jax.toy.prior_kinds",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--priors", nargs="+", required=True, help="Hugging Face directories of warm-started priors")
    p.add_argument("--k", type=int, default=64, help="samples per problem (default %(default)s)")
    p.add_argument("--out", default="", help="write the per-prior and over-prior tallies as JSON here")
    args, rest = p.parse_known_args(argv)
    config, extra = parse_cli(rest, default_config="cpu_default")
    if extra:
        p.error(f"unknown flags {extra}")
    from urlvr_jax.toy.warm_start import is_prior

    missing = [d for d in args.priors if not is_prior(d)]
    if missing:
        p.error(f"--priors {' '.join(missing)}: no prior there (a Hugging Face directory with config.json, as the "
                f"seeds command writes to <run_dir>/seeds/seed_<s>/prior)")
    results = {d: measure_prior(config, d, args.k) for d in args.priors}
    summary = over_priors(results)
    print(f"{len(results)} priors, {args.k} samples per problem; mean [95% t-interval over priors]")
    print(table(summary))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"k": args.k, "mass": MASS, "priors": results, "over_priors": summary}, f, indent=1)
    return 0


if __name__ == "__main__":
    from urlvr_jax.utils.entry import run_main

    run_main(main)
