"""Vectorised toy sweep: tabular MV-GRPO runs vmapped over priors x seeds in one jitted call (not a test).

python benchmarks/theory_sweeps.py [--runs 10000] [--steps 200] [--prompts 16] [--answers 8] [--rollouts 8]

Compile time (ahead-of-time lower + compile) is reported separately from run time; wall and CPU
(user + sys of this process) times are both printed, since the CPU may be shared.
"""

import argparse
import time

import jax
import numpy as np

from urlvr_jax.theory.dynamics import GRPOConfig, batched_train, stack_priors
from urlvr_jax.theory.toys import tabular_prior


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--priors", type=int, default=10)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--answers", type=int, default=8)
    parser.add_argument("--rollouts", type=int, default=8)
    args = parser.parse_args()
    seeds = args.runs // args.priors
    fracs = np.linspace(0.1, 0.9, args.priors)
    priors = stack_priors([tabular_prior(jax.random.PRNGKey(i), args.prompts, args.answers, float(f), 0.5)[0]
                           for i, f in enumerate(fracs)])
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    cfg = GRPOConfig(reward="majority_vote", num_rollouts=args.rollouts, batch_size=args.prompts, lr=0.3,
                     rho=4.0, learn_shared=False, steps=args.steps)
    compiled, c_wall, c_cpu = _timed(lambda: batched_train(cfg).lower(keys, priors).compile())
    (_, m), r_wall, r_cpu = _timed(lambda: compiled(keys, priors))
    runs = args.priors * seeds
    print(f"{runs} runs x {args.steps} steps (tabular M={args.prompts} x K={args.answers}, N={args.rollouts}) "
          f"on {jax.devices()[0].platform}")
    print(f"compile: {c_wall:.2f} s wall, {c_cpu:.2f} s CPU")
    print(f"run:     {r_wall:.2f} s wall, {r_cpu:.2f} s CPU -> {runs / r_wall:,.0f} runs/s "
          f"({runs * args.steps / r_wall:,.0f} GRPO steps/s)")
    acc = np.asarray(m.accuracy[:, :, -1].mean(1))
    for f, a0, a in zip(fracs, np.asarray(m.accuracy[:, :, 0].mean(1)), acc):
        print(f"aligned share {f:.2f}: MV accuracy {a0:.3f} after step 1 -> {a:.3f} after {args.steps}")


if __name__ == "__main__":
    main()
