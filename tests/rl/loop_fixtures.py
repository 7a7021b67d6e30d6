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
               seed: int = 0) -> TrainBatch:
    """A TrainBatch of random left-padded prompts and right-padded completions of varying lengths, old
    log-probs near the current ones (so some ratios clip), reference log-probs and group-like advantages."""
    rng = np.random.default_rng(seed)
    p_len = rng.integers(1, prompt_len + 1, rows)
    c_len = rng.integers(1, width + 1, rows)
    prompt_mask = np.arange(prompt_len)[None] >= prompt_len - p_len[:, None]
    mask = np.arange(width)[None] < c_len[:, None]
    prompt_tokens = np.where(prompt_mask, rng.integers(3, cfg.vocab_size, (rows, prompt_len)), 0).astype(np.int32)
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
    """Metrics records without their wall-clock ``*_time`` entries."""
    return [{k: v for k, v in r.items() if not k.endswith(TIME_SUFFIX)} for r in records]


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


# ---------------------------------------------------------------- the warm-started tiny run

WARM_START_STEPS = 100  # supervised steps on correct targets: a weak prior (val accuracy ~0.1-0.4)


def make_weak_prior(out_dir: str, steps: int = WARM_START_STEPS, seed: int = 0) -> str:
    """``tiny_gt``'s model briefly warm-started on its own task (1-digit compact arithmetic, "7-1=" -> "6")
    and written as a Hugging Face directory at ``out_dir`` (a weak prior that ground-truth RL can improve)."""
    from urlvr_jax.experiments.warm_start import WarmStartConfig, supervised_finetune
    from urlvr_jax.model import hf_io
    from urlvr_jax.rl import setup
    from urlvr_jax.rl.data import make_task
    from urlvr_jax.utils.config import load_config

    config = load_config("tiny_gt")
    tokenizer = setup.build_tokenizer(config)
    cfg, params = setup.build_model(config, tokenizer, None, jax.random.key(seed))
    examples = make_task(config.data).generate(512, seed=seed + 1)
    pairs = list(zip(setup.prompt_texts(config, tokenizer, examples), [ex.answer for ex in examples]))
    ws = WarmStartConfig(steps=steps, batch_size=64, lr=3e-3, seed=seed)
    params = supervised_finetune(cfg, params, tokenizer, pairs, ws, config.tokenizer.add_special_tokens)
    hf_io.save_hf(params, cfg, out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def gt_run_overrides(prior_dir: str, run_dir: str, *extra: str) -> list[str]:
    """Command-line overrides of ``tiny_gt`` for ground-truth GRPO from the prior at ``prior_dir``."""
    return [f"model.source=hf", f"model.path={prior_dir}", f"run_dir={run_dir}", "rollout.max_new_tokens=4",
            "rollout.max_prompt_len=8", "rollout.n=8", "rollout.prompts_per_step=16", "algo.mini_batch_prompts=16",
            "optim.lr=1e-3", "data.val_size=32", "val.k=4", "val.temperature=1.0", "val.top_p=1.0",
            "train.checkpoint_every=1000", *extra]
