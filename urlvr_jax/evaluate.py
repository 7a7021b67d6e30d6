"""Evaluate a policy on benchmark files with the paper's protocol: k samples per problem at temperature 0.6,
top-p 0.95; avg@k, pass@k and maj@k per dataset.

    python -m urlvr_jax.evaluate --run runs/my_run --datasets math500,aime24 --k 16 --out results.json
    python -m urlvr_jax.evaluate --model /models/Qwen3-1.7B-Base --datasets aime24,amc23
    python -m urlvr_jax.evaluate --model SmolLM2-135M-Instruct.Q4_1.gguf --datasets math500 --limit 100

``--run`` takes a run directory of ``urlvr_jax.train``: its ``config.json`` (model, tokenizer, prompt template,
mesh) and the latest orbax checkpoint. ``--model`` takes a Hugging Face directory or a ``.gguf`` file, prompted
with the ``boxed`` template in the tokenizer's chat template when it has one. Datasets are read from
``$URLVR_DATA_DIR`` (``urlvr_jax.tasks.datasets``); ``name:split`` picks a split (``countdown:test``).
Countdown is prompted with its own template and graded with its verifier; the others with the run's template
(``boxed`` unless the run set another) and the math grader. Any ``key=value`` after the flags overrides a
config field (``rollout.max_prompt_len=1024``, ``data.chat_template=false``, ``mesh=data:2``, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

PROTOCOL = dict(k=16, temperature=0.6, top_p=0.95)  # the paper's evaluation sampling
MODEL_DEFAULTS = ("rollout.max_prompt_len=1024", "val.max_new_tokens=1024")  # --model only; ours, not the paper's


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="python -m urlvr_jax.evaluate", description=__doc__.split("\n\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a run directory written by urlvr_jax.train (config.json + checkpoints/)")
    source.add_argument("--model", help="a Hugging Face model directory or a .gguf file")
    p.add_argument("--datasets", required=True, help="comma-separated dataset names, each optionally name:split")
    p.add_argument("--k", type=int, default=PROTOCOL["k"], help="samples per problem (default %(default)s)")
    p.add_argument("--temperature", type=float, default=PROTOCOL["temperature"])
    p.add_argument("--top-p", type=float, default=PROTOCOL["top_p"])
    p.add_argument("--max-new-tokens", type=int, default=0,
                   help="response budget (default: the run's val/rollout length; 1024 with --model)")
    p.add_argument("--batch-prompts", type=int, default=0, help="problems sampled at once (default: "
                   "rollout.prompts_per_step)")
    p.add_argument("--limit", type=int, default=0, help="evaluate the first N problems of each dataset (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the results as JSON to this file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args, rest = p.parse_known_args(argv)
    bad = [a for a in rest if "=" not in a or a.startswith("-")]
    if bad:
        p.error(f"unrecognized arguments: {' '.join(bad)} (config overrides are written key=value)")
    for name in ("k", "batch_prompts", "limit", "max_new_tokens"):
        if getattr(args, name) < (1 if name == "k" else 0):
            p.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= {1 if name == 'k' else 0}")
    return args, rest


def run_config(args, overrides: list[str]):
    """The run's config (``--run``: its config.json over today's defaults) with the protocol and overrides."""
    from urlvr_jax.config_base import get_config
    from urlvr_jax.utils.config import apply_overrides

    config = get_config()
    if args.run:
        path = os.path.join(args.run, "config.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{args.run}: no config.json (expected a run directory of urlvr_jax.train)")
        with open(path) as f:
            try:
                config.update(json.load(f))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: invalid JSON ({e})") from None
    else:
        if not (os.path.isdir(args.model) or (args.model.endswith(".gguf") and os.path.isfile(args.model))):
            raise FileNotFoundError(f"--model {args.model}: not a Hugging Face directory or a .gguf file")
        config.model.update(source="hf", path=args.model)
        config.tokenizer.update(kind="hf", path="")
        config = apply_overrides(config, list(MODEL_DEFAULTS))
    config = apply_overrides(config, overrides)
    config.val.update(k=args.k, temperature=args.temperature, top_p=args.top_p)
    if args.max_new_tokens:
        config.val.max_new_tokens = args.max_new_tokens
    if args.batch_prompts:
        config.rollout.prompts_per_step = args.batch_prompts
    return config


def load_policy(args, config):
    """(tokenizer, ModelConfig, params, mesh, checkpoint step or None)."""
    import jax

    from urlvr_jax import sharding as shd
    from urlvr_jax.rl import setup
    from urlvr_jax.rl.loop import parse_reward_spec
    from urlvr_jax.rl.train_step import init_train_state, state_shardings
    from urlvr_jax.utils import multihost
    from urlvr_jax.utils.checkpoint import CheckpointManager

    mesh = shd.make_mesh(config.mesh or None)
    tokenizer = setup.build_tokenizer(config)
    cfg, params = setup.build_model(config, tokenizer, mesh, jax.random.key(config.seed))
    if not args.run:
        return tokenizer, cfg, params, mesh, None
    ckpt_dir = os.path.join(args.run, "checkpoints")
    if not os.path.isdir(ckpt_dir):
        raise FileNotFoundError(f"{args.run}: no checkpoints/ directory (the run saved no checkpoint)")
    _, optimizer = setup.step_and_optimizer(config)
    state = init_train_state(params, optimizer, jax.random.key(0))
    target = {"train": multihost.place(state, state_shardings(state, mesh, cfg))}
    spec = parse_reward_spec(config.reward.name)
    if "co_rewarding_teacher" in ([spec] if isinstance(spec, str) else spec):
        target["teacher"] = params
    with CheckpointManager(ckpt_dir) as manager:
        restored = manager.restore_latest(target)
        step = manager.latest_step()
    if restored is None:
        raise FileNotFoundError(f"{ckpt_dir}: no restorable checkpoint")
    state, data_state = restored
    return tokenizer, cfg, state["train"].params, mesh, int(data_state.get("step", step))


def parse_datasets(text: str) -> list[tuple[str, str | None]]:
    from urlvr_jax.tasks.datasets import dataset_names

    out = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        name, _, split = item.partition(":")
        if name not in dataset_names():
            raise ValueError(f"--datasets: unknown dataset {name!r}; known: {', '.join(dataset_names())}")
        out.append((name, split or None))
    if not out:
        raise ValueError("--datasets is empty; name one or more of: " + ", ".join(dataset_names()))
    return out


def evaluate(args, overrides: list[str]) -> dict:
    import jax
    from tqdm.auto import tqdm

    from urlvr_jax import evaluation
    from urlvr_jax.rl import setup
    from urlvr_jax.rl.data import data_protocol
    from urlvr_jax.tasks.datasets import load_dataset

    datasets = parse_datasets(args.datasets)
    config = run_config(args, overrides)
    loaded = {}
    with contextlib.redirect_stdout(sys.stderr):  # TFDS reports preparing a file on stdout; keep it for the table
        for name, split in datasets:  # every file is checked before the model loads
            examples = load_dataset(name, split=split, **_fields(config))
            loaded[name, split] = examples[:args.limit] if args.limit else examples
    tokenizer, cfg, params, mesh, step = load_policy(args, config)
    sampler = evaluation.validation_sampler(config, cfg, tokenizer, mesh)
    k, key = args.k, jax.random.key(args.seed)
    results = {}
    for index, ((name, split), examples) in enumerate(loaded.items()):
        protocol = data_protocol(config.data, name)
        dataset_key = jax.random.fold_in(key, index)

        def rollout_batch(part, start):
            prompts = setup.prompt_texts(config, tokenizer, part, template=protocol.template)
            _, host, texts = evaluation.sample_texts(config, tokenizer, sampler, params, prompts,
                                                     jax.random.fold_in(dataset_key, start), k)
            return evaluation.reward_batch(host, texts, part, k, protocol.extract)

        with tqdm(total=len(examples), desc=name, unit="problem", disable=args.no_progress, file=sys.stderr) as bar:
            scores = evaluation.evaluate_examples(examples, k, rollout_batch, chunk=config.rollout.prompts_per_step,
                                                  gt_reward=protocol.gt_reward, on_chunk=bar.update)
        label = name if split is None else f"{name}:{split}"
        results[label] = {"problems": len(examples),
                          **{key_.replace("@k", f"@{k}"): value for key_, value in scores.items()}}
    source = {"run": args.run, "checkpoint_step": step} if args.run else {"model": args.model}
    settings = {"k": k, "temperature": args.temperature, "top_p": args.top_p, "seed": args.seed,
                "max_new_tokens": sampler.sampling.max_new_tokens, "template": config.data.template,
                "chat_template": config.data.chat_template}
    return {**source, "protocol": settings, "datasets": results}


def _fields(config) -> dict:
    """``data.fields`` (other file layouts), where this version of the config has it."""
    fields = config.data.get("fields", "")
    return {"fields": fields} if fields else {}


def format_table(results: dict) -> str:
    k = results["protocol"]["k"]
    columns = ["problems", f"avg@{k}", f"pass@{k}", f"maj@{k}", "response_length"]
    rows = [["dataset", "problems", f"avg@{k}", f"pass@{k}", f"maj@{k}", "mean length"]]
    for name, scores in results["datasets"].items():
        cells = [name]
        for column in columns:
            value = scores.get(column)
            cells.append("-" if value is None else str(value) if column == "problems" else
                         f"{value:.1f}" if column == "response_length" else f"{value:.4f}")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)


def main(argv: list[str] | None = None) -> int:
    args, overrides = parse_args(argv)
    try:
        results = evaluate(args, overrides)
    except (FileNotFoundError, KeyError, ValueError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {str(message).splitlines()[0]}", file=sys.stderr)
        return 2
    from urlvr_jax.utils import multihost

    if multihost.is_primary():
        print(format_table(results))
        if args.out:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w") as f:
                json.dump(results, f, indent=2)
            print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    from urlvr_jax.utils.entry import run_main

    run_main(main)
