"""Per-problem and out-of-distribution views (paper section 5): what trajectory-entropy sharpening does to one
problem trained alone, and to unseen problems when only wrong-majority problems are trained on.

    python -m urlvr_jax.studies run per_problem [--seeds 0,1,2] [--root runs/studies] [--set key=value ...]
    python -m urlvr_jax.studies report per_problem [--root runs/studies] [--out docs/studies]

From the toy studies' prior (``<root>/prior``, ``configs/toy_studies``'s; warm-started if missing), reward
``trajectory_entropy``, every other setting ``configs/toy_studies``'s unless ``SETTINGS`` says otherwise.
``--set`` overrides any config field, the view's own knobs included (``per_problem.*``, defaults in ``VIEW``).
Everything goes to
``<root>/per_problem/toy``:

* ``prior.json``: the prior measured twice with independent samples (``k`` samples per problem each: accuracy,
  majority answer and share, whether the majority is right) on the candidate problems (the toy base's 128
  validation problems, ``data.val_seed``) and on a training pool of generated problems disjoint from them; the
  second measurement is the noise floor of a "flip". It picks ``right`` problems with a right majority and ``wrong``
  with a wrong one at random (fixed ``select_seed``) for the per-problem view.
* ``single/seed_<s>/results.jsonl``: per picked problem, trained alone (``single_prompts`` copies of it per step,
  ``rollout.n`` samples each, ``single_steps`` steps, a fresh optimizer from the prior), measured every
  ``measure_every`` steps. One line per problem, so an interrupted seed resumes at the next problem.
* ``ood_<arm>/seed_<s>/``: a training-loop run on the pool's wrong-majority problems (``wrong``; ``wrong:6``: 6 of
  them drawn at random, the paper's count, in ``ood_wrong_6``) or, as a control, its right-majority ones (``right``),
  validated every ``val.every`` steps on the unseen candidates (val/maj@k is
  label accuracy, val/avg@k accuracy), resumable from its checkpoints; ``final.json`` measures the unseen problems
  one by one at the end, as ``prior.json`` did.

The report (:mod:`urlvr_jax.studies.per_problem_report`) sorts and counts.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from urlvr_jax.studies import per_problem_report, runner
from urlvr_jax.studies.per_problem_report import STUDY, view_dir
from urlvr_jax.studies.stats import parse_seeds
from urlvr_jax.toy.prior_kinds import measure

SETTINGS = {"reward.name": "trajectory_entropy", "algo.report_ref_kl": False, "train.progress": False,
            "val.k": 32, "val.every": 10}
VIEW = dict(k=64, right=15, wrong=15, select_seed=0, single_steps=60, single_prompts=4, measure_every=10,
            pool_size=128, pool_seed=1, ood_steps=100, ood_prompts=16, ood_arms="wrong,right,wrong:6")
PRIOR_KEYS = (1_234_567, 7_654_321)  # the prior's two independent measurements
MEASURE_KEY = 5_000_000


def base_config(root: str, overrides: list[str] | None = None) -> ml_collections.ConfigDict:
    """The toy base with ``SETTINGS``, the view's knobs (``per_problem.*``) and ``overrides``, on the studies' prior."""
    from urlvr_jax.utils.config import apply_overrides

    c = runner.toy_base()
    for key, value in SETTINGS.items():
        runner._set(c, key, value)
    c.per_problem = ml_collections.ConfigDict(VIEW)
    prior = runner.prior_dir(root, STUDY)
    c.study = ml_collections.ConfigDict(dict(name=STUDY, run="", scale="toy", labels="{}", prior_dir=prior))
    c.model.update(source="hf", path=prior)
    c.tokenizer.update(kind="hf", path=prior)
    c = apply_overrides(c, overrides or [])
    c.unlock()
    return c


def phase_config(base: ml_collections.ConfigDict, phase: str, seed: int, run_dir: str) -> ml_collections.ConfigDict:
    """``single``: one problem's copies per step; ``ood``: a pool of problems. One on-policy update per step."""
    c = copy.deepcopy(base)
    v = c.per_problem
    prompts, steps = (v.single_prompts, v.single_steps) if phase == "single" else (v.ood_prompts, v.ood_steps)
    c.rollout.prompts_per_step = c.algo.mini_batch_prompts = int(prompts)
    c.train.steps, c.seed, c.run_dir = int(steps), int(seed), run_dir
    c.name = f"{STUDY}/{os.path.basename(os.path.dirname(run_dir))}/seed_{seed}"
    c.study.run = phase
    return c


# ---------------------------------------------------------------------------------------------- measuring

def _examples(problems: list[dict]):
    from urlvr_jax.tasks import Example

    return [Example(prompt=p["prompt"], answer=p["answer"], info=p.get("info", {})) for p in problems]


def _write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(path + ".tmp", path)


def measure_prior(base: ml_collections.ConfigDict, out: str, log=print) -> dict:
    """``prior.json`` (cached): the candidates and the training pool, each measured twice, and the selection."""
    path = os.path.join(out, "prior.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    from urlvr_jax.rl.data import make_task, validation_examples
    from urlvr_jax.rl.loop import URLVRRun
    from urlvr_jax.tasks import make_pool

    v = base.per_problem
    run = URLVRRun(phase_config(base, "single", 0, os.path.join(out, "prior_measure", "seed_0")))
    candidates = validation_examples(run.config.data)
    seen = {ex.prompt for ex in candidates}
    pool = [ex for ex in make_pool(make_task(run.config.data), v.pool_size + len(seen), v.pool_seed)
            if ex.prompt not in seen][:v.pool_size]
    sets = {}
    for name, examples in (("candidates", candidates), ("pool", pool)):
        runs = [measure(run, run.state.params, examples, v.k, jax.random.key(key)) for key in PRIOR_KEYS]
        sets[name] = [dict(prompt=ex.prompt, answer=ex.answer, info=dict(ex.info), prior=a, prior_again=b)
                      for ex, a, b in zip(examples, *runs)]
        log(f"prior on {len(examples)} {name}: accuracy {np.mean([a['accuracy'] for a in runs[0]]):.3f}, "
            f"right majority {np.mean([a['majority_correct'] for a in runs[0]]):.3f}")
    rng = np.random.default_rng(v.select_seed)
    picked = []
    for want, count in ((True, v.right), (False, v.wrong)):
        idx = [i for i, p in enumerate(sets["candidates"]) if p["prior"]["majority_correct"] == want]
        if len(idx) < count:
            raise ValueError(f"per_problem: the prior has {len(idx)} candidates with a {'right' if want else 'wrong'}"
                             f" majority, fewer than per_problem.{'right' if want else 'wrong'}={count}")
        picked += sorted(rng.choice(idx, size=count, replace=False).tolist())
    result = dict(k=v.k, **sets, picked=picked)
    _write_json(path, result)
    return result


# ---------------------------------------------------------------------------------------------- the two views

def _fresh_state(run, prior_params, key):
    from urlvr_jax.rl.train_step import init_train_state, state_shardings
    from urlvr_jax.utils import multihost

    state = init_train_state(jax.tree.map(jnp.copy, prior_params), run.optimizer, key)
    return multihost.place(state, state_shardings(state, run.mesh, run.cfg))


def run_single(base, prior: dict, seed: int, out: str, log=print) -> str:
    """Trains each picked problem alone from the prior; appends one line per problem to ``results.jsonl``."""
    from urlvr_jax.rl.data import PromptSource
    from urlvr_jax.rl.loop import URLVRRun

    run_dir = os.path.join(out, "single", f"seed_{seed}")
    path = os.path.join(run_dir, "results.jsonl")
    done = set()
    if os.path.exists(path):
        with open(path) as f:
            done = {json.loads(line)["index"] for line in f if line.strip()}
    todo = [i for i in prior["picked"] if i not in done]
    if not todo:
        return path
    c = phase_config(base, "single", seed, run_dir)
    os.makedirs(run_dir, exist_ok=True)
    run = URLVRRun(c)
    prior_params = jax.tree.map(jnp.copy, run.state.params)
    every, k = int(c.per_problem.measure_every), int(c.per_problem.k)
    for n, index in enumerate(todo, 1):
        problem = prior["candidates"][index]
        example = _examples([problem])
        key = jax.random.fold_in(jax.random.key(seed), index)
        run.state = _fresh_state(run, prior_params, jax.random.fold_in(key, 1))  # donated by the step
        run.source = PromptSource(c.rollout.prompts_per_step, seed, pool=tuple(example))
        curve = []
        for step in range(1, c.train.steps + 1):
            metrics = run.rollout_step(step)
            if step % every == 0 or step == c.train.steps:
                m = measure(run, run.state.params, example, k, jax.random.fold_in(key, MEASURE_KEY + step))[0]
                curve.append(dict(step=step, proxy_reward=metrics["proxy_reward"], **m))
        line = dict(index=index, prompt=problem["prompt"], answer=problem["answer"], curve=curve)
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")
        log(f"[single seed {seed} {n}/{len(todo)}] {problem['prompt']!r} = {problem['answer']}: accuracy "
            f"{problem['prior']['accuracy']:.2f} -> {curve[-1]['accuracy']:.2f}, majority "
            f"{problem['prior']['majority']!r} -> {curve[-1]['majority']!r}")
    return path


def parse_arm(arm: str) -> tuple[str, int]:
    """``wrong`` / ``right`` -> (kind, 0: all of them); ``wrong:N`` / ``right:N`` -> (kind, N)."""
    kind, _, count = arm.partition(":")
    if kind not in ("wrong", "right") or (count and not (count.isdigit() and int(count) > 0)):
        raise ValueError(f"per_problem.ood_arms: {arm!r} is not wrong, right, wrong:N or right:N (N >= 1)")
    return kind, int(count or 0)


def ood_problems(prior: dict, arm: str, select_seed: int) -> list[dict]:
    """The pool's problems of ``arm`` (:func:`parse_arm`); N of them are drawn at random (``select_seed``)."""
    kind, count = parse_arm(arm)
    problems = [p for p in prior["pool"] if p["prior"]["majority_correct"] == (kind == "right")]
    if len(problems) < max(count, 1):
        raise ValueError(f"per_problem: {len(problems)} pool problems have a {kind} prior majority, too few for "
                         f"ood arm {arm!r} (raise per_problem.pool_size)")
    if count:
        idx = np.random.default_rng(select_seed).choice(len(problems), size=count, replace=False)
        problems = [problems[i] for i in sorted(idx)]
    return problems


def arm_dir(arm: str) -> str:
    return "ood_" + arm.replace(":", "_")


def run_ood(base, prior: dict, arm: str, seed: int, out: str, log=print) -> str:
    """The training loop on the pool's ``arm`` problems (:func:`ood_problems`), validated on the candidates."""
    from urlvr_jax.rl.data import PromptSource
    from urlvr_jax.rl.loop import URLVRRun

    problems = ood_problems(prior, arm, int(base.per_problem.select_seed))
    run_dir = os.path.join(out, arm_dir(arm), f"seed_{seed}")
    if os.path.exists(os.path.join(run_dir, "final.json")):
        return run_dir
    c = phase_config(base, "ood", seed, run_dir)
    run = URLVRRun(c)
    run.source = PromptSource(c.rollout.prompts_per_step, seed, pool=tuple(_examples(problems)))
    unseen = _examples(prior["candidates"])
    run.val_examples = unseen
    log(f"[ood {arm} seed {seed}] {len(problems)} training problems, {len(unseen)} unseen -> {run_dir}")
    result = run.train()
    final = measure(run, result.params, unseen, int(c.per_problem.k), jax.random.key(MEASURE_KEY + seed))
    _write_json(os.path.join(run_dir, "final.json"), dict(train_problems=len(problems), steps=result.steps,
                                                           final=final))
    return run_dir


def run_all(root: str, seeds, overrides: list[str] | None = None, log=print) -> dict:
    base = base_config(root, overrides)
    arms = [a.strip() for a in str(base.per_problem.ood_arms).split(",") if a.strip()]
    for arm in arms:
        parse_arm(arm)  # a bad arm fails before anything runs
    out = view_dir(root)
    runner.ensure_prior(base, log=log)
    prior = measure_prior(base, out, log=log)
    _write_json(os.path.join(out, "settings.json"), dict(
        **base.per_problem.to_dict(), reward=base.reward.name, n=base.rollout.n, temperature=base.rollout.temperature,
        lr=base.optim.lr, warmup_ratio=base.optim.warmup_ratio, val_k=base.val.k, val_every=base.val.every))
    for seed in seeds:  # seed by seed: a partial study is a complete one on fewer seeds
        run_single(base, prior, seed, out, log=log)
        for arm in arms:
            run_ood(base, prior, arm, seed, out, log=log)
    return prior


def main(argv: list[str]) -> int:
    """``run per_problem``: every seed's runs, then the report of what is finished beside them."""
    parser = argparse.ArgumentParser(prog="python -m urlvr_jax.studies run per_problem",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="RL seeds, e.g. 0,1,2")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--root", default=runner.DEFAULT_ROOT)
    args = parser.parse_args(argv)
    try:
        run_all(args.root, parse_seeds(args.seeds), args.set)
        print(per_problem_report.table(per_problem_report.write_report(view_dir(args.root), view_dir(args.root),
                                                                       name="report")))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
