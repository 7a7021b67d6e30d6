"""Sampler and train-step throughput of a random Qwen2.5-0.5B-shaped model in bfloat16 on one accelerator, beside the
device's peak FLOP/s and memory bandwidth.

    python benchmarks/accelerator_bench.py [--prompts 64 --n 8 --prompt-len 256 --new-tokens 512 --repeats 3]
    python benchmarks/accelerator_bench.py --tiny     # small shapes: a check that runs in seconds, e.g. on CPU

The model has Qwen2.5-0.5B's shapes (24 layers, hidden 896, 14 query / 2 KV heads of 64, MLP 4864, vocabulary
151,936, tied embeddings, q/k/v biases) with random weights, computing in bfloat16 (the LM head in float32, as
always in urlvr_jax) over float32 parameters: the trainer's master copy, which the loop's sampler reads too
(``model.dtype=bfloat16``, ``model.param_dtype=float32``). Everything runs on ``jax.devices()[0]``, without a mesh.
It prints:

* sampler: new tokens per second of ``Sampler.generate`` (prefill + decode, compiled beforehand) for ``--prompts``
  prompts x ``--n`` rollouts, every row ``--new-tokens`` long (no stop tokens, temperature 1), best of ``--repeats``;
* decode: seconds per decode step (the generate call's compiled decode loop alone, over its ``--new-tokens`` steps)
  and the bytes one step must read, every parameter and the whole preallocated KV cache (the roofline of
  ``benchmarks/sampler_bench.py``), so its share of the peak memory bandwidth is
  ``bytes per step / step time / peak bandwidth``;
* train step: one GRPO update (the loop's train step: token-mean loss, pi_old = stop_gradient(pi), each prompt run
  once per group, ``--micro-batch-rows`` rows per micro-batch, AdamW) on those rollouts; tokens per second counts
  the positions the step runs (each prompt once per group plus every completion token), and
  ``MFU = 6 * N * tokens / step time / peak FLOP/s`` with N the parameter count (the tied embedding once, as the LM
  head) — the model FLOPs of forward + backward, not counting attention or recomputation;
* the peak bfloat16 dense FLOP/s and memory bandwidth of the device kind (vendor figures, below); an unknown kind
  (CPU included) gets no peak figures and no fractions.

The float32 matmul precision is ``--matmul-precision`` (default: the config's ``train.matmul_precision``), set as a
run sets it. Like the loop's entry points it restarts once with glibc's huge-page tunable on Linux
(:mod:`urlvr_jax.utils.huge_pages`; ``URLVR_HUGE_PAGES=0`` turns that off).
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit

import jax
import jax.numpy as jnp
import numpy as np

from urlvr_jax.config_base import get_config
from urlvr_jax.model.config import ModelConfig
from urlvr_jax.model.transformer import init_params
from urlvr_jax.rl import setup
from urlvr_jax.rl.losses import GRPOLossConfig
from urlvr_jax.rl.train_step import StepConfig, TrainBatch, init_train_state, jit_train_step, make_optimizer
from urlvr_jax.sampling.sampler import Sampler
from urlvr_jax.sampling.strategies import SamplingConfig

QWEN25_0P5B = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_layers=24, num_heads=14,
                   num_kv_heads=2, head_dim=64, rope_theta=1000000.0, max_position_embeddings=32768)
TINY = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2,
            head_dim=16, max_position_embeddings=512)
TINY_RUN = dict(prompts=4, n=2, prompt_len=16, new_tokens=16, micro_batch_rows=8)

# (substring of jax's device_kind, name, dense bfloat16 FLOP/s, memory bandwidth bytes/s), from the vendors' data
# sheets; the first match wins, so the more specific kinds come first.
PEAKS = (
    ("H100 PCIe", "NVIDIA H100 PCIe", 756e12, 2.0e12),
    ("H100", "NVIDIA H100 SXM", 989e12, 3.35e12),
    ("H200", "NVIDIA H200", 989e12, 4.8e12),
    ("A100-SXM4-40GB", "NVIDIA A100 40GB", 312e12, 1.555e12),
    ("A100 80GB PCIe", "NVIDIA A100 80GB PCIe", 312e12, 1.935e12),
    ("A100", "NVIDIA A100 80GB SXM", 312e12, 2.039e12),
    ("TPU v4", "TPU v4", 275e12, 1.2e12),
    ("TPU v5 lite", "TPU v5e", 197e12, 0.819e12),
    ("TPU v5", "TPU v5p", 459e12, 2.765e12),
    ("TPU v6 lite", "TPU v6e", 918e12, 1.64e12),
)


def device_peaks(kind: str) -> tuple[str, float, float] | None:
    """(name, peak bfloat16 FLOP/s, peak bandwidth bytes/s) of a jax ``device_kind``; None when unknown."""
    for pattern, name, flops, bandwidth in PEAKS:
        if pattern.lower() in kind.lower():
            return name, flops, bandwidth
    return None


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tiny", action="store_true", help=f"a tiny model and batch ({TINY_RUN}): a quick check")
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--n", type=int, default=8, help="rollouts per prompt")
    p.add_argument("--prompt-len", type=int, default=256)
    p.add_argument("--new-tokens", type=int, default=512)
    p.add_argument("--micro-batch-rows", type=int, default=32, help="rows per micro-batch of the train step")
    p.add_argument("--remat", action=argparse.BooleanOptionalAction, default=True,
                   help="recompute activations in the backward pass (default; without it the default shapes' step "
                        "needs about 114 GiB of temporaries, with it about 34 GiB, by XLA:CPU's memory analysis)")
    p.add_argument("--unroll", action="store_true", help="unrolled layers in decode and train step (else a scan)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--matmul-precision", default=get_config().train.matmul_precision,
                   choices=setup.MATMUL_PRECISIONS)
    args = p.parse_args()
    if args.tiny:
        for key, value in TINY_RUN.items():
            setattr(args, key, value)
    return args


def model_config(tiny: bool) -> ModelConfig:
    shapes = TINY if tiny else QWEN25_0P5B
    return ModelConfig(family="qwen2", tie_embeddings=True, attention_bias=True, dtype="bfloat16",
                       param_dtype="float32", **shapes)


def best_time(fn, repeats: int) -> float:
    return min(timeit.repeat(fn, number=1, repeat=repeats))


def bench_sampler(sampler: Sampler, params, tokens, mask, n: int, repeats: int):
    """(seconds per generate call, the rollout)."""
    run = lambda: jax.block_until_ready(sampler.generate(params, tokens, mask, jax.random.key(0), num_samples=n))
    rollout = run()  # compiles
    seconds = best_time(run, repeats)
    assert int(rollout.lengths.min()) == sampler.sampling.max_new_tokens, "every row must run to the end"
    return seconds, rollout


def bench_decode(sampler: Sampler, params, tokens, mask, n: int, repeats: int) -> tuple[float, int]:
    """(seconds per decode step, bytes a step must read: params + KV cache) of the programs ``generate`` ran."""
    (prefill, decode, _), inputs = sampler.prepare(tokens, mask, jax.random.key(0), num_samples=n)
    times = []
    for _ in range(repeats):
        state = jax.block_until_ready(prefill(params, *inputs))
        start = time.perf_counter()
        state = jax.block_until_ready(decode(params, state))
        times.append(time.perf_counter() - start)
    cache_bytes = state.cache.k.nbytes + state.cache.v.nbytes
    return min(times) / sampler.sampling.max_new_tokens, sum(x.nbytes for x in jax.tree.leaves(params)) + cache_bytes


def bench_train_step(cfg: ModelConfig, params, rollout, args) -> float:
    """Median seconds of the jitted train step over ``--repeats`` steps after a compiling one."""
    rows = args.prompts * args.n
    if rows % args.micro_batch_rows:
        raise SystemExit(f"--micro-batch-rows={args.micro_batch_rows} must divide the {rows} rows")
    step_cfg = StepConfig(loss=GRPOLossConfig(loss_agg_mode="token-mean"), old_is_current=True, remat=args.remat,
                          num_microbatches=rows // args.micro_batch_rows, unroll_layers=args.unroll,
                          prompt_group=args.n)
    optimizer = make_optimizer(1e-6, args.repeats + 1)
    step = jit_train_step(cfg, step_cfg, optimizer)
    advantages = jax.random.normal(jax.random.key(1), (rows,), jnp.float32)
    batch = TrainBatch(prompt_tokens=rollout.prompt_tokens, prompt_mask=rollout.prompt_mask, tokens=rollout.tokens,
                       mask=rollout.mask, advantages=advantages, old_logprobs=rollout.logprobs,
                       ref_logprobs=jnp.zeros_like(rollout.logprobs), sampler_logprobs=rollout.logprobs)
    state = jax.device_put(init_train_state(params, optimizer, jax.random.key(2)), jax.devices()[0])
    state, _ = jax.block_until_ready(step(state, batch))  # compiles
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        state, metrics = jax.block_until_ready(step(state, batch))
        times.append(time.perf_counter() - start)
    assert np.isfinite(float(metrics["loss"])), metrics
    return statistics.median(times)


def main():
    args = parse_args()
    config = get_config()
    config.train.matmul_precision = args.matmul_precision
    setup.set_matmul_precision(config)
    cfg = model_config(args.tiny)
    device = jax.devices()[0]
    peaks = device_peaks(device.device_kind)
    params = init_params(cfg, jax.random.key(0))
    n_params = sum(x.size for x in jax.tree.leaves(params))
    rows = args.prompts * args.n
    print(f"model: random {'tiny Qwen2' if args.tiny else 'Qwen2.5-0.5B-shaped'}, {n_params / 1e6:.1f}M params, "
          f"bfloat16 compute, float32 params; jax {jax.__version__}, {device.platform} device {device.device_kind!r} "
          f"(1 of {jax.device_count()}), matmul precision {args.matmul_precision}")
    print(f"batch: {args.prompts} prompts x {args.n} rollouts = {rows} rows, prompts {args.prompt_len} tokens, "
          f"exactly {args.new_tokens} new tokens; {'unrolled layers' if args.unroll else 'layer scan'}")
    if peaks:
        print(f"peak ({peaks[0]}, vendor figures): {peaks[1] / 1e12:.0f} TFLOP/s bfloat16 dense, "
              f"{peaks[2] / 1e12:.2f} TB/s memory bandwidth")
    else:
        print(f"peak: unknown device kind {device.device_kind!r}: no peak figures, no MFU or bandwidth share")

    tokens = np.random.default_rng(0).integers(3, cfg.vocab_size, (args.prompts, args.prompt_len)).astype(np.int32)
    mask = np.ones_like(tokens, bool)
    sampler = Sampler(cfg, SamplingConfig(max_new_tokens=args.new_tokens, temperature=1.0),
                      unroll_layers=args.unroll)
    seconds, rollout = bench_sampler(sampler, params, tokens, mask, args.n, args.repeats)
    print(f"sampler     {rows * args.new_tokens / seconds:12,.0f} new tok/s  ({seconds:.3f} s per generate, "
          "prefill included)")
    step_time, nbytes = bench_decode(sampler, params, tokens, mask, args.n, args.repeats)
    share = f" = {nbytes / step_time / peaks[2]:6.1%} of peak bandwidth" if peaks else ""
    print(f"decode      {step_time * 1e3:10.2f} ms/step, {nbytes / 1e6:,.1f} MB/step -> "
          f"{nbytes / step_time / 1e9:8.1f} GB/s{share}")
    step = bench_train_step(cfg, params, rollout, args)
    trained = args.prompts * args.prompt_len + rows * args.new_tokens
    flops = 6 * n_params * trained / step
    mfu = f", MFU {flops / peaks[1]:6.1%}" if peaks else ""
    print(f"train step  {trained / step:12,.0f} tok/s      ({step:.3f} s per step, {trained:,} positions, "
          f"{flops / 1e12:.2f} model TFLOP/s{mfu})")


if __name__ == "__main__":
    from urlvr_jax.utils.entry import run_main

    run_main(main)  # huge pages for XLA's buffers, the pod's processes (URLVR_DISTRIBUTED=1), then main
