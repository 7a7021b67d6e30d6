"""GRPO step time of urlvr_jax against TRL ``GRPOTrainer`` on the same tiny model, batch and lengths.

    pip install --no-deps -r requirements-bench.txt   # TRL and its missing requirements, torch untouched
    python benchmarks/grpo_bench.py [--prompts 8 --group 8 --prompt-len 32 --new-tokens 64 --steps 5 --threads 2]

One tiny random Qwen2 model is built with transformers ``from_config`` over the character tokenizer
(:func:`urlvr_jax.tasks.char_tokenizer.make_char_tokenizer`), saved to a temporary directory, and loaded into our
params with :func:`urlvr_jax.model.hf_io.load_hf`, so both sides start from identical weights. A full GRPO step is,
on both sides: sample ``group`` completions of each of ``prompts`` prompts (temperature 1, every row exactly
``new-tokens`` long: TRL gets ``min_new_tokens``, ours has no stop tokens), decode, the same digit-fraction reward,
group-normalised advantages, the policy loss (token-mean, clip 0.2, beta 0), backward and one AdamW update with
global-norm clipping 1.0.

With one update per rollout batch both sides use pi_old = stop_gradient(pi) (ours: ``--old-logprobs current``, what
the loop's ``algo.old_logprobs=auto`` picks; TRL: ``num_iterations == 1``). ``--old-logprobs recompute`` adds the
separate log-prob pass the loop runs when a batch makes several updates; ``sampler`` uses the sampler's log-probs.

Timing: per-step wall time after ``--warmup`` steps (which include XLA compilation and TRL's lazy set-up). The two
sides run interleaved, one step each in turn (TRL, ours, TRL, ours, ...: our step runs in TRL's ``on_step_end``
callback, outside TRL's timed step), so a change in the machine's load hits both; TRL's steps are timed from the end
of the callback to the next ``on_step_end``, its rollout part (``_generate_and_score_completions``: generation,
decoding, reward, advantages) separately. Reported: each side's median and best step, and the median and range of
the per-round ratio TRL / ours over the ``--steps`` rounds (the goal is judged on that median).
For our jitted train step it also reports the minor page faults and system CPU time (``getrusage``), medians.
Threads: ``--threads N`` pins this process to N CPUs with ``os.sched_setaffinity`` before JAX starts (XLA's CPU
thread pool follows the affinity mask) and calls ``torch.set_num_threads(N)``, so both use the same cores.
Memory: like the loop's entry points, the script restarts once with glibc's huge-page tunable
(:mod:`urlvr_jax.utils.huge_pages`; ``URLVR_HUGE_PAGES=0`` turns that off), and both sides share that process.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time

import numpy as np


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--prompt-len", type=int, default=32, help="prompt tokens, BOS included")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--steps", type=int, default=7, help="timed steps per side (interleaved rounds)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (compilation, lazy set-up)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--old-logprobs", choices=("current", "recompute", "sampler"), default="current")
    p.add_argument("--only", choices=("trl", "ours"), help="run one side only (no ratio)")
    p.add_argument("--no-unroll", dest="unroll", action="store_false",
                   help="scan over layers in sampler and train step (default: unrolled, train.unroll_layers=true)")
    p.add_argument("--no-share-prompt", dest="share_prompt", action="store_false",
                   help="one forward per row in the update (default: each prompt once per group, "
                        "train.share_prompt=true, as the loop runs it)")
    return p.parse_args()


def pin_threads(threads: int) -> int:
    """Restricts this process to ``threads`` CPUs (before JAX/XLA start); returns the number pinned."""
    cpus = sorted(os.sched_getaffinity(0))
    if threads < len(cpus):
        os.sched_setaffinity(0, cpus[:threads])
    import torch

    n = len(os.sched_getaffinity(0))
    torch.set_num_threads(n)
    return n


def digit_reward(text: str) -> float:
    """Fraction of the completion's characters that are digits."""
    return sum(c.isdigit() for c in text) / max(len(text), 1)


def trl_reward(completions: list[str], **_) -> list[float]:
    return [digit_reward(c) for c in completions]


def make_prompts(n: int, length: int, seed: int = 0) -> list[str]:
    """``n`` random printable strings of ``length - 1`` characters (the tokenizer adds BOS)."""
    rng = np.random.default_rng(seed)
    chars = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789 +-*=()"))
    return ["".join(rng.choice(chars, length - 1)) for _ in range(n)]


def build_model(args: argparse.Namespace, path: str):
    """A tiny random Qwen2 model and the char tokenizer, saved to ``path``."""
    import torch
    import transformers

    from urlvr_jax.tasks.char_tokenizer import make_char_tokenizer

    tokenizer = make_char_tokenizer()
    torch.manual_seed(0)
    config = transformers.Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=args.hidden, intermediate_size=3 * args.hidden,
        num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(path)  # the tokenizer object is passed around (AutoTokenizer would pick Qwen2's)
    return model, tokenizer


# ---------------------------------------------------------------------------------------------------- TRL


class _StepTimer:
    """A TrainerCallback timing TRL's steps; ``between(k)`` (our step, in the interleaved comparison) runs after
    TRL's step ``k`` ends and is not counted in TRL's next step."""

    def __init__(self, between=None):
        from transformers import TrainerCallback

        outer = self
        self.starts: list[float] = []
        self.ends: list[float] = []

        class Callback(TrainerCallback):
            def on_train_begin(self, *a, **k):
                outer.starts.append(time.perf_counter())

            def on_step_end(self, *a, **k):
                outer.ends.append(time.perf_counter())
                if between is not None:
                    between(len(outer.ends))
                outer.starts.append(time.perf_counter())

        self.callback = Callback()

    def step_times(self) -> list[float]:
        return [end - start for start, end in zip(self.starts, self.ends)]


def run_trl(args: argparse.Namespace, path: str, tokenizer, prompts: list[str], between=None) -> dict:
    import datasets
    import transformers
    from trl import GRPOConfig, GRPOTrainer

    transformers.logging.set_verbosity_error()
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    total = args.warmup + args.steps
    out_dir = tempfile.mkdtemp(prefix="grpo_bench_trl_")
    config = GRPOConfig(
        output_dir=out_dir, per_device_train_batch_size=args.prompts * args.group, gradient_accumulation_steps=1,
        num_generations=args.group, max_completion_length=args.new_tokens, temperature=1.0, top_p=1.0,
        beta=0.0, num_iterations=1, epsilon=0.2, loss_type="dapo", scale_rewards="group",
        learning_rate=args.lr, lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=1.0,
        max_steps=total, logging_strategy="no", save_strategy="no", report_to=[], disable_tqdm=True,
        bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=True, dataloader_num_workers=0,
        shuffle_dataset=False, seed=0, generation_kwargs={"min_new_tokens": args.new_tokens})
    timer = _StepTimer(between)
    trainer = GRPOTrainer(model=model, reward_funcs=trl_reward, args=config,
                          train_dataset=datasets.Dataset.from_dict({"prompt": prompts}),
                          processing_class=tokenizer, callbacks=[timer.callback])
    rollout_times: list[float] = []
    lengths: list[int] = []
    inner = trainer._generate_and_score_completions

    def timed(inputs):
        start = time.perf_counter()
        result = inner(inputs)
        rollout_times.append(time.perf_counter() - start)
        lengths.extend(result["completion_mask"].sum(1).tolist())
        return result

    trainer._generate_and_score_completions = timed
    trainer.train()
    steps = timer.step_times()[args.warmup:]
    rollouts = rollout_times[args.warmup:]
    assert len(steps) == args.steps == len(rollouts), (len(steps), len(rollouts))
    assert min(lengths) == max(lengths) == args.new_tokens, (min(lengths), max(lengths))
    return summarise(steps, rollouts)


# ---------------------------------------------------------------------------------------------------- ours


def make_ours(args: argparse.Namespace, path: str, tokenizer, prompts: list[str]):
    """(step(i): one GRPO step on prompts batch ``i``, timed; summary(): the timed steps' medians)."""
    import jax
    import jax.numpy as jnp

    from urlvr_jax.model.hf_io import load_hf
    from urlvr_jax.model.tokenizer import decode_completions
    from urlvr_jax.rl.advantages import compute_advantages
    from urlvr_jax.rl.losses import GRPOLossConfig
    from urlvr_jax.rl.train_step import StepConfig, TrainBatch, init_train_state, jit_train_step, make_optimizer
    from urlvr_jax.sampling.logprobs import completion_logprobs
    from urlvr_jax.sampling.sampler import Sampler
    from urlvr_jax.sampling.strategies import SamplingConfig

    cfg, params = load_hf(path)
    sampler = Sampler(cfg, SamplingConfig(max_new_tokens=args.new_tokens, temperature=1.0,
                                          pad_id=tokenizer.pad_token_id), unroll_layers=args.unroll)
    loss = GRPOLossConfig(eps_low=0.2, loss_agg_mode="token-mean", kl_coef=0.0)
    total = args.warmup + args.steps
    optimizer = make_optimizer(args.lr, total, weight_decay=0.0, grad_clip=1.0)
    group = args.group if args.share_prompt else 1
    step_cfg = StepConfig(loss=loss, temperature=1.0, old_is_current=args.old_logprobs == "current",
                          unroll_layers=args.unroll, prompt_group=group)
    step_fn = jit_train_step(cfg, step_cfg, optimizer)
    logprobs_fn = jax.jit(lambda p, pt, pm, t, m: completion_logprobs(p, pt, pm, t, m, cfg=cfg, temperature=1.0,
                                                                      prompt_group=group))
    # Committed to the device as the step returns it, so step 2 does not recompile for a new placement.
    state = jax.device_put(init_train_state(params, optimizer, jax.random.key(0)), jax.devices()[0])
    advantages_fn = jax.jit(lambda r, g: compute_advantages("grpo", r, g, args.prompts, std_eps=1e-4))
    encoded = tokenizer(prompts)["input_ids"]
    assert {len(e) for e in encoded} == {args.prompt_len}, "every prompt must have prompt-len tokens"
    all_tokens = np.asarray(encoded, np.int32)

    state_box, times = [state], []

    def step(i: int) -> None:
        state = state_box[0]
        t0 = time.perf_counter()
        rows = slice(i * args.prompts, (i + 1) * args.prompts)
        tokens = all_tokens[rows]
        key = jax.random.fold_in(state.rng, i)
        rollout = sampler.generate(state.params, tokens, np.ones_like(tokens, bool), key, num_samples=args.group)
        texts = decode_completions(tokenizer, rollout.tokens, rollout.mask)
        advantages = advantages_fn(np.asarray([digit_reward(t) for t in texts], np.float32), rollout.group_ids)
        t1 = time.perf_counter()
        pieces = (rollout.prompt_tokens, rollout.prompt_mask, rollout.tokens, rollout.mask)
        old = logprobs_fn(state.params, *pieces) if args.old_logprobs == "recompute" else rollout.logprobs
        old.block_until_ready()  # only to time the pass apart; the step would wait for it anyway
        t2 = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        batch = TrainBatch(prompt_tokens=pieces[0], prompt_mask=pieces[1], tokens=pieces[2], mask=pieces[3],
                           advantages=advantages, old_logprobs=old, ref_logprobs=jnp.zeros_like(old),
                           sampler_logprobs=rollout.logprobs)
        state, metrics = step_fn(state, batch)
        jax.block_until_ready((state, metrics))
        after = resource.getrusage(resource.RUSAGE_SELF)
        assert int(rollout.lengths.min()) == args.new_tokens
        state_box[0] = state
        times.append((time.perf_counter() - t0, t1 - t0, t2 - t1, after.ru_minflt - usage.ru_minflt,
                      after.ru_stime - usage.ru_stime))

    def summary() -> dict:
        steps, rollouts, olds, faults, system = zip(*times[args.warmup:])
        return dict(summarise(list(steps), list(rollouts)), old_logprobs=statistics.median(olds),
                    faults=statistics.median(faults), system=statistics.median(system))

    return step, summary


# ---------------------------------------------------------------------------------------------------- report


def summarise(steps: list[float], rollouts: list[float]) -> dict:
    """Median and best (min: least disturbed by other processes) of the step and of its two parts."""
    updates = [s - r for s, r in zip(steps, rollouts)]
    out = {"all": steps}
    for name, values in (("step", steps), ("rollout", rollouts), ("update", updates)):
        out[name], out[f"best_{name}"] = statistics.median(values), min(values)
    return out


def main():
    args = parse_args()
    threads = pin_threads(args.threads)
    import jax
    import torch
    import transformers
    import trl

    load_before = os.getloadavg()
    path = tempfile.mkdtemp(prefix="grpo_bench_model_")
    model, tokenizer = build_model(args, path)
    n_params = sum(p.numel() for p in model.parameters())
    prompts = make_prompts(args.prompts * (args.warmup + args.steps), args.prompt_len)
    rows = args.prompts * args.group
    print(f"model: random Qwen2, hidden {args.hidden}, {args.layers} layers, vocab {len(tokenizer)}, "
          f"{n_params / 1e6:.2f}M params (float32)")
    print(f"batch: {args.prompts} prompts x group {args.group} = {rows} rows, prompt {args.prompt_len} tokens, "
          f"exactly {args.new_tokens} new tokens, temperature 1.0, beta 0, 1 update per step")
    print(f"env: {threads} CPU threads (affinity {sorted(os.sched_getaffinity(0))}, torch.set_num_threads({threads})), "
          f"jax {jax.__version__} {jax.devices()[0].platform}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, trl {trl.__version__}; "
          f"warmup {args.warmup} + timed {args.steps} steps; old log-probs: {args.old_logprobs}; "
          f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '')!r} (both sides)")
    results = {}
    if args.only in (None, "ours"):
        ours_step, ours_summary = make_ours(args, path, tokenizer, prompts)
        for i in range(args.warmup):
            ours_step(i)  # compilation, before any timed step of either side
    if args.only is None:  # interleaved: TRL step, our step, TRL step, ... (TRL's warmup steps first)
        after_trl = lambda k: ours_step(k - 1) if k > args.warmup else None  # both sides' step k: prompt batch k-1
        results["TRL GRPOTrainer"] = run_trl(args, path, tokenizer, prompts, after_trl)
    elif args.only == "trl":
        results["TRL GRPOTrainer"] = run_trl(args, path, tokenizer, prompts)
    else:
        for i in range(args.warmup, args.warmup + args.steps):
            ours_step(i)
    if args.only in (None, "ours"):
        results["urlvr_jax"] = ours_summary()
    load_after = os.getloadavg()
    print(f"\n{'':16s}{'step s':>8s}{'rollout s':>10s}{'update s':>9s}{'tok/s':>7s} |{'best: step':>11s}"
          f"{'rollout':>8s}{'update':>7s} | all steps (s)")
    for name, r in results.items():
        steps = " ".join(f"{s:.2f}" for s in r["all"])
        tok_s = rows * args.new_tokens / r["step"]
        print(f"{name:16s}{r['step']:8.3f}{r['rollout']:10.3f}{r['update']:9.3f}{tok_s:7.0f}"
              f" |{r['best_step']:11.3f}{r['best_rollout']:8.3f}{r['best_update']:7.3f} | {steps}")
    print("(median over timed steps; rollout = generation + decode + reward + advantages; "
          "update = the rest: old log-probs (ours), loss, backward, optimizer)")
    if "urlvr_jax" in results:
        print(f"urlvr_jax update split: old log-prob pass {results['urlvr_jax']['old_logprobs']:.3f} s, "
              f"jitted train step {results['urlvr_jax']['update'] - results['urlvr_jax']['old_logprobs']:.3f} s "
              f"({results['urlvr_jax']['faults']:.0f} minor page faults, {results['urlvr_jax']['system']:.3f} s of "
              "system CPU time)")
    print(f"load average (1/5/15 min): before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
          f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}")
    if len(results) == 2:
        trl_r, ours = results["TRL GRPOTrainer"], results["urlvr_jax"]
        for kind, prefix in (("median", ""), ("best", "best_")):
            ratio = lambda part: trl_r[prefix + part] / max(ours[prefix + part], 1e-9)
            print(f"ratio TRL/ours ({kind}): step {ratio('step'):.2f}x (rollout {ratio('rollout'):.2f}x, "
                  f"update {ratio('update'):.2f}x)")
        rounds = [t / o for t, o in zip(trl_r["all"], ours["all"])]
        median = statistics.median(rounds)
        print(f"ratio TRL/ours per interleaved round ({len(rounds)} rounds): median {median:.2f}x "
              f"[{min(rounds):.2f}, {max(rounds):.2f}]")
        print(f"goal >= 2x: {'met' if median >= 2 else 'not met'} (median of the per-round ratios {median:.2f}x)")


if __name__ == "__main__":
    from urlvr_jax.utils.entry import run_main

    run_main(main)  # huge pages for XLA's buffers, the pod's processes (URLVR_DISTRIBUTED=1), then main
