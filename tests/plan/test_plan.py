"""Plan / dry-run mode on the real Qwen3-1.7B shapes (8 fake CPU devices), and the distributed start-up helper.

The plan is compiled once (module fixture: ~30 s of CPU) with a short rollout; the layer scan makes the
compile time independent of the 28 layers.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import pytest

from urlvr_jax.rl import setup

from urlvr_jax import sharding as shd
from urlvr_jax.plan import build, cli, report
from urlvr_jax.plan import estimate as plan_estimate
from urlvr_jax.utils import distributed
from urlvr_jax.utils.config import apply_overrides, load_config

L, D, F, H, K, DH, V = 28, 2048, 6144, 16, 8, 128, 151936
ROWS, PROMPT, NEW, CHUNK = 16, 128, 256, 8  # 8 prompts x 2 rollouts, sampled 8 rows at a time
OVERRIDES = ["mesh=fsdp:4,tensor:2", "rollout.prompts_per_step=8", "rollout.n=2", f"rollout.max_new_tokens={NEW}",
             f"rollout.max_prompt_len={PROMPT}", "algo.mini_batch_prompts=8", "algo.micro_batch_rollouts=4",
             "train.logprob_chunk=128", "val.k=2", f"rollout.max_rows_per_chunk={CHUNK}"]


@pytest.fixture(scope="module")
def qwen_plan():
    assert jax.device_count() == 8
    config = apply_overrides(load_config("paper_qwen3_1p7b"), OVERRIDES)
    return build.make_plan(config, device_memory_gb=16.0)


def test_paper_config_matches_the_paper():
    c = load_config("paper_qwen3_1p7b")
    r = c.rollout
    assert (r.prompts_per_step, r.n, r.temperature, r.max_new_tokens) == (64, 8, 1.0, 7168)
    assert (c.optim.lr, c.algo.kl_coef, c.val.temperature, c.val.top_p) == (1e-6, 0.0, 0.6, 0.95)
    assert c.data.dataset == "dapo17k"
    cfg = build.model_config(c)
    assert (cfg.family, cfg.num_layers, cfg.hidden_size, cfg.num_kv_heads, cfg.vocab_size) == ("qwen3", L, D, K, V)
    assert cfg.tie_embeddings and cfg.qk_norm and cfg.rope_theta == 1e6 and cfg.dtype == "bfloat16"


def test_parameter_bytes_follow_the_sharding(qwen_plan):
    norms = L * (2 * D + 2 * DH) + D  # RMSNorm weights: replicated
    matrices = V * D + L * (D * H * DH + 2 * D * K * DH + H * DH * D + 3 * D * F)
    assert qwen_plan.num_params == matrices + norms
    assert qwen_plan.mesh == {"data": 1, "fsdp": 4, "tensor": 2}
    # float32 master weights; every matrix dim divides its mesh axes, so each is split 8 ways.
    assert qwen_plan.params == 4 * (matrices // 8 + norms)
    # Adam's two moments shard like the params; the step count is a replicated scalar.
    assert 2 * qwen_plan.params <= qwen_plan.opt_state <= 2 * qwen_plan.params + 64
    assert qwen_plan.extra_params == 0  # paper config: no KL, no reference copy


def test_compiled_sizes_are_per_device(qwen_plan):
    train = qwen_plan.programs["train_step"]
    per_row = PROMPT * (4 + 1) + NEW * (4 + 1) + 4 + 3 * NEW * 4  # tokens+mask, advantage, 3 log-prob rows
    batch = ROWS // 4 * per_row  # rows split over data x fsdp = 4
    state = qwen_plan.params + qwen_plan.opt_state
    assert state <= train.argument <= state + batch + 1024
    assert train.alias >= state  # the donated state is updated in place
    assert train.temp > 0
    kv = L * (CHUNK // 4) * (PROMPT + NEW) * (K // 2) * DH * 2  # one of k, v: bf16, chunk rows / 4, kv-heads / 2
    assert qwen_plan.kv_cache == 2 * kv + (CHUNK // 4) * (PROMPT + NEW) + 4  # + key mask + write index
    assert qwen_plan.shapes["chunk_rows"] == CHUNK and qwen_plan.programs["decode"].argument > qwen_plan.kv_cache
    # old_logprobs=sampler and no reference: no log-prob pass; validation (k = n) reuses the rollout's footprint.
    assert set(qwen_plan.programs) == {"train_step", "prefill", "decode"}


def test_estimates_beside_the_compiled_sizes(qwen_plan):
    """The back-of-the-envelope figures: exact where the shapes decide (up to the replicated norms, the key mask),
    within a factor of 3 for the compiled temporaries."""
    est, plan = qwen_plan.estimate, qwen_plan
    assert est["params"] == pytest.approx(plan.params, rel=1e-3) and est["opt_state"] == pytest.approx(plan.opt_state,
                                                                                                       rel=1e-3)
    assert est["kv_cache"] == pytest.approx(plan.kv_cache, rel=1e-3)
    assert est["decode_state"] == pytest.approx(plan.decode_state, rel=0.05)
    for program, key in (("train_step", "train_temp"), ("prefill", "prefill_temp"), ("decode", "decode_temp")):
        temp = plan.programs[program].temp
        assert temp / 3 <= est[key] <= 3 * temp, (program, temp, est[key])


def _train_step_temp(config) -> int:
    from urlvr_jax.rl.train_step import jit_train_step

    cfg, mesh = build.model_config(config), shd.make_mesh(config.mesh)
    step_cfg, optimizer = setup.step_and_optimizer(config)
    state, batch = build.train_inputs(config, cfg, mesh, optimizer)
    return build.compile_program("train_step", jit_train_step(cfg, step_cfg, optimizer, mesh, state, batch),
                                   state, batch).temp


@pytest.mark.slow  # two compiles, ~60 s of CPU (test_train_step checks the sharding itself in the normal suite)
def test_micro_batches_sharded_cut_the_train_step_temp(monkeypatch):
    """A small model whose activations dominate (64 rows x 640 tokens, 8 micro-batches of 8 rows on fsdp 8): the
    train step's temp falls by about fsdp = 8 against the step that lets XLA put the batch sharding on the
    micro-batch index (each micro-batch whole on every device): 157 MB -> 24 MB when written."""
    from urlvr_jax.rl import train_step as train_step_module

    small = ["model.source=init", "model.family=qwen3", "model.vocab_size=256", "model.hidden_size=64",
             "model.intermediate_size=128", "model.num_layers=1", "model.num_heads=4", "model.num_kv_heads=2",
             "model.head_dim=16", "model.max_position_embeddings=1024", "mesh=fsdp:8", "rollout.prompts_per_step=8",
             "rollout.max_prompt_len=128", "rollout.max_new_tokens=512", "algo.mini_batch_prompts=8",
             "algo.micro_batch_rollouts=8", "train.logprob_chunk=0"]
    config = apply_overrides(load_config("paper_qwen3_1p7b"), small)
    sharded = _train_step_temp(config)
    unsharded = lambda tree, parts, mesh: jax.tree.map(lambda x: x.reshape(parts, -1, *x.shape[1:]), tree)  # noqa
    monkeypatch.setattr(train_step_module, "_split", unsharded)
    monkeypatch.setattr(train_step_module, "_constrain_rows", lambda tree, mesh: tree)
    replicated = _train_step_temp(config)
    assert replicated / sharded > 5, (replicated, sharded)


def test_suggestions_fit_the_estimate():
    """--suggest's chunk and micro-batch for the paper config: the estimate fits 85% of the budget with them and not
    with twice the rows; the micro-batch keeps at least a row per data x fsdp device."""
    config = apply_overrides(load_config("paper_qwen3_1p7b"), ["mesh=data:2,fsdp:2,tensor:2", "rollout.batching=static"])
    for budget_gb, fits_all_at_once in ((32.0, False), (300.0, True)):
        suggested = dict(o.split("=") for o in cli.suggest(config, budget_gb))
        chunk, micro = int(suggested["rollout.max_rows_per_chunk"]), int(suggested["algo.micro_batch_rollouts"])
        assert (chunk == 0) == fits_all_at_once
        # 4 rows x 8 heads x 7424 x 8192 positions x 3 float32 buffers = 22 GiB of scores: chunk the queries
        assert suggested.get("model.attention_chunk") == ("1024" if budget_gb < 88 else None)
        assert 4 <= micro <= 16  # at most the config's own, at least a row per data x fsdp device
        if chunk:
            shapes = plan_estimate.shapes_of(config, build.model_config(config), dict(data=2, fsdp=2, tensor=2),
                                             1_720_574_976, chunk)
            assert chunk % 4 == 0 and 64 * 8 % chunk == 0
            peak = lambda shapes: max(plan_estimate.estimate(shapes)[k] for k in ("prefill_peak", "decode_peak"))
            assert peak(shapes) <= 0.85 * budget_gb * 2**30
            assert peak(dataclasses.replace(shapes, chunk_rows=2 * chunk)) > 0.85 * budget_gb * 2**30
        assert micro % 4 == 0 and 64 * 8 % micro == 0


def test_suggested_slots_fit_the_estimate():
    """With continuous batching (the paper config's default: 7,168 new tokens) --suggest turns rollout.slots, not the
    chunk: the most slots (a multiple of data x fsdp, at most the config's 512 / 8 = 64) whose estimate fits."""
    config = apply_overrides(load_config("paper_qwen3_1p7b"), ["mesh=data:2,fsdp:2,tensor:2"])
    shapes = plan_estimate.shapes_of(config, build.model_config(config), dict(data=2, fsdp=2, tensor=2),
                                     1_720_574_976, 512, slots=64)
    peak = lambda shapes: max(plan_estimate.estimate(shapes)[k] for k in ("prefill_peak", "decode_peak"))
    for budget_gb in (16.0, 300.0):
        suggested = dict(o.split("=") for o in cli.suggest(config, budget_gb))
        assert "rollout.max_rows_per_chunk" not in suggested
        slots = int(suggested["rollout.slots"])
        assert slots % 4 == 0 and 4 <= slots <= 64
        if budget_gb > 100:
            assert slots == 64
        else:
            assert slots < 64 and peak(dataclasses.replace(shapes, slots=slots + 4)) > 0.85 * budget_gb * 2**30
        assert peak(dataclasses.replace(shapes, slots=slots)) <= 0.85 * budget_gb * 2**30


def test_continuous_plan_compiles_the_slots_program():
    """A small model with continuous batching (8 prompts x 4 rollouts of 512 tokens over 8 slots on data:2,fsdp:4): one
    rollout program (prefill + decode), a KV cache of the slots plus the prompts, and the report says so."""
    small = ["model.source=init", "model.family=qwen3", "model.vocab_size=256", "model.hidden_size=64",
             "model.intermediate_size=128", "model.num_layers=2", "model.num_heads=4", "model.num_kv_heads=2",
             "model.head_dim=16", "model.max_position_embeddings=1024", "mesh=data:2,fsdp:4",
             "rollout.prompts_per_step=8", "rollout.n=4", "rollout.max_prompt_len=64", "rollout.max_new_tokens=512", "rollout.slots=8",
             "algo.mini_batch_prompts=8", "val.k=4", "model.dtype=float32"]
    plan = build.make_plan(apply_overrides(load_config("paper_qwen3_1p7b"), small))
    assert set(plan.programs) == {"train_step", "rollout"} and plan.shapes["slots"] == 8
    per_position = 2 * 2 * 2 * 16 * 4  # k and v, 2 layers, 2 kv-heads, head_dim 16, float32
    slot_cache = 8 // 8 * (64 + 512) * (per_position + 1)  # + key mask, slots over data x fsdp = 8
    prompt_cache = 8 // 8 * 64 * (per_position + 1)
    assert plan.kv_cache == slot_cache + prompt_cache + 2 * 4  # + the two write indices
    assert plan.programs["rollout"].temp >= plan.kv_cache - prompt_cache
    text = report.format_plan(plan)
    assert "over 8 continuous-batching slots" in text and "rollout temp" in text


def test_verdict(qwen_plan):
    assert qwen_plan.fits()
    assert not qwen_plan.fits(budget=2**30)
    assert qwen_plan.peak == max(qwen_plan.phases.values())
    text = report.format_plan(qwen_plan, budget=2**30)
    assert "verdict: DOES NOT FIT" in text and "OVER" in text
    assert "verdict: FITS" in report.format_plan(qwen_plan)
    for name in ("parameters", "optimizer state", "KV cache", "train_step", "prefill", "decode", "estimate"):
        assert name in text
    assert "knob: train step: lower algo.micro_batch_rollouts" in text and "knob: sampling" in text


def test_model_config_from_hf_json(tmp_path):
    hf = dict(build.PRESETS["Qwen/Qwen3-1.7B-Base"], num_hidden_layers=2)
    (tmp_path / "config.json").write_text(json.dumps(hf))
    for path in (str(tmp_path), str(tmp_path / "config.json")):
        assert build.hf_config_dict(path)["num_hidden_layers"] == 2
    assert build.hf_config_dict("qwen3-1.7b-base")["hidden_size"] == D
    with pytest.raises(ValueError, match="not a preset"):
        build.hf_config_dict(str(tmp_path / "missing"))


def test_batching_errors():
    config = apply_overrides(load_config("paper_qwen3_1p7b"), ["algo.micro_batch_rollouts=7"])
    with pytest.raises(ValueError, match="micro_batch_rollouts=7"):
        setup.batching(config)
    step_cfg, _ = setup.step_and_optimizer(load_config("paper_qwen3_1p7b"))
    assert (step_cfg.num_minibatches, step_cfg.num_microbatches, step_cfg.remat) == (1, 64 * 8 // 16, True)


def test_cli_flags(monkeypatch):
    assert cli.parse_size("16GiB") == 16 and cli.parse_size("80GB") == pytest.approx(80e9 / 2**30)
    assert cli.parse_size("32") == 32 and cli.parse_size("512MiB") == 0.5
    with pytest.raises(SystemExit, match="16GiB"):
        cli.parse_size("lots")
    args = ["--config", "x", "--devices", "4", "--device-memory-gb=80", "a=1"]
    assert cli._pop_flag(args, "--devices") == "4"
    assert cli._pop_flag(args, "--device-memory-gb") == "80"
    assert cli._pop_flag(args, "--nothing") is None and args == ["--config", "x", "a=1"]
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_foo=1")
    cli.set_fake_devices(4)
    assert "--xla_force_host_platform_device_count=4" in os.environ["XLA_FLAGS"]
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
    cli.set_fake_devices(4)  # already set: left alone (main then checks the device count)
    assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=8"


# ---------------------------------------------------------------------------------------------- distributed


def test_maybe_initialize_is_a_noop_without_the_env_var(monkeypatch):
    def boom(**_):
        raise AssertionError("jax.distributed.initialize must not be called")

    monkeypatch.setattr(jax.distributed, "initialize", boom)
    monkeypatch.delenv("URLVR_DISTRIBUTED", raising=False)
    assert distributed.maybe_initialize() is False
    assert distributed.maybe_initialize({"URLVR_DISTRIBUTED": "0", "URLVR_COORDINATOR": "h:1"}) is False


def test_maybe_initialize_passes_the_cluster(monkeypatch):
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    env = {"URLVR_DISTRIBUTED": "1", "URLVR_COORDINATOR": "10.0.0.1:1234", "URLVR_NUM_PROCESSES": "4",
           "URLVR_PROCESS_ID": "2", "URLVR_LOCAL_DEVICE_IDS": "0,1"}
    assert distributed.maybe_initialize(env) is True
    assert calls == [dict(coordinator_address="10.0.0.1:1234", num_processes=4, process_id=2, local_device_ids=[0, 1])]
    assert distributed.distributed_kwargs({"URLVR_DISTRIBUTED": "true"}) == {}  # TPU / SLURM: auto-detect


@pytest.mark.parametrize("env, match", [
    ({"URLVR_COORDINATOR": "h:1"}, "URLVR_NUM_PROCESSES, URLVR_PROCESS_ID"),
    ({"URLVR_COORDINATOR": "h:1", "URLVR_NUM_PROCESSES": "two", "URLVR_PROCESS_ID": "0"}, "must be an integer"),
])
def test_distributed_env_errors(env, match):
    with pytest.raises(ValueError, match=match):
        distributed.distributed_kwargs({"URLVR_DISTRIBUTED": "1", **env})

