"""Sampler throughput against transformers ``generate`` on identical weights, and the decode roofline.

    python benchmarks/sampler_bench.py [--only tiny|smollm2] [--rounds 5] [--repeats 3]

For each model (a tiny random Llama at batch 32 x 128 new tokens; SmolLM2-135M-Instruct at batch 8 x 64) and
each mode (greedy; plain sampling at temperature 1) it prints the new tokens per second of
:class:`urlvr_jax.sampling.sampler.Sampler` (prefill + decode, compiled beforehand) and of PyTorch
``model.generate`` with ``torch.set_num_threads`` equal to the CPU threads XLA uses, and their ratio. Both run every
row for the full number of new tokens (no stop tokens). The two sides run interleaved (ours, theirs, ours, ...) for
``--rounds`` rounds after one warm-up each; the script prints each side's median and range and the median and range
of the per-round ratios, so a machine whose speed drifts during the run moves both sides alike.

Roofline: one decode step must read every parameter and the whole preallocated KV cache, so
``bytes/step = param bytes + cache bytes``. The machine's read bandwidth is measured here with a large
matrix-vector product (a 512 MiB float32 matrix read once per product, jitted, best of 5; a copy, as before,
under-reported it: the decode's own 1-row matmuls read at 108-130% of it); the fraction reached is
``bytes/step / decode step time / bandwidth``. For scale, the script also times the decode step's weight matmuls
alone (every weight times a random [rows, in] block, in the sampler's layout, one jitted program): the bandwidth
those kernels reach is the most a decode step built on them can reach. It times them at 2 rows and at 1 row as well:
a matrix-vector product at 1 row, and the fewest operations per byte of the matrix-matrix kernels at 2.
Runs on the default JAX device and matmul precision (not the tests' 8 fake devices / "highest"). Like the loop's
entry points it restarts once with glibc's huge-page tunable (:mod:`urlvr_jax.utils.huge_pages`;
``URLVR_HUGE_PAGES=0`` turns that off); both sides run in that one process.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
import transformers

from lengths_bench import prompts  # (this folder: random left-padded prompts)

from urlvr_jax.model import hf_io
from urlvr_jax.model.transformer import OutMajor, out_major_params
from urlvr_jax.sampling.sampler import Sampler
from urlvr_jax.sampling.strategies import SamplingConfig

TINY = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True)
MODES = {"greedy": dict(temperature=0.0), "sampled": dict(temperature=1.0)}


def cpu_threads() -> int:
    return len(os.sched_getaffinity(0))


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def memory_bandwidth(megabytes: int = 512, repeats: int = 5) -> float:
    """Read bytes/s of a large matrix-vector product: the matrix is read once, the vectors are negligible."""
    cols = 4096
    matrix = jnp.ones((megabytes * 2**20 // 4 // cols, cols), jnp.float32)
    vector = jnp.ones((cols,), jnp.float32)
    matvec = jax.jit(jnp.dot)
    jax.block_until_ready(matvec(matrix, vector))
    seconds = best_time(lambda: jax.block_until_ready(matvec(matrix, vector)), repeats)
    return matrix.nbytes / seconds


def interleaved(sides: dict, rounds: int) -> dict[str, list[float]]:
    """Seconds of each side's run per round, the sides alternating within every round (after one warm-up each)."""
    for run in sides.values():
        run()
    seconds = {name: [] for name in sides}
    for _ in range(rounds):
        for name, run in sides.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def spread(values, fmt: str = "9.1f") -> str:
    return f"{np.median(values):{fmt}} [{min(values):{fmt}}, {max(values):{fmt}}]"


def torch_generate(model, tokens, mask, new_tokens: int, greedy: bool):
    kwargs = dict(do_sample=False) if greedy else dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0)
    with torch.no_grad():
        return model.generate(input_ids=torch.as_tensor(tokens, dtype=torch.long),
                              attention_mask=torch.as_tensor(mask, dtype=torch.long), max_new_tokens=new_tokens,
                              min_new_tokens=new_tokens, pad_token_id=0, eos_token_id=None, **kwargs)


def bench_model(name: str, model, path: str, batch: int, new_tokens: int, repeats: int, rounds: int,
                bandwidth: float, unroll: bool = True):
    cfg, params = hf_io.load_hf(path)
    model.generation_config.eos_token_id = None
    tokens, mask = prompts(batch, cfg.vocab_size)
    print(f"\n== {name}: batch {batch} x {new_tokens} new tokens, prompts {mask.sum(1).min()}-{mask.sum(1).max()} tokens")
    for mode, kwargs in MODES.items():
        sampler = Sampler(cfg, SamplingConfig(max_new_tokens=new_tokens, **kwargs), unroll_layers=unroll)
        key = jax.random.key(0)
        run = lambda: jax.block_until_ready(sampler.generate(params, tokens, mask, key))
        seconds = interleaved({"jax": run, "torch": lambda: torch_generate(model, tokens, mask, new_tokens,
                                                                          mode == "greedy")}, rounds)
        assert int(run().lengths.min()) == new_tokens
        total = batch * new_tokens
        ratios = [t / j for j, t in zip(seconds["jax"], seconds["torch"])]
        print(f"{mode:8s} tok/s, median [range] of {rounds} interleaved rounds: jax "
              f"{spread([total / t for t in seconds['jax']])}   torch {spread([total / t for t in seconds['torch']])}"
              f"   ratio {spread(ratios, '.2f')}x")
    step, nbytes = decode_step_time(sampler, params, tokens, mask, repeats)
    print(f"decode   {step * 1e3:7.2f} ms/step, {nbytes / 2**20:7.1f} MiB/step -> {nbytes / step / 1e9:6.2f} GB/s "
          f"= {nbytes / step / bandwidth:5.1%} of the measured bandwidth")
    for rows in sorted({batch, 2, 1}, reverse=True):
        seconds, weight_bytes = weight_matmul_time(params, rows, sampler.decodes_out_major(batch), repeats)
        print(f"matmuls  {seconds * 1e3:7.2f} ms,   {weight_bytes / 2**20:7.1f} MiB of weights alone at {rows:2d} rows "
              f"-> {weight_bytes / seconds / 1e9:6.2f} GB/s = {weight_bytes / seconds / bandwidth:5.1%}")


def decode_step_time(sampler: Sampler, params, tokens, mask, repeats: int) -> tuple[float, int]:
    """Seconds per decode step (sampled mode, all rows run every step) and bytes one step must read."""
    (prefill, decode, _), inputs = sampler.prepare(tokens, mask, jax.random.key(0))
    steps = sampler.sampling.max_new_tokens
    times = []
    for _ in range(repeats):
        state = jax.block_until_ready(prefill(params, *inputs))
        start = time.perf_counter()
        jax.block_until_ready(decode(params, state))
        times.append(time.perf_counter() - start)
    param_bytes = sum(x.nbytes for x in jax.tree.leaves(params))
    cache_bytes = state.cache.k.nbytes + state.cache.v.nbytes
    return min(times) / steps, param_bytes + cache_bytes


def weight_matmul_time(params, rows: int, out_major: bool, repeats: int) -> tuple[float, int]:
    """Seconds for one pass of [rows]-column matmuls over every projection weight and the LM head, and the bytes of
    those weights; out-major (:func:`out_major_params`) when ``out_major``, as the sampler decodes then."""
    leaves = jax.tree.leaves(out_major_params(params), is_leaf=lambda x: isinstance(x, OutMajor))
    # [out, in] multiplied as w @ x.T; else the stored [in, out] layout, multiplied as x @ w
    weights = [jax.block_until_ready(w.t if out_major else jnp.asarray(w.t.T)) for w in leaves
               if isinstance(w, OutMajor)]
    in_dim = lambda w: w.shape[1] if out_major else w.shape[0]
    rng = np.random.default_rng(0)
    blocks = {in_dim(w): rng.standard_normal((rows, in_dim(w))).astype(np.float32) for w in weights}

    @jax.jit
    def run(weights, blocks):
        total = 0.0
        for w in weights:
            y = w @ blocks[in_dim(w)].T if out_major else blocks[in_dim(w)] @ w
            total = total + jax.lax.optimization_barrier(y).sum()
        return total

    jax.block_until_ready(run(weights, blocks))
    seconds = best_time(lambda: jax.block_until_ready(run(weights, blocks)), max(repeats, 5))
    return seconds, sum(w.nbytes for w in weights)


def tiny_model():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(**TINY)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8.0)  # livelier outputs than the 0.02 init
    path = tempfile.mkdtemp(prefix="sampler_bench_")
    model.save_pretrained(path)
    return model, path


def smollm2_model():
    from urlvr_jax.model import smollm2

    path = smollm2.hf_dir()
    return transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("tiny", "smollm2"))
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the jax vs torch comparison")
    parser.add_argument("--repeats", type=int, default=3, help="best-of runs of the decode-step and matmul timings")
    parser.add_argument("--no-unroll", dest="unroll", action="store_false",
                        help="decode with the layer scan instead of unrolled layers (Sampler.unroll_layers)")
    args = parser.parse_args()
    threads = cpu_threads()
    torch.set_num_threads(threads)
    bandwidth = memory_bandwidth()
    print(f"devices {jax.devices()}, CPU threads {threads} (torch.set_num_threads({threads})), "
          f"matmul precision {jax.config.jax_default_matmul_precision or 'default'}, "
          f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '')!r} (both sides)")
    print(f"measured read bandwidth (512 MiB float32 matrix-vector product): {bandwidth / 1e9:.2f} GB/s")
    if args.only in (None, "tiny"):
        bench_model("tiny random llama", *tiny_model(), batch=32, new_tokens=128, repeats=args.repeats,
                    rounds=args.rounds, bandwidth=bandwidth, unroll=args.unroll)
    if args.only in (None, "smollm2"):
        bench_model("SmolLM2-135M-Instruct", *smollm2_model(), batch=8, new_tokens=64, repeats=args.repeats,
                    rounds=args.rounds, bandwidth=bandwidth, unroll=args.unroll)


if __name__ == "__main__":
    from urlvr_jax.utils.entry import run_main

    run_main(main)  # huge pages for XLA's buffers, the pod's processes (URLVR_DISTRIBUTED=1), then main
