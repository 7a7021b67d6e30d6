"""Shared helpers of the train-step and loop tests: a tiny model and batch, tiny run configs, CLI runs."""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

from urlvr_jax.model.config import ModelConfig
from urlvr_jax.model.transformer import init_params
from urlvr_jax.rl.train_step import TrainBatch
from urlvr_jax.sampling.logprobs import completion_logprobs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIME_SUFFIX = "_time"  # wall-clock metrics, the only ones allowed to differ between identical runs


@functools.lru_cache(maxsize=None)
def tiny_model(seed: int = 0) -> tuple[ModelConfig, dict]:
    """A one-layer model whose every sharded dimension divides a 2×2×2 mesh (params scaled up from 0.02
    so log-probs differ between tokens)."""
    cfg = ModelConfig(family="llama", vocab_size=32, hidden_size=16, intermediate_size=32, num_layers=1,
                      num_heads=2, num_kv_heads=2, head_dim=8, max_position_embeddings=32, tie_embeddings=True)
    return cfg, init_params(cfg, jax.random.key(seed), scale=0.3)


def tiny_batch(cfg: ModelConfig, params, *, rows: int = 8, prompt_len: int = 4, width: int = 6,
               seed: int = 0, group: int = 1) -> TrainBatch:
    """A TrainBatch of random left-padded prompts and right-padded completions of varying lengths, old
    log-probs near the current ones (so some ratios clip), reference log-probs and group-like advantages.
    Each run of ``group`` consecutive rows shares one prompt (as the sampler orders GRPO's groups)."""
    rng = np.random.default_rng(seed)
    p_len = np.repeat(rng.integers(1, prompt_len + 1, rows // group), group)
    c_len = rng.integers(1, width + 1, rows)
    prompt_mask = np.arange(prompt_len)[None] >= prompt_len - p_len[:, None]
    mask = np.arange(width)[None] < c_len[:, None]
    prompts = np.repeat(rng.integers(3, cfg.vocab_size, (rows // group, prompt_len)), group, axis=0)
    prompt_tokens = np.where(prompt_mask, prompts, 0).astype(np.int32)
    tokens = np.where(mask, rng.integers(3, cfg.vocab_size, (rows, width)), 0).astype(np.int32)
    args = tuple(jnp.asarray(x) for x in (prompt_tokens, prompt_mask, tokens, mask))
    logp = np.asarray(jax.jit(functools.partial(completion_logprobs, cfg=cfg))(params, *args))
    old = np.where(mask, logp + rng.normal(0.0, 0.2, logp.shape), 0.0).astype(np.float32)
    ref = np.where(mask, logp + rng.normal(0.0, 0.2, logp.shape), 0.0).astype(np.float32)
    sampler = np.where(mask, old + rng.normal(0.0, 1e-3, logp.shape), 0.0).astype(np.float32)
    return TrainBatch(*args, advantages=jnp.asarray(rng.normal(size=rows), jnp.float32),
                      old_logprobs=jnp.asarray(old), ref_logprobs=jnp.asarray(ref),
                      sampler_logprobs=jnp.asarray(sampler))


def copy_tree(tree):
    """Fresh buffers (the train step donates its state argument)."""
    return jax.tree.map(jnp.copy, tree)


def max_abs_diff(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def without_times(records: list[dict]) -> list[dict]:
    """Metrics records without their wall-clock ``*_time`` entries and the ``goodput/*`` record each session ends with."""
    return [{k: v for k, v in r.items() if not k.endswith(TIME_SUFFIX)} for r in records
            if not any(k.startswith("goodput/") for k in r)]


def cli_env(cache_dir: str | None = None) -> dict:
    """The environment of a CLI subprocess: one CPU device, quiet, and (optionally) a persistent
    compilation cache so repeated runs of one config skip most compiles."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", PYTHONHASHSEED="0")
    if cache_dir:
        env.update(JAX_COMPILATION_CACHE_DIR=cache_dir, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return env


def train_cmd(config: str, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "urlvr_jax.train", "--config", config, "train.progress=false", *overrides]


def run_cli(cmd: list[str], env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env=env or cli_env(), capture_output=True, text=True, timeout=timeout)


# A config file that loads tiny_gt and registers a reward that is NaN everywhere (a fault to inject).
NAN_REWARD_CONFIG = '''
import numpy as np

from urlvr_jax.rewards.registry import register_reward
from urlvr_jax.utils.config import load_config


@register_reward("test_nan_reward", "control")
def _nan_reward(batch, **options):
    return np.full(batch.batch_size, np.nan, np.float32)


def get_config():
    return load_config("tiny_gt")
'''
