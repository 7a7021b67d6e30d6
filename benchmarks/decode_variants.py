"""Two decode speed-ups the field uses, measured for SmolLM2-135M at batch 8 on this machine (issue 20, item 3).

    python benchmarks/decode_variants.py [--rounds 5]

1. Sampling weights in bfloat16 (float32 compute): ``Sampler.generate`` of SmolLM2-135M-Instruct, 8 prompts x 64
   greedy tokens, with every matrix cast to bfloat16 vs the float32 weights; tokens/s (median of interleaved rounds)
   and the share of greedy tokens that stay the same.
2. Fused projections: one decode step's weight matmuls at SmolLM2's shapes (30 layers; q, k, v, o, gate, up, down
   at 8 rows) as separate matmuls vs q|k|v and gate|up concatenated into one matrix each; milliseconds per pass
   (median of interleaved rounds).
3. Where one ``generate`` call's time goes (float32, greedy, 8 prompts x 64 tokens): prefill, the decode loop (the
   per-call weight layout included), the same loop for 1 token (about the layout alone), median of the rounds.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from lengths_bench import prompts  # (this folder: random left-padded prompts)
from sampler_bench import interleaved  # (this folder: the sides alternating per round, after a warm-up)

from urlvr_jax.model import hf_io, smollm2
from urlvr_jax.sampling.sampler import Sampler
from urlvr_jax.sampling.strategies import SamplingConfig


def report(times: dict[str, list[float]], unit, label: str) -> None:
    (a, ta), (b, tb) = times.items()
    ratios = [x / y for x, y in zip(ta, tb)]
    print(f"{label}: {a} {np.median([unit(t) for t in ta]):.1f}, {b} {np.median([unit(t) for t in tb]):.1f}; "
          f"time {a} / {b}: median {np.median(ratios):.3f} range [{min(ratios):.3f}, {max(ratios):.3f}]")


def bf16_weights(rounds: int) -> None:
    cfg, params = hf_io.load_hf(smollm2.hf_dir())
    half = jax.tree.map(lambda x: x.astype(jnp.bfloat16) if x.ndim >= 2 else x, params)
    tokens, mask = prompts(8, cfg.vocab_size)
    sampler = Sampler(cfg, SamplingConfig(max_new_tokens=64, temperature=0.0), unroll_layers=True)
    run = lambda p: jax.block_until_ready(sampler.generate(p, tokens, mask, jax.random.key(0)))
    same = float((np.asarray(run(params).tokens) == np.asarray(run(half).tokens)).mean())
    times = interleaved({"float32": lambda: run(params), "bfloat16": lambda: run(half)}, rounds)
    report(times, lambda t: 8 * 64 / t, f"SmolLM2 batch 8 greedy tok/s (greedy tokens equal: {same:.1%})")


def fused_projections(rounds: int, layers: int = 30, d: int = 576, f: int = 1536, q: int = 576, kv: int = 192):
    rng = np.random.default_rng(0)
    mat = lambda *shape: jnp.asarray(rng.standard_normal(shape, dtype=np.float32) * 0.02)
    split = [dict(q=mat(d, q), k=mat(d, kv), v=mat(d, kv), o=mat(q, d), g=mat(d, f), u=mat(d, f), dn=mat(f, d))
             for _ in range(layers)]
    fused = [dict(qkv=jnp.concatenate([w["q"], w["k"], w["v"]], 1), o=w["o"],
                  gu=jnp.concatenate([w["g"], w["u"]], 1), dn=w["dn"]) for w in split]

    def layer(x, q_, k_, v_, w_o, gate, up, w_dn):
        x = x + (q_ @ w_o) * 0.01 + (k_.sum() + v_.sum()) * 1e-6  # (attention itself left out)
        return x + (jax.nn.silu(gate) * up) @ w_dn * 0.01

    @jax.jit
    def separate(x, ws):
        for w in ws:
            x = layer(x, x @ w["q"], x @ w["k"], x @ w["v"], w["o"], x @ w["g"], x @ w["u"], w["dn"])
        return x

    @jax.jit
    def concatenated(x, ws):
        for w in ws:
            qkv, gu = x @ w["qkv"], x @ w["gu"]
            x = layer(x, qkv[:, :q], qkv[:, q:q + kv], qkv[:, q + kv:], w["o"], gu[:, :f], gu[:, f:], w["dn"])
        return x

    x = mat(8, d)
    np.testing.assert_allclose(separate(x, split), concatenated(x, fused), atol=1e-5)
    times = interleaved({"separate": lambda: separate(x, split).block_until_ready(),
                         "fused": lambda: concatenated(x, fused).block_until_ready()}, rounds)
    report(times, lambda t: t * 1e3, "one pass of the decode matmuls at 8 rows, ms")


def generate_phases(rounds: int) -> None:
    cfg, params = hf_io.load_hf(smollm2.hf_dir())
    tokens, mask = prompts(8, cfg.vocab_size)
    for new in (64, 1):
        sampler = Sampler(cfg, SamplingConfig(max_new_tokens=new, temperature=0.0), unroll_layers=True)
        (prefill, decode, _), inputs = sampler.prepare(tokens, mask, jax.random.key(0))
        state = jax.block_until_ready(prefill(params, *inputs))  # compiles both
        jax.block_until_ready(decode(params, state))
        times = interleaved({"prefill": lambda: jax.block_until_ready(prefill(params, *inputs)),
                             "decode": lambda: jax.block_until_ready(decode(params, prefill(params, *inputs)))},
                            rounds)
        prefill_s, decode_s = np.median(times["prefill"]), np.median(times["decode"]) - np.median(times["prefill"])
        print(f"SmolLM2 generate, {new} new tokens: prefill {prefill_s * 1e3:.0f} ms, decode loop {decode_s * 1e3:.0f} ms "
              f"({decode_s / new * 1e3:.1f} ms per token)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"devices {jax.devices()}")
    bf16_weights(args.rounds)
    fused_projections(args.rounds)
    generate_phases(args.rounds)


if __name__ == "__main__":
    from urlvr_jax.utils.entry import run_main

    run_main(main)
