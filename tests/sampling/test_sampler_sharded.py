"""Sharded sampling on 8 fake CPU devices, compile counts, and policy/reference placement on two meshes."""

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding

from sampler_fixtures import cached_sampler, jitted_forward, left_padded, tiny_model
from urlvr_jax import sharding as shd
from urlvr_jax.sampling.placement import fetch_to_device, host_offload_supported, memory_kinds, place_params
from urlvr_jax.sampling.sampler import Sampler
from urlvr_jax.sampling.strategies import SamplingConfig

NEW = 8
GREEDY = SamplingConfig(max_new_tokens=NEW, temperature=0.0, stop_token_ids=(5,))


@pytest.fixture(scope="module")
def setup():
    if jax.device_count() < 8:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8 (set by tests/conftest.py)")
    _, cfg, params = tiny_model("llama")
    policy_mesh = shd.make_mesh("data:2,fsdp:2,tensor:2")
    return cfg, params, policy_mesh, place_params(params, policy_mesh)


def test_sharded_logits_and_greedy_tokens_equal_unsharded(setup):
    cfg, params, mesh, placed = setup
    assert placed["layers"]["q"].sharding.spec == shd.fit_spec(
        shd.PARAM_RULES[2][1], placed["layers"]["q"].shape, mesh)
    assert len(placed["layers"]["gate"].sharding.device_set) == 8
    tokens, mask = left_padded((5, 12, 1, 9), cfg.vocab_size, seed=1)
    unsharded = np.asarray(jitted_forward(params, tokens, mask, cfg=cfg))
    sharded = jitted_forward(placed, jax.device_put(tokens, shd.batch_sharding(mesh, tokens.shape)),
                             jax.device_put(mask, shd.batch_sharding(mesh, mask.shape)), cfg=cfg)
    np.testing.assert_allclose(np.asarray(sharded), unsharded, atol=1e-5, rtol=0)

    local = jax.tree.map(np.asarray, cached_sampler(cfg, GREEDY).generate(params, tokens, mask, jax.random.key(0)))
    sampler = Sampler(cfg, GREEDY, mesh=mesh)
    rollout = sampler.generate(placed, tokens, mask, jax.random.key(0))
    assert rollout.tokens.sharding.spec == shd.batch_sharding(mesh, rollout.tokens.shape).spec
    assert len(rollout.tokens.sharding.device_set) == 8
    for name in ("tokens", "lengths", "finished", "mask"):
        np.testing.assert_array_equal(np.asarray(getattr(rollout, name)), getattr(local, name), err_msg=name)
    np.testing.assert_allclose(np.asarray(rollout.logprobs), local.logprobs, atol=1e-5)

    # compile counts: two prompt lengths inside bucket 16 -> one program each; bucket 24 -> a second
    assert sampler.compile_counts() == (1, 1)
    short = left_padded((3, 7, 2, 4), cfg.vocab_size, seed=2)
    sampler.generate(placed, *short, jax.random.key(1))
    assert sampler.compile_counts() == (1, 1)
    sampler.generate(params, *left_padded((20, 3, 3, 3), cfg.vocab_size, seed=3), jax.random.key(1))
    assert sampler.compile_counts() == (2, 2)
    sampler.generate(placed, *short, jax.random.key(2), num_samples=2)  # 8 rows: another shape
    assert sampler.compile_counts() == (3, 3)


def test_reference_on_another_mesh_with_host_offload(setup):
    cfg, params, policy_mesh, policy = setup
    ref_mesh = shd.make_mesh("fsdp:8")
    reference = place_params(policy, ref_mesh, offload_to_host=True)  # from one mesh to another
    expected_kind = "pinned_host" if host_offload_supported(ref_mesh) else "device"
    assert memory_kinds(reference) == {expected_kind}
    gate = reference["layers"]["gate"]
    assert gate.sharding.mesh.shape == ref_mesh.shape and gate.sharding.spec[1] == "fsdp"
    on_device = fetch_to_device(reference, ref_mesh)
    assert memory_kinds(on_device) == {"device"}
    assert all(isinstance(x.sharding, NamedSharding) and x.sharding.mesh.shape == ref_mesh.shape
               for x in jax.tree.leaves(on_device))
    for a, b in zip(jax.tree.leaves(on_device), jax.tree.leaves(params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    tokens, mask = left_padded((5, 12, 1, 9, 4, 4, 7, 2), cfg.vocab_size, seed=4)
    put = lambda x, mesh: jax.device_put(x, shd.batch_sharding(mesh, x.shape))
    ref_logits = jitted_forward(on_device, put(tokens, ref_mesh), put(mask, ref_mesh), cfg=cfg)
    policy_logits = jitted_forward(policy, put(tokens, policy_mesh), put(mask, policy_mesh), cfg=cfg)
    np.testing.assert_allclose(np.asarray(ref_logits), np.asarray(policy_logits), atol=1e-5, rtol=0)
    in_device_memory = place_params(params, ref_mesh)
    assert memory_kinds(in_device_memory) == {"device"}
