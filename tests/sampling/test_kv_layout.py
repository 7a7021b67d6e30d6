"""The KV-cache layout switch (``model.kv_layout``): head-major (CPU) and sequence-major (TPU/GPU) caches give the
same greedy tokens in the static and the continuous sampler, unsharded and on a data x fsdp x tensor mesh; auto
resolves by the mesh's platform; on the TPU compiler the sequence-major cache removes the decode loop's
whole-cache relayout copies (docs/tpu_decode.md); a bad value is one error line from the CLI."""

from __future__ import annotations

import dataclasses
import os
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rl"))  # the loop's
from loop_fixtures import cli_env, run_cli, train_cmd  # noqa: E402
from sampler_fixtures import left_padded, tiny_model  # noqa: E402
from urlvr_jax import sharding as shd  # noqa: E402
from urlvr_jax.model.config import ModelConfig  # noqa: E402
from urlvr_jax.model.transformer import abstract_params  # noqa: E402
from urlvr_jax.sampling.continuous import ContinuousSampler  # noqa: E402
from urlvr_jax.sampling.sampler import Sampler  # noqa: E402
from urlvr_jax.sampling.strategies import SamplingConfig  # noqa: E402

LAYOUTS = ("head_major", "sequence_major")
LENGTHS, SAMPLES, NEW = (5, 12, 1, 9), 2, 10
KEY = jax.eval_shape(jax.random.key, 0)  # before libtpu's devices exist (a key made under their mesh fails)


def _greedy(sampler_type, layout, mesh, **kwargs):
    _, cfg, params = tiny_model("qwen3")
    cfg = dataclasses.replace(cfg, kv_layout=layout)
    sampler = sampler_type(cfg, SamplingConfig(max_new_tokens=NEW, temperature=0.0), mesh=mesh, **kwargs)
    assert sampler.model_cfg.kv_layout == layout
    rollout = sampler.generate(params, *left_padded(LENGTHS, cfg.vocab_size, seed=1), jax.random.key(0),
                               num_samples=SAMPLES)
    return np.asarray(rollout.tokens), np.asarray(rollout.lengths)


@pytest.mark.parametrize("mesh_spec", [None, "data:2,fsdp:2,tensor:2"])
@pytest.mark.parametrize("sampler_type,kwargs", [(Sampler, {}), (ContinuousSampler, {"slots": 4})])
def test_layouts_give_the_same_greedy_tokens(sampler_type, kwargs, mesh_spec):
    mesh = shd.make_mesh(mesh_spec) if mesh_spec else None
    head, sequence = (_greedy(sampler_type, layout, mesh, **kwargs) for layout in LAYOUTS)
    assert len(set(map(tuple, head[0].tolist()))) > 1  # rows differ: the test can tell layouts apart
    np.testing.assert_array_equal(sequence[0], head[0])
    np.testing.assert_array_equal(sequence[1], head[1])


def _cache_copies(layout: str, devices) -> tuple[int, int]:
    """(all, inside a decode step) copies in the compiled v5e continuous rollout program whose result is a whole
    slot cache ([L, slots, ...] with the cache length among its dims): relayouts between the decode's layer loop,
    the refill and the shrink (docs/tpu_decode.md). Inside a step: op names under the decode loop's body."""
    cfg = ModelConfig(family="llama", vocab_size=512, hidden_size=256, intermediate_size=512, num_layers=2,
                      num_heads=8, num_kv_heads=4, head_dim=128, dtype="bfloat16", kv_layout=layout,
                      max_position_embeddings=1024)
    mesh = shd.make_mesh("fsdp:2,tensor:2", devices)  # 2 kv heads a chip, as the paper config on v5e:8x8
    prompts, bucket, samples, new, slots = 4, 128, 2, 128, 8
    sampler = ContinuousSampler(cfg, SamplingConfig(max_new_tokens=new, temperature=0.0), mesh, buckets=(bucket,),
                                slots=slots)
    assert sampler.model_cfg.kv_layout == layout
    sds, rows = jax.ShapeDtypeStruct, prompts * samples
    args = (abstract_params(cfg), sds((prompts, bucket), jnp.int32), sds((prompts, bucket), bool),
            sds((rows,), jnp.uint32), KEY, sds((rows,), jnp.int32))
    program = sampler._jitted_continuous(prompts, bucket, samples).fn
    with jax.set_mesh(mesh):
        hlo = program.lower(*args).compile().as_text()
    copy = r"= bf16\[(\d+(?:,\d+){4})\]\{[^}]*\} copy\((.*)"
    copies = [(shape.split(","), line) for shape, line in re.findall(copy, hlo)]
    whole = [line for shape, line in copies if shape[0] == str(cfg.num_layers) and str(bucket + new) in shape]
    return len(whole), sum('op_name="jit(_generate)/while/body/' in line for line in whole)


def test_sequence_major_drops_the_decode_relayout_copies_on_tpu():
    topology = pytest.importorskip("urlvr_jax.plan.topology")
    try:
        devices, _ = topology.compile_devices("v5e:2x2")
    except ValueError as err:
        pytest.skip(str(err))
    auto = ContinuousSampler(ModelConfig("llama", 64, 32, 64, 1, 2, 2, 16), SamplingConfig(max_new_tokens=4),
                             shd.make_mesh("fsdp:2,tensor:2", devices))
    assert auto.model_cfg.kv_layout == "sequence_major"  # auto on compile-only TPU devices (default backend cpu)
    (head, head_step), (sequence, sequence_step) = (_cache_copies(layout, devices) for layout in LAYOUTS)
    # measured (libtpu 0.0.42.1): head-major 14 whole-cache copies, 10 of them named in the decode loop's body (keys
    # and values into the layer loop's layout and into the refill's, at the slot counts 4, 2 and 1 of the shrinks;
    # the two at 1 slot carry no op name); sequence-major 4 (into the decode loop once, and the shrink's), none in
    # a step
    assert sequence_step == 0 < head_step, (sequence_step, head_step)
    assert sequence < head, (sequence, head)


def test_auto_is_head_major_on_cpu():
    _, cfg, _ = tiny_model("qwen3")
    assert cfg.kv_layout == "auto"
    for mesh in (None, shd.make_mesh("data:2,fsdp:2,tensor:2")):
        assert Sampler(cfg, SamplingConfig(max_new_tokens=4), mesh=mesh).model_cfg.kv_layout == "head_major"


def test_bad_kv_layout_is_one_error_line(tmp_path):
    result = run_cli(train_cmd("tiny_gt", f"run_dir={tmp_path / 'run'}", "model.kv_layout=row_major"), cli_env())
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "error: config model.kv_layout='row_major' must be one of auto, head_major, sequence_major")
