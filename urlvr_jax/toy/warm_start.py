"""Supervised warm start: teach a tiny transformer a synthetic task up to a partial, imperfect prior.

    python -m urlvr_jax.toy.warm_start --out runs/prior [--config cpu_default] [warm_start.steps=1500 ...]
    urlvr warm-start --out runs/prior                        # the same; then train from it with the overrides it prints

The prior's imperfection is controlled the way the theory module's coupled toy controls it: a share
``noise_fraction`` of the supervised targets is replaced by one shared *default answer*, which every
prompt then leans towards (a shared attractor). Prompts the model learned well keep a correct majority
(aligned); the others get the default answer as their majority (misaligned).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from urlvr_jax.model.config import ModelConfig
from urlvr_jax.model.transformer import Params
from urlvr_jax.sampling.logprobs import completion_logprobs
from urlvr_jax.tasks import Example
from urlvr_jax.utils.config import apply_overrides


@dataclasses.dataclass(frozen=True)
class WarmStartConfig:
    steps: int = 300
    batch_size: int = 64
    lr: float = 3e-3
    train_fraction: float = 0.6  # share of the task's prompt pool shown in supervision (the rest is unseen)
    copies: int = 8  # each example appears this many times, each copy noisy on its own
    noise_fraction: float = 0.3  # share of targets replaced by another problem's answer (spread noise)
    default_fraction: float = 0.1  # share of targets replaced by the one shared default answer (the attractor)
    default_answer: str = "10"
    seed: int = 0
    verify_fraction: float = 0.0  # share of the pairs that teach self-verification (Countdown; see verification_pairs)
    verify_template: str = ""  # the self_verify reward's template (reward.options.self_verify.template)


def supervised_pairs(examples: list[Example], ws: WarmStartConfig) -> list[tuple[str, str]]:
    """(prompt, target) pairs: ``ws.copies`` copies of each example; each copy's target is, independently,
    the shared default answer (probability ``default_fraction``), another example's answer (``noise_fraction``)
    or the correct solution, so a learned prompt keeps a soft prior with a correct plurality."""
    rng = np.random.default_rng(ws.seed)
    pairs = []
    for ex in examples:
        for u in rng.random(ws.copies):
            if u < ws.default_fraction:
                target = ws.default_answer
            elif u < ws.default_fraction + ws.noise_fraction:
                target = examples[int(rng.integers(len(examples)))].answer
            else:
                target = ex.solution or ex.answer
            pairs.append((ex.prompt, target))
    return pairs


def _change_operator(solution: str, rng: np.random.Generator) -> str:
    """``solution`` with one of its operators replaced by another (the same numbers, another value)."""
    places = [i for i, ch in enumerate(solution) if ch in "+-*/" and solution[i - 1:i] != "<"]
    if not places:
        return solution
    i = int(rng.choice(places))
    return solution[:i] + str(rng.choice([op for op in "+-*" if op != solution[i]])) + solution[i + 1:]


def verification_pairs(examples: list[Example], ws: WarmStartConfig, count: int) -> list[tuple[str, str]]:
    """``count`` (verification prompt, verdict) pairs teaching the ``self_verify`` reward's check on Countdown: a
    candidate is an example's own solution (half the time), that solution with one operator changed, another
    example's solution, or the shared default answer (the wrong answers a noisy prior produces); its verdict,
    ``true`` or ``false``, is the Countdown checker's. Verifying needs only the given numbers and one evaluation,
    so it can be learnt where solving (a search) is not."""
    from urlvr_jax.rewards.countdown import check_countdown, extract_countdown_answer
    from urlvr_jax.rewards.self_verify import verification_prompts

    rng = np.random.default_rng(ws.seed + 2)
    candidates, infos, verdicts = [], [], []
    for _ in range(count):
        ex = examples[int(rng.integers(len(examples)))]
        u = rng.random()
        candidate = (ex.solution if u < 0.5 else _change_operator(ex.solution, rng) if u < 0.7
                     else examples[int(rng.integers(len(examples)))].solution if u < 0.85 else ws.default_answer)
        right = check_countdown(extract_countdown_answer(candidate) or "", ex.info["numbers"], ex.info["target"])
        candidates.append(candidate)
        infos.append(ex.info)
        verdicts.append("true" if right else "false")
    return list(zip(verification_prompts(candidates, infos, ws.verify_template), verdicts))


def _encode(tokenizer, pairs: list[tuple[str, str]], add_special_tokens: bool):
    prompts = tokenizer([p for p, _ in pairs], padding=True, add_special_tokens=add_special_tokens, return_tensors="np")
    targets = [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for _, t in pairs]
    width = max(len(t) for t in targets)
    tokens = np.full((len(pairs), width), tokenizer.pad_token_id, np.int32)
    mask = np.zeros((len(pairs), width), bool)
    for i, t in enumerate(targets):
        tokens[i, :len(t)], mask[i, :len(t)] = t, True
    return prompts["input_ids"].astype(np.int32), prompts["attention_mask"].astype(bool), tokens, mask


def supervised_finetune(cfg: ModelConfig, params: Params, tokenizer, pairs: list[tuple[str, str]],
                        ws: WarmStartConfig, add_special_tokens: bool = True, log=None) -> Params:
    """``ws.steps`` AdamW steps of token-mean negative log-likelihood of the targets given the prompts."""
    pt, pm, tt, tm = _encode(tokenizer, pairs, add_special_tokens)
    optimizer = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, ws.lr, max(ws.steps // 10, 1), ws.steps),
                            weight_decay=0.0)

    def loss_fn(p, batch):
        lp = completion_logprobs(p, *batch, cfg=cfg)
        return -(lp * batch[3]).sum() / batch[3].sum()

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(p, opt_state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(p, batch)
        updates, opt_state = optimizer.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, loss

    params = jax.tree.map(jnp.copy, params)
    opt_state = optimizer.init(params)
    rng = np.random.default_rng(ws.seed + 1)
    for i in range(ws.steps):
        idx = rng.choice(len(pairs), size=min(ws.batch_size, len(pairs)), replace=False)
        params, opt_state, loss = step(params, opt_state, (pt[idx], pm[idx], tt[idx], tm[idx]))
        if log is not None and (i + 1) % max(ws.steps // 5, 1) == 0:
            log(f"warm start step {i + 1}/{ws.steps}: loss {float(loss):.3f}")
    return params


def is_prior(directory: str) -> bool:
    """Whether ``directory`` holds a finished prior (:func:`make_prior` writes config.json last, by a rename)."""
    return os.path.isfile(os.path.join(directory, "config.json"))


def make_prior(config, out_dir: str, log=print) -> str:
    """Warm-starts ``config.model`` (source=init) on ``config.data``'s task per ``config.warm_start`` and writes
    the result as a Hugging Face directory (weights + tokenizer) at ``out_dir``; reused if it exists."""
    from urlvr_jax.model import hf_io
    from urlvr_jax.rl import setup
    from urlvr_jax.rl.data import make_task
    from urlvr_jax.tasks import make_pool

    if is_prior(out_dir):
        return out_dir
    w = config.warm_start
    ws = WarmStartConfig(**{f.name: w.get(f.name, f.default) for f in dataclasses.fields(WarmStartConfig)})
    task = make_task(config.data)
    if len(w.task_options):  # supervise a narrower slice of the task than RL streams from
        from urlvr_jax.tasks import get_task

        task = get_task(config.data.task, **{**dict(config.data.task_options), **dict(w.task_options)})
    pool = make_pool(task, w.pool_size, w.seed)
    seen = pool[:int(round(ws.train_fraction * len(pool)))]
    tokenizer = setup.build_tokenizer(config)
    cfg, params = setup.build_model(config, tokenizer, None, jax.random.key(w.seed))
    texts = setup.prompt_texts(config, tokenizer, seen)
    pairs = [(text, target) for text, (_, target) in zip(
        [t for t in texts for _ in range(ws.copies)], supervised_pairs(seen, ws))]
    if ws.verify_fraction > 0:  # the verification prompts as the loop's self_verify reward builds them
        count = int(round(len(pairs) * ws.verify_fraction / (1 - ws.verify_fraction)))
        verify = verification_pairs(seen, ws, count)
        texts = setup.prompt_texts(config, tokenizer, [p for p, _ in verify], template="raw")
        pairs += [(text, verdict) for text, (_, verdict) in zip(texts, verify)]
    params = supervised_finetune(cfg, params, tokenizer, pairs, ws, config.tokenizer.add_special_tokens, log=log)
    tmp = out_dir + ".partial"
    hf_io.save_hf(params, cfg, tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, out_dir)
    return out_dir


def from_prior(prior_dir: str) -> list[str]:
    """The overrides that load model and tokenizer from a warm-started prior's Hugging Face directory."""
    return ["model.source=hf", f"model.path={prior_dir}", "tokenizer.kind=hf", f"tokenizer.path={prior_dir}"]


def arm_config(config, arm: str, prior_dir: str, steps: int = 0):
    """The URLVR config of one arm, starting from the warm-started prior (``steps``: 0 keeps train.steps)."""
    overrides = [f"reward.name={arm}", f"run_dir={os.path.join(config.run_dir, arm)}", *from_prior(prior_dir),
                 f"name={arm}", f"train.steps={steps or config.train.steps}"]
    return apply_overrides(config, overrides)


def main(argv: list[str] | None = None) -> int:
    from urlvr_jax.utils.config import parse_cli
    from urlvr_jax.utils.errors import UserError

    p = argparse.ArgumentParser(prog="python -m urlvr_jax.toy.warm_start", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="the prior's Hugging Face directory (reused if it has config.json)")
    args, rest = p.parse_known_args(argv)
    config, extra = parse_cli(rest, default_config="cpu_default")
    if extra:
        p.error(f"unknown flags {extra}")
    if "warm_start" not in config:
        raise UserError("the config has no warm_start section (a toy config such as cpu_default or toy_studies has)")
    reused = is_prior(args.out)
    make_prior(config, args.out)
    print(f"prior {'reused' if reused else 'written'}: {args.out}; "
          f"train from it with: {' '.join(from_prior(args.out))}")
    return 0


if __name__ == "__main__":
    from urlvr_jax.utils.entry import run_main

    run_main(main)
