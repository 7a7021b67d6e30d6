"""The GRPO train step: one jitted pure function over (TrainState, TrainBatch), with donated state.

One call consumes one rollout batch: ``ppo_epochs`` (μ) passes, each over ``num_minibatches`` mini-batches in
order, each mini-batch one optimizer update whose gradient is accumulated over ``num_microbatches``
micro-batches with the (sum, denominator) loss terms, so micro-batching changes nothing but memory.
An update whose loss or gradient is not finite, or whose new params or optimizer state are not (or whose params
exceed ``max_param_norm``), is rolled back (params and optimizer state unchanged) and counted in the
``rolled_back_updates`` metric (``nonfinite_updates``: those with a non-finite loss or gradient).
With ``prompt_group`` = the rollouts per prompt, each micro-batch's
forward runs every prompt once for the rows that share it (see :mod:`urlvr_jax.model.shared_prompt`).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import flax.struct
import jax
import jax.numpy as jnp
import optax

from urlvr_jax import sharding as shd
from urlvr_jax.model.attention_kernels import traced_under
from urlvr_jax.model.config import ModelConfig
from urlvr_jax.model.transformer import Params, abstract_params, unstack_layers
from urlvr_jax.rl.kl import kl_penalty
from urlvr_jax.rl.losses import GRPOLossConfig, accumulate_terms, finalize, grpo_loss_terms
from urlvr_jax.sampling.logprobs import completion_stats


@flax.struct.dataclass(frozen=True)
class TrainState:
    params: Params
    opt_state: optax.OptState
    step: jax.Array  # [] int32, optimizer updates applied
    rng: jax.Array  # PRNG key of the run


@flax.struct.dataclass(frozen=True)
class TrainBatch:
    """One rollout batch ready for the update ([B, ...] arrays, B = prompts × rollouts)."""

    prompt_tokens: jax.Array
    prompt_mask: jax.Array
    tokens: jax.Array
    mask: jax.Array
    advantages: jax.Array  # [B]
    old_logprobs: jax.Array  # [B, T] log pi_old (sampler's or a stored pass)
    ref_logprobs: jax.Array  # [B, T] log pi_ref (zeros when kl_coef == 0)
    sampler_logprobs: jax.Array  # [B, T] as sampled, for the sampler/trainer gap metric


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Static shape of one train step."""

    loss: GRPOLossConfig
    temperature: float = 1.0
    ppo_epochs: int = 1
    num_minibatches: int = 1
    num_microbatches: int = 1
    remat: bool = False
    logprob_chunk: int | None = None
    unroll_layers: bool = False  # unstacked layers: no stacked residual buffers to fill and slice
    report_ref_kl: bool = False  # batch.ref_logprobs hold real reference log-probs
    # True: pi_old = stop_gradient(pi_theta), exact when each rollout batch makes one update (ratio 1);
    # batch.old_logprobs is then ignored and no separate log-prob pass is needed.
    old_is_current: bool = False
    # consecutive rows sharing one prompt (the sampler's order): a micro-batch of R rows runs each prompt once per
    # gcd(R, prompt_group) rows, with the same result as one forward per row. 1: every row runs its own prompt.
    prompt_group: int = 1
    # an update leaving the params' global norm above this is rolled back like a non-finite one (0: no bound)
    max_param_norm: float = 0.0

    def __post_init__(self):
        for name in ("ppo_epochs", "num_minibatches", "num_microbatches", "prompt_group"):
            if getattr(self, name) < 1:
                raise ValueError(f"StepConfig.{name}={getattr(self, name)} must be >= 1")


def make_optimizer(lr: float, total_steps: int, *, schedule: str = "constant", warmup_ratio: float = 0.0,
                   weight_decay: float = 0.01, grad_clip: float = 1.0, b1: float = 0.9, b2: float = 0.999,
                   eps: float = 1e-8) -> optax.GradientTransformation:
    """AdamW with global-norm clipping; ``schedule`` is ``constant`` or ``cosine`` (with linear warmup)."""
    warmup = int(round(warmup_ratio * total_steps))
    if schedule == "constant":
        rate = optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)],
                                    [warmup]) if warmup else lr
    elif schedule == "cosine":
        rate = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total_steps, warmup + 1))
    else:
        raise ValueError(f"optim.schedule={schedule!r} is not one of ('constant', 'cosine')")
    parts = [optax.clip_by_global_norm(grad_clip)] if grad_clip and grad_clip > 0 else []
    parts.append(optax.adamw(rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay))
    return optax.chain(*parts)


def init_train_state(params: Params, optimizer: optax.GradientTransformation, rng: jax.Array) -> TrainState:
    return TrainState(params=params, opt_state=optimizer.init(params), step=jnp.zeros((), jnp.int32), rng=rng)


def _split(tree, parts: int, mesh: jax.sharding.Mesh | None):
    """[B, ...] leaves as [parts, B / parts, ...]: part i holds rows [i * B / parts, (i + 1) * B / parts).

    With a ``mesh`` the rows of each part stay sharded over ('data', 'fsdp') (``P(None, BATCH)``). Left to
    itself, XLA moves the batch sharding onto the part index, so that a scan over the parts would run each part
    whole on every data x fsdp device; the constraint makes it move the rows once instead (an all-to-all of
    the batch), and each part's forward and backward run on B / parts / (data x fsdp) rows per device.
    """
    def split(x):
        x = x.reshape(parts, -1, *x.shape[1:])
        return x if mesh is None else jax.lax.with_sharding_constraint(x, shd.batch_sharding(mesh, x.shape, 1))
    return jax.tree.map(split, tree)


def _constrain_rows(tree, mesh: jax.sharding.Mesh | None):
    """Pins [R, ...] leaves to the batch sharding (inside the scans, where propagation is weakest)."""
    if mesh is None:
        return tree
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, shd.batch_sharding(mesh, x.shape)), tree)


def _shared_rows(step_cfg: StepConfig, rows: int, mesh: jax.sharding.Mesh | None) -> int:
    """Rows of a micro-batch of ``rows`` rows that run their prompt once: ``prompt_group`` rows where they are
    consecutive and, on a mesh, on one device (a group split over devices would have its prompt's activations
    gathered on every device), else a divisor of it."""
    shards = 1 if mesh is None else mesh.shape["data"] * mesh.shape["fsdp"]
    return math.gcd(step_cfg.prompt_group, rows // shards if rows % shards == 0 else rows)


def _microbatch_terms(params, mb: TrainBatch, cfg: ModelConfig, step_cfg: StepConfig, shared_rows: int = 1):
    if step_cfg.unroll_layers:
        params = unstack_layers(params)  # its gradient flows back into the stacked params
    stats = completion_stats(params, mb.prompt_tokens, mb.prompt_mask, mb.tokens, mb.mask, cfg=cfg,
                             temperature=step_cfg.temperature, chunk_size=step_cfg.logprob_chunk,
                             remat=step_cfg.remat, prompt_group=shared_rows)
    loss_cfg = step_cfg.loss
    old = None if step_cfg.old_is_current else mb.old_logprobs
    terms = grpo_loss_terms(stats["logprobs"], old, mb.advantages, mb.mask, loss_cfg,
                            ref_logprobs=mb.ref_logprobs if loss_cfg.kl_coef else None,
                            entropy=stats["entropy"] if loss_cfg.entropy_coef else None)
    mask = mb.mask.astype(jnp.float32)
    count = mask.sum()
    sg = jax.lax.stop_gradient
    terms["entropy_mean"] = ((sg(stats["entropy"]) * mask).sum(), count)
    terms["logprob_gap"] = ((jnp.abs(sg(stats["logprobs"]) - mb.sampler_logprobs) * mask).sum(), count)
    if step_cfg.report_ref_kl:
        # k3 estimate of KL(pi || pi_ref), reported (optimised only through the "kl" term when kl_coef != 0).
        terms["ref_kl"] = ((kl_penalty(sg(stats["logprobs"]), mb.ref_logprobs, "k3") * mask).sum(), count)
    return terms


def _update(state: TrainState, minibatch: TrainBatch, *, cfg: ModelConfig, step_cfg: StepConfig,
            optimizer: optax.GradientTransformation, mesh: jax.sharding.Mesh | None = None):
    """One optimizer update from one mini-batch, accumulated over micro-batches."""
    micro = _split(_constrain_rows(minibatch, mesh), step_cfg.num_microbatches, mesh)

    shared = _shared_rows(step_cfg, minibatch.advantages.shape[0] // step_cfg.num_microbatches, mesh)

    def loss_fn(params, mb):
        terms = _microbatch_terms(params, _constrain_rows(mb, mesh), cfg, step_cfg, shared)
        return terms["loss"][0], terms

    grad_fn = jax.grad(loss_fn, has_aux=True)

    def accumulate(carry, mb):
        grads, terms = carry
        g, t = grad_fn(state.params, mb)
        return (jax.tree.map(jnp.add, grads, g), accumulate_terms(terms, t)), None

    first = jax.tree.map(lambda x: x[0], micro)
    grads, terms = grad_fn(state.params, first)
    if step_cfg.num_microbatches > 1:
        rest = jax.tree.map(lambda x: x[1:], micro)
        (grads, terms), _ = jax.lax.scan(accumulate, (grads, terms), rest)
    denom = jnp.maximum(terms["loss"][1], 1e-9)
    grads = jax.tree.map(lambda g, p: (g / denom).astype(p.dtype), grads, state.params)  # bf16 params: bf16 moments
    metrics = finalize(terms)
    grad_norm = optax.global_norm(grads)
    finite = jnp.isfinite(metrics["loss"]) & jnp.isfinite(grad_norm)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ok = finite & state_passes(params, opt_state, step_cfg.max_param_norm)  # else roll the update back
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)
    state = state.replace(params=keep(params, state.params), opt_state=keep(opt_state, state.opt_state),
                          step=state.step + ok.astype(jnp.int32))
    metrics.update(grad_norm=grad_norm, nonfinite_updates=1.0 - finite.astype(jnp.float32),
                   rolled_back_updates=1.0 - ok.astype(jnp.float32))
    return state, metrics


def state_passes(params, opt_state, max_param_norm: float = 0.0) -> jax.Array:
    """True when every float of ``params`` and ``opt_state`` is finite and the parameters' global norm is at most
    ``max_param_norm`` (0: no bound): the check a new state must pass to replace the previous one."""
    floats = [x for x in jax.tree.leaves((params, opt_state)) if jnp.issubdtype(x.dtype, jnp.inexact)]
    ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in floats])) if floats else jnp.bool_(True)
    if max_param_norm:
        ok &= optax.global_norm(params) <= max_param_norm
    return ok


def train_step(state: TrainState, batch: TrainBatch, *, cfg: ModelConfig, step_cfg: StepConfig,
               optimizer: optax.GradientTransformation,
               mesh: jax.sharding.Mesh | None = None) -> tuple[TrainState, dict]:
    """μ epochs over the mini-batches of ``batch``; metrics are means over updates (the gap: first update).

    ``mesh``: the mesh the batch is sharded on; mini- and micro-batches then stay sharded over ('data', 'fsdp')
    (see :func:`_split`). Which rows form a mini- or micro-batch does not depend on it.
    """
    minibatches = _split(batch, step_cfg.num_minibatches, mesh)
    update = functools.partial(_update, cfg=cfg, step_cfg=step_cfg, optimizer=optimizer, mesh=mesh)

    def epoch(state, _):
        return jax.lax.scan(update, state, minibatches)

    state, metrics = jax.lax.scan(epoch, state, None, length=step_cfg.ppo_epochs)
    out = {k: jnp.mean(v) for k, v in metrics.items()}
    out["logprob_gap"] = metrics["logprob_gap"][0, 0]  # before any update: sampler vs trainer
    out["nonfinite_updates"] = jnp.sum(metrics["nonfinite_updates"])
    out["rolled_back_updates"] = jnp.sum(metrics["rolled_back_updates"])
    out["ratio_max"], out["ratio_min"] = jnp.max(metrics["ratio_max"]), jnp.min(metrics["ratio_min"])
    return state, out


def state_shardings(state: TrainState, mesh: jax.sharding.Mesh, cfg: ModelConfig) -> TrainState:
    """Shardings of a (possibly abstract) TrainState: an optimizer leaf whose path ends with a parameter's
    path and has its shape (Adam's moments) takes that parameter's sharding; the rest is replicated."""
    abstract = abstract_params(cfg)
    params = shd.param_shardings(abstract, mesh)
    by_path = {shd.path_str(p): (s, a.shape) for (p, s), a in
               zip(jax.tree_util.tree_flatten_with_path(params)[0], jax.tree.leaves(abstract))}
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

    def opt_leaf(path, x):
        name = shd.path_str(path)
        for suffix, (sharding, shape) in by_path.items():
            if name.endswith(suffix) and tuple(getattr(x, "shape", ())) == tuple(shape):
                return sharding
        return replicated

    return TrainState(params=params, opt_state=jax.tree_util.tree_map_with_path(opt_leaf, state.opt_state),
                      step=replicated, rng=replicated)


def batch_shardings(batch: TrainBatch, mesh: jax.sharding.Mesh) -> TrainBatch:
    return shd.tree_batch_shardings(batch, mesh)


def jit_train_step(cfg: ModelConfig, step_cfg: StepConfig, optimizer: optax.GradientTransformation,
                   mesh: jax.sharding.Mesh | None = None, state: TrainState | None = None,
                   batch: TrainBatch | None = None):
    """The jitted train step; with ``mesh`` (and example ``state``/``batch`` for their structure) it has
    explicit in/out shardings and traces under it (the attention kernels shard over it). The state argument is
    donated."""
    fn = traced_under(functools.partial(train_step, cfg=cfg, step_cfg=step_cfg, optimizer=optimizer, mesh=mesh),
                      mesh)
    if mesh is None:
        return jax.jit(fn, donate_argnums=(0,))
    s_sh = state_shardings(state, mesh, cfg)
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jax.jit(fn, donate_argnums=(0,), in_shardings=(s_sh, batch_shardings(batch, mesh)),
                   out_shardings=(s_sh, replicated))
