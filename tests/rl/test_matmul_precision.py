"""``train.matmul_precision``: :func:`urlvr_jax.rl.setup.set_matmul_precision` sets JAX's default for the process."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from urlvr_jax.config_base import get_config
from urlvr_jax.model.config import ModelConfig
from urlvr_jax.model.transformer import forward, init_params
from urlvr_jax.rl import setup


@pytest.fixture(autouse=True)
def restore_precision():
    before = jax.config.jax_default_matmul_precision
    yield
    jax.config.update("jax_default_matmul_precision", before)


def config_with(precision: str):
    config = get_config()
    config.train.matmul_precision = precision
    return config


def test_default_is_highest_and_every_listed_value_is_one_jax_accepts():
    assert get_config().train.matmul_precision == "highest"
    for precision in setup.MATMUL_PRECISIONS:
        assert setup.set_matmul_precision(config_with(precision)) == precision
        assert jax.config.jax_default_matmul_precision == precision


def test_unknown_value_names_the_config_key():
    with pytest.raises(ValueError, match=r"config train.matmul_precision='tf32' is not one of"):
        setup.set_matmul_precision(config_with("tf32"))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_highest_gives_the_same_bits_as_the_cpu_default(dtype):
    """On CPU "highest" changes nothing: the loss and gradients of a forward pass are bit-identical to "default"."""
    cfg = ModelConfig(family="qwen2", vocab_size=256, hidden_size=64, intermediate_size=128, num_layers=2,
                      num_heads=4, num_kv_heads=2, head_dim=16, attention_bias=True, dtype=dtype, param_dtype=dtype)
    params = init_params(cfg, jax.random.key(0))
    tokens = jnp.asarray(np.random.default_rng(0).integers(0, 256, (4, 24)), jnp.int32)
    loss = lambda p: jax.nn.log_softmax(forward(p, tokens, cfg=cfg)[0])[..., 1].mean()
    results = []
    for precision in ("default", "highest"):
        setup.set_matmul_precision(config_with(precision))
        value, grads = jax.jit(jax.value_and_grad(loss))(params)  # a new trace: precision is part of jit's key
        results.append([np.asarray(x.astype(jnp.float32)) for x in [value, *jax.tree.leaves(grads)]])
    assert all(np.array_equal(a, b) for a, b in zip(*results))
