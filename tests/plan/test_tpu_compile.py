"""The tiny config's programs compiled by the TPU compiler (libtpu, requirements-tpu.txt) for compile-only TPU
devices, through plan mode's own code: what a step runs compiles for v5e:2x2 (in process, continuous batching) and
v4:2x2x1 (through the CLI, the static sampler); dense attention's S x S scores do not fit a budget that splash
attention fits; the bf16 train step keeps its log-softmax and master weights in float32.

Cost (2-core machine, shared): see the figures by each test. The sequences are 512 long (tiny's own batch) so that the
scores (64 rows x 4 heads x 512 x 512) stand out of everything else.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import pytest

from urlvr_jax.plan import build, hlo_cost, report, topology
from urlvr_jax.utils.config import apply_overrides, load_config

# prompt 16 + 496 = 512 tokens, under the config's train.matmul_precision ("highest")
LONG = ["rollout.max_new_tokens=496", "model.dtype=bfloat16", "model.param_dtype=float32"]
BUDGET_MIB = 160  # train step peak measured: reference attention 206.7 MiB, splash 102.7 MiB (at 256: 23.4 vs 26.2)


def _plan(topology_name: str, overrides: list[str], **kwargs):
    devices, chip = topology.compile_devices(topology_name)
    config = apply_overrides(load_config("tiny_gt"), overrides)
    return build.make_plan(config, BUDGET_MIB / 1024, devices=devices, chip=chip, **kwargs)


@pytest.fixture(scope="module")
def v5e_plan():
    return _plan("v5e:2x2", LONG + ["model.attention=splash"])


def test_every_program_of_a_step_compiles_for_v5e(v5e_plan):
    plan = v5e_plan
    assert set(plan.programs) == {"train_step", "rollout", "logprobs"}  # 496 tokens: continuous batching; ref KL
    assert plan.mesh == {"data": 1, "fsdp": 4, "tensor": 1} and plan.chip.name == "TPU v5e"
    for program in plan.programs.values():
        assert program.error is None and program.temp >= 0 and program.argument > 0
        assert ":T(8,128)" in program.hlo  # TPU tiled layouts: the TPU compiler's output
    # splash kernels in the train step (forward, dq, dkv) and the log-prob pass (forward), counted from shapes
    assert re.search(r"splash_mha_dkv", plan.programs["train_step"].hlo)
    assert plan.programs["train_step"].cost.kernel_flops > 0 and plan.programs["logprobs"].cost.kernel_flops > 0
    assert plan.programs["rollout"].cost.kernel_flops == 0  # the cached decode keeps the reference attention


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_grad_through_splash_compiles_under_highest_precision(dtype):
    """jax_default_matmul_precision=highest (train.matmul_precision's default, set for the whole process): the
    gradient through splash, per shard on v5e:2x2, compiles, and the float32 matmul around it stays HIGHEST. Before
    the kernels' dots were traced at DEFAULT in their forward and backward, Mosaic refused the bf16 ones ("Bad lhs
    type": HIGHEST asks for an fp32 contraction). Measured: about 2 s a dtype."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec

    from urlvr_jax.model import attention_kernels

    mesh = jax.sharding.Mesh(np.array(topology.compile_devices("v5e:2x2")[0]), ("data",))
    B, S, H, Dh = 4, 128, 2, 128
    arg = lambda shape, dt: jax.ShapeDtypeStruct(shape, dt, sharding=NamedSharding(mesh, PartitionSpec("data")))
    q, k, v = arg((B, S, H, Dh), dtype), arg((B, 1, Dh, S), dtype), arg((B, 1, S, Dh), dtype)  # GQA: 2 on 1

    def loss(q, k, v, key_mask, w):
        out = attention_kernels.kernel_attention(q, k, v, attention_kernels.KeyMask(key_mask, "splash"))
        return jnp.sum((out.astype(jnp.float32) @ w) ** 2)

    grad = jax.jit(attention_kernels.traced_under(jax.grad(loss, argnums=(0, 1, 2)), mesh))
    with jax.default_matmul_precision("highest"):
        lowered = grad.lower(q, k, v, arg((B, S), jnp.bool_), arg((Dh, Dh), jnp.float32))
    f32_dots = re.findall(r"dot_general .*precision = \[(\w+), \w+\] : \(tensor<\S+xf32>, tensor<128x128xf32>\)",
                          lowered.as_text())
    assert f32_dots == ["HIGHEST"] * 2, f32_dots  # the readout's forward and its gradient
    lowered.compile()


def test_hlo_walk_counts_loops_by_their_trips(v5e_plan):
    """With every trip set to 1 the walk's dot FLOPs are XLA's cost analysis (which also counts elementwise ops:
    measured 0.79 of it for the rollout, 0.92 for the train step); with the trips, the rollout counts its worst
    case's 64 rows / 8 slots x 496 steps (measured 806 x XLA's loop-once count)."""
    for program in v5e_plan.programs.values():
        module = hlo_cost._Module(program.hlo, 1)
        module.trip_count, module.main_loop = (lambda cond: 1), None
        once = module.cost(module.entry)
        assert 0.75 * program.flops <= once.flops <= program.flops, program.name
    rollout = v5e_plan.programs["rollout"]
    assert rollout.cost.flops > 400 * rollout.flops


def test_a_scan_of_16_matmuls_counts_16():
    """XLA's cost analysis counts the scan's body once; the walk counts it 16 times, and the stacked weights are read
    a layer's slice per trip, not whole (2 x 512 x 512 bf16 = 0.5 MiB a layer)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(topology.compile_devices("v5e:2x2")[0]), ("x",))
    w = jax.ShapeDtypeStruct((16, 512, 512), jnp.bfloat16, sharding=NamedSharding(mesh, PartitionSpec()))
    x = jax.ShapeDtypeStruct((1024, 512), jnp.bfloat16, sharding=NamedSharding(mesh, PartitionSpec("x")))
    layers = jax.jit(lambda w, x: jax.lax.scan(lambda h, wl: (jnp.tanh(h @ wl), None), x, w)[0])
    program = build.compile_program("scan", layers, w, x)
    one_layer = 2 * 256 * 512 * 512  # 256 rows a device
    assert program.flops == pytest.approx(one_layer, rel=0.01)
    assert program.cost.flops == 16 * one_layer
    assert program.cost.bytes < 64 * 2**20  # measured 21.3 MiB; the whole 8 MiB stack read per trip: over 128 MiB


def test_roofline_of_the_step(v5e_plan):
    text = report.format_plan(v5e_plan)
    line = next(line for line in text.splitlines() if line.startswith("step time >= "))
    assert "train_step" in line and "rollout" in line and "logprobs" in line
    assert re.search(r"tokens/s per chip <= [\d,]+ generated", text) and "MFU <= " in text


def test_dense_scores_do_not_fit_where_splash_does(v5e_plan):
    """Same shapes, reference attention: the train step's S x S scores take it over the budget; the knob names it."""
    dense = _plan("v5e:2x2", LONG + ["model.attention=reference"], train_step_only=True)
    budget = BUDGET_MIB * 2**20
    assert dense.phases["train_step"] > budget >= v5e_plan.phases["train_step"], (dense.phases, v5e_plan.phases)
    text = report.format_plan(dense)
    assert "verdict: DOES NOT FIT" in text and "knob: train step:" in text
    assert re.search(r"train_step .* OVER", text)
    assert "verdict: FITS" in report.format_plan(v5e_plan)


def test_a_compiler_refusal_is_a_verdict_naming_the_phase(v5e_plan):
    """A program the TPU compiler refuses (RESOURCE_EXHAUSTED: 32 GiB of output on a 16 GiB chip) is measured as an
    error, and the plan says DOES NOT FIT for that phase, with its knob, instead of a traceback."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec

    mesh = jax.sharding.Mesh(topology.compile_devices("v5e:2x2")[0][:1], ("x",))
    scalar = jax.ShapeDtypeStruct((), jnp.float32, sharding=NamedSharding(mesh, PartitionSpec()))
    refused = build.compile_program("train_step", jax.jit(lambda x: jnp.full((2**33,), x)), scalar)
    assert refused.error and "RESOURCE_EXHAUSTED" in refused.error
    plan = dataclasses.replace(v5e_plan, programs={**v5e_plan.programs, "train_step": refused})
    text = report.format_plan(plan)
    assert not plan.fits() and "verdict: DOES NOT FIT (train_step: out of device memory in the compiler)" in text
    assert "knob: train step:" in text and "train_step   DOES NOT FIT: the compiler refused it" in text


def test_bf16_train_step_keeps_log_softmax_and_master_weights_in_float32(v5e_plan):
    """model.dtype=bfloat16, param_dtype=float32: the matmuls run in bf16, the reductions over the vocabulary (the
    log-softmax's max and sum) in f32, and the state in and out of the step (params, Adam moments) is f32.
    Casting the logits to bf16 before the log-softmax (tried once by hand in model.transformer) turns those reductions
    bf16 and fails this test."""
    hlo = v5e_plan.programs["train_step"].hlo
    vocab = build.model_config(apply_overrides(load_config("tiny_gt"), LONG)).vocab_size
    dtypes = vocab_reduction_dtypes(hlo, vocab)
    assert len(dtypes) >= 2 and set(dtypes) == {"f32"}, dtypes
    comps, _ = hlo_cost.parse_module(hlo)
    assert any(i.op == "convolution" and "bf16" in i.type for instrs in comps.values() for i in instrs)
    layout = re.search(r"entry_computation_layout=\{(.*?)\}, ", hlo).group(1)
    assert "bf16" not in layout and "f32" in layout  # master weights, moments and the batch's floats: f32


def vocab_reduction_dtypes(hlo: str, vocab: int) -> list[str]:
    """The dtype of every reduce over a last axis of ``vocab`` entries in a compiled module (fused or not)."""
    comps, _ = hlo_cost.parse_module(hlo)
    dtypes = []
    for instrs in comps.values():
        types = {i.name: i.type for i in instrs}
        for i in instrs:
            arrays = hlo_cost._arrays(types.get(i.operands[0], "")) if i.op == "reduce" and i.operands else []
            if arrays and arrays[0][1][-1:] == (vocab,):
                dtypes.append(arrays[0][0])
    return dtypes


def test_cli_plans_the_tiny_config_for_v4():
    """The user's command: python -m urlvr_jax.plan --config tiny_gt --topology v4:2x2x1 (tiny's own 8 new tokens:
    the static sampler's prefill and decode)."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}  # compile-only: not cacheable
    out = subprocess.run(
        [sys.executable, "-m", "urlvr_jax.plan", "--config", "tiny_gt", "--topology", "v4:2x2x1"],
        capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    # libtpu's v4 has a device per TensorCore: 4 chips, 8 devices of 16 GiB (half a chip's 32 GiB)
    assert "mesh: data=1, fsdp=8, tensor=1 (8 devices)" in text and "decoded 64 rows at a time" in text
    assert "verdict: FITS (peak" in text and "of 16384.000 MiB per device" in text
    assert re.search(r"^  decode +1 ", text, re.MULTILINE) and "roofline on TPU v4 TensorCore (1/2 chip)" in text
    assert re.search(r"^step time >= [\d.]+ (ms|s) \(train_step", text, re.MULTILINE)


def test_bad_topology_is_one_line():
    with pytest.raises(ValueError, match="--topology v5e:3x3: libtpu cannot make it"):
        topology.compile_devices("v5e:3x3")
