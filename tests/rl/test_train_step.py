"""The GRPO train step: micro-batching and shared prompts change nothing, mini-batches and μ epochs are sequential
updates, a sharded step equals the unsharded one, and a non-finite update is refused and reported.

Compiles dominate the runtime, so each step configuration is jitted once (``_step_fn``) and shared.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from loop_fixtures import copy_tree, max_abs_diff, tiny_batch, tiny_model

from urlvr_jax import sharding as shd
from urlvr_jax.rl import train_step as train_step_module
from urlvr_jax.rl.losses import GRPOLossConfig
from urlvr_jax.rl.train_step import (StepConfig, TrainBatch, batch_shardings, init_train_state, jit_train_step,
                                     make_optimizer, state_shardings)

# Every loss term with a denominator (policy, KL, entropy) and the reference-KL metric.
LOSS = GRPOLossConfig(kl_coef=0.1, entropy_coef=0.01, norm_length=6.0)
OPTIMIZER = make_optimizer(1e-2, 10, weight_decay=0.01, grad_clip=1.0)
ATOL = 1e-6
COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}


def _cfg(micro: int = 1, mini: int = 1, epochs: int = 1) -> StepConfig:
    return StepConfig(loss=LOSS, ppo_epochs=epochs, num_minibatches=mini, num_microbatches=micro, report_ref_kl=True)


@functools.lru_cache(maxsize=None)
def _step_fn(step_cfg: StepConfig, rows: int, sharded: bool = False):
    """The jitted step for batches of ``rows`` rows, compiled once, at XLA's lowest backend optimisation level
    (a third of the compile time; every variant compared here is compiled the same way)."""
    cfg, params = tiny_model()
    example = jax.tree.map(lambda x: x[:rows], _batch())
    state = init_train_state(params, OPTIMIZER, jax.random.key(1))
    mesh = shd.make_mesh("data:2,fsdp:2,tensor:2") if sharded else None
    fn = jit_train_step(cfg, step_cfg, OPTIMIZER, mesh, state, example)
    if sharded:
        state = jax.device_put(state, state_shardings(state, mesh, cfg))
        example = jax.device_put(example, batch_shardings(example, mesh))
    return fn.lower(state, example).compile(compiler_options=COMPILER_OPTIONS)


@functools.lru_cache(maxsize=None)
def _batch(seed: int = 0, group: int = 1) -> TrainBatch:
    cfg, params = tiny_model()
    return tiny_batch(cfg, params, rows=8, seed=seed, group=group)


def _state():
    return init_train_state(copy_tree(tiny_model()[1]), OPTIMIZER, jax.random.key(1))


def _run(step_cfg: StepConfig, batches, state=None, sharded: bool = False):
    """Applies the step to each batch in turn; (final state on host, per-call metrics as floats)."""
    state = state if state is not None else _state()
    fn = _step_fn(step_cfg, int(batches[0].advantages.shape[0]), sharded)
    if sharded:
        mesh = shd.make_mesh("data:2,fsdp:2,tensor:2")
        state = jax.device_put(state, state_shardings(state, mesh, tiny_model()[0]))
    history = []
    for batch in batches:
        if sharded:
            batch = jax.device_put(batch, batch_shardings(batch, mesh))
        state, metrics = fn(state, batch)
        history.append({k: float(v) for k, v in jax.device_get(metrics).items()})
    return jax.device_get(state), history


def _assert_metrics_close(a: dict, b: dict, atol: float = ATOL):
    assert a.keys() == b.keys()
    bad = {k: (a[k], b[k]) for k in a if not np.isclose(a[k], b[k], rtol=1e-5, atol=atol)}
    assert not bad, bad


def _half(batch: TrainBatch, i: int) -> TrainBatch:
    rows = batch.advantages.shape[0] // 2
    return jax.tree.map(lambda x: x[i * rows:(i + 1) * rows], batch)


@functools.lru_cache(maxsize=None)
def _two_full_steps(micro: int):
    """Two steps (so Adam's moments matter) on two batches with ``micro`` micro-batches."""
    return _run(_cfg(micro=micro), [_batch(0), _batch(1)])


@pytest.mark.parametrize("micro", [2, 4])
def test_micro_batches_equal_full_batch(micro):
    full_state, full_metrics = _two_full_steps(1)
    state, metrics = _two_full_steps(micro)
    assert max_abs_diff(full_state.params, _state().params) > 1e-3  # the steps did move the params
    assert max_abs_diff(state.params, full_state.params) < ATOL
    assert max_abs_diff(state.opt_state, full_state.opt_state) < ATOL
    assert int(state.step) == int(full_state.step) == 2
    for a, b in zip(metrics, full_metrics):
        _assert_metrics_close(a, b)
    assert full_metrics[0]["clip_frac"] > 0 and full_metrics[0]["ref_kl"] > 0  # the clipped and KL paths ran


def test_minibatches_and_epochs_are_sequential_updates():
    """μ=2 epochs over 2 mini-batches (each in 2 micro-batches) = 4 single updates on halves h0, h1, h0, h1."""
    batch = _batch(0)
    state, (metrics,) = _run(_cfg(micro=2, mini=2, epochs=2), [batch])
    halves = [_half(batch, 0), _half(batch, 1)]
    ref_state, ref_metrics = _run(_cfg(), halves * 2)
    assert int(state.step) == int(ref_state.step) == 4
    assert max_abs_diff(state.params, ref_state.params) < ATOL
    assert max_abs_diff(state.opt_state, ref_state.opt_state) < ATOL
    means = {k: float(np.mean([m[k] for m in ref_metrics])) for k in metrics}
    means.update(logprob_gap=ref_metrics[0]["logprob_gap"], nonfinite_updates=0.0,
                 ratio_max=max(m["ratio_max"] for m in ref_metrics), ratio_min=min(m["ratio_min"] for m in ref_metrics))
    _assert_metrics_close(metrics, means)
    # Later updates see a policy that moved away from pi_old: the ratios spread further.
    assert ref_metrics[2]["ppo_kl"] != pytest.approx(ref_metrics[0]["ppo_kl"], abs=1e-6)


def test_sharded_step_equals_unsharded():
    assert len(jax.devices()) == 8
    state, metrics = _run(_cfg(micro=2), [_batch(0), _batch(1)], sharded=True)
    ref_state, ref_metrics = _two_full_steps(2)
    assert max_abs_diff(state.params, ref_state.params) < ATOL
    assert max_abs_diff(state.opt_state, ref_state.opt_state) < ATOL
    for a, b in zip(metrics, ref_metrics):
        _assert_metrics_close(a, b)


@pytest.mark.parametrize("mesh_spec, mini, micro", [("data:2,fsdp:2,tensor:2", 1, 4), ("fsdp:8", 2, 1)])
def test_micro_batches_stay_sharded_inside_the_scan(monkeypatch, mesh_spec, mini, micro):
    """Each micro-batch's rows are split over data x fsdp inside the step (as the compiled step lays them out),
    not copied whole to every device: 16 rows in 4 micro-batches of 4 rows on data 2 x fsdp 2 -> 1 row per device;
    2 mini-batches of 8 rows on fsdp 8 -> 1 row per device."""
    cfg, params = tiny_model()
    batch = tiny_batch(cfg, params, rows=16)
    mesh = shd.make_mesh(mesh_spec)
    batch_shards = mesh.shape["data"] * mesh.shape["fsdp"]
    seen = []
    terms = train_step_module._microbatch_terms

    def spy(params, mb, cfg, step_cfg, shared_rows=1):
        jax.debug.inspect_array_sharding(mb.tokens, callback=lambda s: seen.append(s.shard_shape(mb.tokens.shape)))
        return terms(params, mb, cfg, step_cfg, shared_rows)

    monkeypatch.setattr(train_step_module, "_microbatch_terms", spy)
    state = init_train_state(params, OPTIMIZER, jax.random.key(1))
    step_cfg = StepConfig(loss=LOSS, num_minibatches=mini, num_microbatches=micro)
    jitted = jit_train_step(cfg, step_cfg, OPTIMIZER, mesh, state, batch)
    jitted.lower(state, batch).compile(compiler_options=COMPILER_OPTIONS)
    rows = 16 // (mini * micro)
    assert seen and set(seen) == {(rows // batch_shards, batch.tokens.shape[1])}, seen


def test_unrolled_layers_equal_scanned_layers():
    """StepConfig.unroll_layers changes the compiled loop, not the update."""
    unrolled = dataclasses.replace(_cfg(micro=2), unroll_layers=True)
    state, metrics = _run(unrolled, [_batch(0), _batch(1)])
    ref_state, ref_metrics = _two_full_steps(2)
    assert max_abs_diff(state.params, ref_state.params) < ATOL
    assert max_abs_diff(state.opt_state, ref_state.opt_state) < ATOL
    for a, b in zip(metrics, ref_metrics):
        _assert_metrics_close(a, b)


@pytest.mark.parametrize("micro,sharded", [(2, False), (4, False), (1, True)])
def test_shared_prompt_step_equals_per_row_step(micro, sharded):
    """prompt_group=4 on two groups of 4 rows: 2 micro-batches share each prompt over 4 rows, 4 micro-batches
    over gcd(2, 4) = 2 rows; both equal the step that runs every row's prompt, and so does the sharded step (8 rows
    on data 2 x fsdp 2: 2 rows per device share their prompt, a group is not split over devices)."""
    batches = [_batch(0, group=4), _batch(1, group=4)]
    ref_state, ref_metrics = _run(_cfg(micro=micro), batches)
    state, metrics = _run(dataclasses.replace(_cfg(micro=micro), prompt_group=4), batches, sharded=sharded)
    assert max_abs_diff(ref_state.params, _state().params) > 1e-3
    assert max_abs_diff(state.params, ref_state.params) < ATOL
    assert max_abs_diff(state.opt_state, ref_state.opt_state) < ATOL
    for a, b in zip(metrics, ref_metrics):
        _assert_metrics_close(a, b)
    # the groups were used: on rows with different prompts, sharing the first one gives a different update
    broken, _ = _run(dataclasses.replace(_cfg(micro=micro), prompt_group=4), [_batch(0), _batch(1)], sharded=sharded)
    assert max_abs_diff(broken.params, _two_full_steps(micro)[0].params) > 1e-4


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_update_is_refused_and_reported(bad):
    batch = _batch(0)
    before = _state()
    expected = jax.device_get(copy_tree(before))
    advantages = batch.advantages.at[3].set(bad)
    state, (metrics,) = _run(_cfg(), [batch.replace(advantages=advantages)], state=before)
    assert metrics["nonfinite_updates"] == 1.0
    assert int(state.step) == 0
    assert max_abs_diff(state.params, expected.params) == 0.0
    assert max_abs_diff(state.opt_state, expected.opt_state) == 0.0


def test_nonfinite_minibatch_skips_only_its_update():
    """NaN in the second mini-batch only: the first update lands, the second is refused."""
    batch = _batch(0)
    advantages = batch.advantages.at[-1].set(jnp.nan)
    state, (metrics,) = _run(_cfg(micro=2, mini=2, epochs=2), [batch.replace(advantages=advantages)])
    ref_state, _ = _run(_cfg(), [_half(batch, 0)] * 2)  # only the h0 updates of both epochs land
    assert metrics["nonfinite_updates"] == 2.0
    assert int(state.step) == int(ref_state.step) == 2
    assert max_abs_diff(state.params, ref_state.params) < ATOL


@pytest.mark.parametrize("micro", [1, 2])
def test_bfloat16_params_train_with_bfloat16_moments(micro):
    """model.param_dtype=bfloat16: the accumulated gradient takes the params' dtype, so Adam's moments stay bfloat16
    through the scans over mini- and micro-batches (a float32 gradient made the scan carry change dtype)."""
    cfg, params = tiny_model()
    params = jax.tree.map(lambda x: x.astype(jnp.bfloat16), params)
    state = init_train_state(copy_tree(params), OPTIMIZER, jax.random.key(1))  # the step donates its state
    new, metrics = jit_train_step(cfg, _cfg(micro=micro, mini=2), OPTIMIZER)(state, _batch())
    assert {x.dtype for x in jax.tree.leaves(new.params)} == {jnp.dtype(jnp.bfloat16)}
    moments = [x for x in jax.tree.leaves(new.opt_state) if x.ndim > 0]
    assert moments and {x.dtype for x in moments} == {jnp.dtype(jnp.bfloat16)}
    assert np.isfinite(float(metrics["loss"])) and float(metrics["rolled_back_updates"]) == 0
    assert max_abs_diff(new.params, params) > 0
