"""Vectorised toy sweep: vmap over priors x seeds of coupled-toy MV-GRPO runs (not a test).

python benchmarks/theory_sweeps.py [--runs 10000] [--steps 200]
"""

import argparse
import time

import jax
import jax.numpy as jnp

from urlvr_jax.theory.coupled import COUPLED_DEFAULT, sweep_final_accuracy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--priors", type=int, default=10)
    parser.add_argument("--pool", type=int, default=16)
    args = parser.parse_args()
    mus = jnp.linspace(0.0, 3.0, args.priors)
    seeds = args.runs // args.priors
    cfg = COUPLED_DEFAULT._replace(batch_size=args.pool, num_rollouts=8)
    t0 = time.time()
    acc = sweep_final_accuracy(mus, seeds, steps=args.steps, pool=args.pool, config=cfg)
    acc.block_until_ready()
    dt = time.time() - t0
    print(f"{args.priors * seeds} runs x {args.steps} steps (pool {args.pool}, N=8) in {dt:.1f} s "
          f"incl. compile on {jax.devices()[0].platform}")
    for mu, a in zip(mus.tolist(), acc.mean(1).tolist()):
        print(f"mu={mu:.2f}: final MV accuracy {a:.3f}")


if __name__ == "__main__":
    main()
