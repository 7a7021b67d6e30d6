"""Static vs continuous batching on heavy-tailed rollout lengths: useful row-steps and tokens/s.

    nice -n 5 python benchmarks/lengths_bench.py [--prompts 64] [--samples 8] [--new-tokens 256] [--slots 64]
                                                 [--rounds 5] [--sigma 1.0]

Reasoning models stop at very different lengths. Here row r of ``prompts x samples`` rollouts (sampled at
temperature 1 from a tiny random Llama) stops after ``max_lengths[r]`` tokens, drawn from a log-normal with median
``new_tokens / 8`` and log-standard deviation ``sigma``, clipped to [1, new_tokens] (the same draw every round).
Both samplers get the same rows, sequence ids and lengths, so they make the same tokens:

* static (:class:`~urlvr_jax.sampling.sampler.Sampler`): all rows decode together until the longest stops;
  useful row-steps = sum(lengths) / (rows x max(lengths)).
* continuous (:class:`~urlvr_jax.sampling.continuous.ContinuousSampler`): ``slots`` decode slots, refilled as rows
  stop (and halved as the last rows drain); useful row-steps = sum(lengths) / the slot-steps it decoded.

Tokens/s = sum(lengths) / wall time of ``generate`` (prefill included, compiled beforehand). The two sides run
interleaved (static, continuous, static, ...) for ``rounds`` rounds; the script prints each side's median and
range and the median and range of the per-round ratios.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from urlvr_jax.model.config import ModelConfig
from urlvr_jax.model.transformer import init_params
from urlvr_jax.sampling.continuous import ContinuousSampler
from urlvr_jax.sampling.sampler import Sampler
from urlvr_jax.sampling.strategies import SamplingConfig

TINY = ModelConfig(family="llama", vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
                   num_kv_heads=2, head_dim=16, tie_embeddings=True, max_position_embeddings=4096)


def heavy_tailed_lengths(rows: int, new_tokens: int, sigma: float, seed: int = 0) -> np.ndarray:
    """Log-normal lengths with median ``new_tokens / 8``, clipped to [1, new_tokens]."""
    draws = np.random.default_rng(seed).lognormal(np.log(new_tokens / 8), sigma, rows)
    return np.clip(np.round(draws), 1, new_tokens).astype(np.int32)


def prompts(batch: int, vocab: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded random prompts of 8 to 24 tokens."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, 25, batch)
    tokens = np.zeros((batch, lengths.max()), np.int32)
    mask = np.zeros_like(tokens, bool)
    for row, n in enumerate(lengths):
        tokens[row, -n:] = rng.integers(3, vocab, n)
        mask[row, -n:] = True
    return tokens, mask


def spread(values) -> str:
    return f"median {np.median(values):8.1f}  range [{min(values):8.1f}, {max(values):8.1f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--unroll", action="store_true", help="both samplers decode with unrolled layers")
    args = parser.parse_args()

    cfg = TINY
    params = init_params(cfg, jax.random.key(0), scale=0.5)
    sampling = SamplingConfig(max_new_tokens=args.new_tokens, temperature=1.0)
    rows = args.prompts * args.samples
    limits = heavy_tailed_lengths(rows, args.new_tokens, args.sigma)
    tokens, mask = prompts(args.prompts, cfg.vocab_size)
    key = jax.random.key(1)
    static = Sampler(cfg, sampling, unroll_layers=args.unroll)
    continuous = ContinuousSampler(cfg, sampling, unroll_layers=args.unroll, slots=args.slots)
    slots = continuous.num_slots(rows)
    inputs = (params, tokens, mask, key)
    kwargs = dict(num_samples=args.samples, max_lengths=limits)
    sides = {"static": lambda: jax.block_until_ready(static.generate(*inputs, **kwargs)),
             "continuous": lambda: jax.block_until_ready(continuous.generate_with_steps(*inputs, **kwargs))}

    reference = jax.tree.map(np.asarray, sides["static"]())  # compiles; checks the two sides' rows agree
    rollout, row_steps = sides["continuous"]()
    same = float((np.asarray(rollout.tokens) == reference.tokens).mean())
    np.testing.assert_array_equal(np.asarray(rollout.lengths), limits)
    useful = limits.sum()
    print(f"devices {jax.devices()}; tiny random llama ({cfg.num_layers} layers, hidden {cfg.hidden_size}, vocab "
          f"{cfg.vocab_size}); {args.prompts} prompts x {args.samples} samples, max_new_tokens {args.new_tokens}, "
          f"unroll_layers={args.unroll}")
    print(f"lengths: log-normal, median {args.new_tokens / 8:g}, sigma {args.sigma:g} -> mean {limits.mean():.1f}, "
          f"median {np.median(limits):g}, max {limits.max()}; tokens equal between the sides: {same:.2%}")
    print(f"useful row-steps: static {useful / (rows * limits.max()):6.1%} ({rows} rows x {limits.max()} steps)   "
          f"continuous {useful / int(row_steps):6.1%} ({slots} slots, {int(row_steps)} slot-steps)")

    seconds = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, run in sides.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    for name, times in seconds.items():
        print(f"{name:10s} tokens/s {spread([useful / t for t in times])}")
    ratios = [s / c for s, c in zip(seconds["static"], seconds["continuous"])]
    print(f"continuous / static tokens/s: median {np.median(ratios):.2f}x  range [{min(ratios):.2f}x, "
          f"{max(ratios):.2f}x] over {args.rounds} interleaved rounds")


if __name__ == "__main__":
    main()
