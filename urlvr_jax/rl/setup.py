"""Building a run's parts from its config: the model and its params, the tokenizer, prompt encoding."""

from __future__ import annotations

import os

import jax
import numpy as np

from urlvr_jax import sharding as shd
from urlvr_jax.model import hf_io
from urlvr_jax.model.config import ModelConfig
from urlvr_jax.model.tokenizer import encode_batch, load_tokenizer
from urlvr_jax.model.transformer import Params, init_params
from urlvr_jax.rl.losses import GRPOLossConfig
from urlvr_jax.rl.train_step import StepConfig, make_optimizer
from urlvr_jax.tasks import Example, format_prompt


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
MATMUL_PRECISIONS = ("highest", "float32", "high", "tensorfloat32", "bfloat16", "default")


def set_matmul_precision(config) -> str:
    """Sets JAX's default float32 matmul precision for this process from ``train.matmul_precision`` (call it once,
    before anything is compiled), so a GPU's TF32 or a TPU's one-pass bfloat16 default cannot change results
    silently; on CPU "highest" and "default" give identical bits. Returns the value set."""
    precision = str(config.train.matmul_precision)
    if precision not in MATMUL_PRECISIONS:
        raise ValueError(f"config train.matmul_precision={precision!r} is not one of {MATMUL_PRECISIONS}")
    jax.config.update("jax_default_matmul_precision", precision)
    return precision


def build_tokenizer(config):
    tok = config.tokenizer
    if tok.kind == "char":
        from urlvr_jax.tasks.char_tokenizer import make_char_tokenizer

        tokenizer = make_char_tokenizer()
        tokenizer.padding_side = "left"
        return tokenizer
    if tok.kind != "hf":
        raise ValueError(f"config tokenizer.kind={tok.kind!r} is not one of ('hf', 'char')")
    path = tok.path or _model_path(config)
    if not path:
        raise ValueError("config tokenizer.path (or model.path) must name a tokenizer directory for tokenizer.kind=hf")
    key = "tokenizer.path" if tok.path else "model.path"
    if os.path.isdir(path) and not any(os.path.exists(os.path.join(path, f)) for f in TOKENIZER_FILES):
        raise ValueError(f"config {key}={path!r} holds no tokenizer (none of {', '.join(TOKENIZER_FILES)}); "
                         f"name a Hugging Face model directory, or set tokenizer.kind=char")
    return load_tokenizer(path)


def _model_path(config) -> str:
    if config.model.source == "smollm2":
        from urlvr_jax.model import smollm2

        return smollm2.hf_dir()
    return config.model.path


def build_model(config, tokenizer, mesh, rng: jax.Array) -> tuple[ModelConfig, Params]:
    """(ModelConfig, params placed on ``mesh``) for ``config.model``."""
    m = config.model
    numerics = dict(dtype=m.dtype, param_dtype=m.param_dtype, attention_chunk=m.attention_chunk,
                    attention=m.attention, kv_layout=m.kv_layout)
    if m.source in ("hf", "smollm2"):
        path = _model_path(config)
        if not path:
            raise ValueError("config model.path must name a Hugging Face directory or .gguf file for model.source=hf")
        cfg, params = hf_io.load_hf(path, mesh=mesh, **numerics)
    elif m.source == "init":
        cfg = ModelConfig(
            family=m.family, vocab_size=m.vocab_size or len(tokenizer), hidden_size=m.hidden_size,
            intermediate_size=m.intermediate_size, num_layers=m.num_layers, num_heads=m.num_heads,
            num_kv_heads=m.num_kv_heads, head_dim=m.head_dim, rope_theta=m.rope_theta,
            max_position_embeddings=m.max_position_embeddings, tie_embeddings=m.tie_embeddings,
            attention_bias=m.family == "qwen2", qk_norm=m.family == "qwen3",
            pad_token_id=tokenizer.pad_token_id or 0, **numerics)
        params = init_params(cfg, rng)
        if mesh is not None:
            params = jax.device_put(params, shd.param_shardings(params, mesh))
    else:
        raise ValueError(f"config model.source={m.source!r} is not one of ('init', 'hf', 'smollm2')")
    if cfg.vocab_size < len(tokenizer):
        raise ValueError(f"model vocab_size {cfg.vocab_size} is smaller than the tokenizer's {len(tokenizer)} tokens")
    return cfg, params


def stop_token_ids(tokenizer, cfg: ModelConfig) -> tuple[int, ...]:
    ids = set(cfg.eos_token_ids)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return tuple(sorted(ids))


def prompt_texts(config, tokenizer, examples: list[Example], template: str | None = None) -> list[str]:
    """The prompt text of each example: ``data.template`` (or ``template``), in the chat template if any.

    An example whose ``info`` has a ``response_prefix`` (e.g. arithmetic's ``equation`` format) gets it appended:
    the start of the assistant's turn, which the model continues.
    """
    chat = {"auto": "auto", "true": True, "false": False}.get(str(config.data.chat_template).lower())
    if chat is None:
        raise ValueError(f"config data.chat_template={config.data.chat_template!r} is not one of auto/true/false")
    texts = []
    for ex in examples:
        question, prefix = (ex.prompt, ex.info.get("response_prefix", "")) if isinstance(ex, Example) else (ex, "")
        texts.append(format_prompt(tokenizer, question, template=template or config.data.template,
                                   use_chat_template=chat) + prefix)
    return texts


def encode_prompts(config, tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    tokens, mask = encode_batch(tokenizer, texts, add_special_tokens=config.tokenizer.add_special_tokens)
    too_long = np.flatnonzero(mask.sum(axis=1) > config.rollout.max_prompt_len)
    if too_long.size:
        raise ValueError(f"{too_long.size} prompt(s) exceed rollout.max_prompt_len={config.rollout.max_prompt_len} "
                         f"tokens (longest {int(mask.sum(axis=1).max())}); raise it or filter the data")
    return tokens, mask


def export_run(run_dir: str, cfg: ModelConfig, params: Params, tokenizer) -> str:
    """Writes the params as a Hugging Face directory (with the tokenizer) under ``run_dir/hf``; refuses (a
    FloatingPointError naming the first leaf) params with a non-finite value."""
    out = os.path.join(run_dir, "hf")
    bad = [jax.tree_util.keystr(path) for path, x in jax.tree_util.tree_leaves_with_path(params)
           if np.issubdtype(np.asarray(x).dtype, np.inexact) and not np.isfinite(np.asarray(x)).all()]
    if bad:
        raise FloatingPointError(f"refusing to export non-finite weights to {out}: params{bad[0]}"
                                 + (f" and {len(bad) - 1} more" if len(bad) > 1 else ""))
    hf_io.save_hf(params, cfg, out)
    tokenizer.save_pretrained(out)
    return out


def batching(config) -> tuple[int, int]:
    """(num_minibatches, num_microbatches), checked as the loop checks them."""
    prompts, mb = config.rollout.prompts_per_step, config.algo.mini_batch_prompts
    if mb < 1 or prompts % mb:
        raise ValueError(f"config algo.mini_batch_prompts={mb} must divide rollout.prompts_per_step={prompts}")
    rows = mb * config.rollout.n
    micro = config.algo.micro_batch_rollouts or rows
    if rows % micro:
        raise ValueError(f"config algo.micro_batch_rollouts={micro} must divide the {rows} rollouts of a mini-batch")
    return prompts // mb, rows // micro


def step_and_optimizer(config):
    """(StepConfig, optimizer) of a run config (the loop and plan mode both use this)."""
    c, a, o = config, config.algo, config.optim
    num_minibatches, num_microbatches = batching(c)
    loss = GRPOLossConfig(policy_loss=a.policy_loss, eps_low=a.eps_low, eps_high=a.eps_high,
                          dual_clip_c=a.dual_clip_c or None, loss_agg_mode=a.loss_agg_mode,
                          norm_length=float(c.rollout.max_new_tokens), kl_coef=a.kl_coef,
                          kl_estimator=a.kl_estimator, entropy_coef=a.entropy_coef, kl_ratio=a.kl_ratio,
                          count_empty_rows=a.count_empty_rows, normalize_per_micro_batch=a.normalize_per_micro_batch)
    step_cfg = StepConfig(loss=loss, temperature=c.rollout.temperature, ppo_epochs=a.ppo_epochs,
                          num_minibatches=num_minibatches, num_microbatches=num_microbatches,
                          remat=c.train.remat, logprob_chunk=c.train.logprob_chunk or None,
                          unroll_layers=c.train.unroll_layers, prompt_group=prompt_group(c),
                          report_ref_kl=bool(a.kl_coef) or a.report_ref_kl,
                          old_is_current=old_logprobs_source(c) == "current",
                          max_param_norm=float(c.train.max_param_norm))
    optimizer = make_optimizer(o.lr, c.train.steps * a.ppo_epochs * num_minibatches, schedule=o.schedule,
                               warmup_ratio=o.warmup_ratio, weight_decay=o.weight_decay, grad_clip=o.grad_clip,
                               b1=o.b1, b2=o.b2)
    return step_cfg, optimizer


def prompt_group(config) -> int:
    """Consecutive training rows that share a prompt and run it once (``train.share_prompt``): ``rollout.n``."""
    return config.rollout.n if config.train.share_prompt else 1


def old_logprobs_source(config) -> str:
    """Where pi_old comes from: ``current`` (stop-gradient of the trainer's own log-probs; exact with one update
    per rollout batch), ``recompute`` (a stored pass before the updates) or ``sampler`` (the sampler's)."""
    mode, a = config.algo.old_logprobs, config.algo
    if mode not in ("auto", "recompute", "sampler"):
        raise ValueError(f"config algo.old_logprobs={mode!r} is not one of ('auto', 'recompute', 'sampler')")
    if mode == "auto":
        return "current" if a.ppo_epochs == 1 and batching(config)[0] == 1 else "recompute"
    return mode
