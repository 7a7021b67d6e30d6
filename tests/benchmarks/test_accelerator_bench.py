"""benchmarks/accelerator_bench.py end to end with --tiny on CPU, and its table of device peaks."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "accelerator_bench.py"


def load_bench():
    sys.path.insert(0, str(BENCH.parent))
    try:
        spec = importlib.util.spec_from_file_location("accelerator_bench", BENCH)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH.parent))


def test_tiny_run_prints_throughput_and_no_peaks_on_cpu():
    env = dict(os.environ, URLVR_HUGE_PAGES="0")
    result = subprocess.run([sys.executable, str(BENCH), "--tiny", "--repeats", "1"], capture_output=True, text=True,
                            env=env, cwd=BENCH.parent.parent, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "peak: unknown device kind 'cpu': no peak figures" in out
    assert "matmul precision highest" in out
    assert "4 prompts x 2 rollouts = 8 rows, prompts 16 tokens, exactly 16 new tokens" in out
    sampler = re.search(r"^sampler\s+([\d,]+) new tok/s", out, re.M)
    decode = re.search(r"^decode\s+([\d.]+) ms/step, ([\d,.]+) MB/step -> \s*([\d.]+) GB/s$", out, re.M)
    train = re.search(r"^train step\s+([\d,]+) tok/s\s+\(([\d.]+) s per step, 192 positions", out, re.M)
    assert sampler and decode and train, out
    assert float(sampler[1].replace(",", "")) > 0 and float(train[1].replace(",", "")) > 0
    # bytes a decode step reads: the tiny model's float32 params (embedding tied) and its bfloat16 KV cache
    bench = load_bench()
    cfg = bench.model_config(tiny=True)
    params = 512 * 64 + 2 * (64 * (4 + 2 + 2) * 16 + (4 + 2 + 2) * 16 + 4 * 16 * 64 + 3 * 64 * 128 + 2 * 64) + 64
    cache = 2 * cfg.num_layers * 8 * (16 + 16) * cfg.num_kv_heads * cfg.head_dim * 2
    assert float(decode[2].replace(",", "")) == round((4 * params + cache) / 1e6, 1)


def test_peaks_pick_the_most_specific_device_kind():
    peaks = load_bench().device_peaks
    assert peaks("NVIDIA H100 80GB HBM3")[0] == "NVIDIA H100 SXM"
    assert peaks("NVIDIA H100 PCIe")[0] == "NVIDIA H100 PCIe"
    assert peaks("NVIDIA H200")[1:] == (989e12, 4.8e12)
    assert peaks("NVIDIA A100-SXM4-40GB")[0] == "NVIDIA A100 40GB"
    assert peaks("NVIDIA A100-SXM4-80GB")[0] == "NVIDIA A100 80GB SXM"
    assert peaks("TPU v5 lite")[0] == "TPU v5e" and peaks("TPU v5")[0] == "TPU v5p"
    assert peaks("TPU v4")[0] == "TPU v4"
    assert peaks("cpu") is None
