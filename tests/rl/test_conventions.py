"""Peers' conventions (``algo.conventions=verl|trl``): each one checked against TRL 1.16's formula written out in
numpy, where it differs from ours by default; and, when ``trl`` is importable (requirements-bench.txt), against
TRL's own ``GRPOTrainer._compute_loss`` on the same log-probs, in loss and gradient."""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from urlvr_jax.rl import setup
from urlvr_jax.rl.advantages import grpo_advantages
from urlvr_jax.rl.conventions import CONVENTIONS
from urlvr_jax.rl.losses import GRPOLossConfig, accumulate_terms, finalize, grpo_loss_terms
from urlvr_jax.utils.config import apply_overrides, load_config

TRL = dict(CONVENTIONS["trl"])
TRL_LOSS = {k: v for k, v in TRL.items() if k != "std_eps"}
MAX_LEN = 9  # TRL's max_completion_length (our norm_length); the batches are padded to T = 6
LOSS_TYPES = {"grpo": "seq-mean-token-mean", "bnpo": "token-mean", "dr_grpo": "seq-mean-token-sum-norm"}


def _batch(seed: int, b: int = 6, t: int = 6):
    """Log-probs near each other, reference and old log-probs, advantages, right-padded masks; row 1 is empty."""
    rng = np.random.default_rng(seed)
    logp = rng.normal(-1.5, 0.5, (b, t)).astype(np.float32)
    old = (logp + rng.normal(0.0, 0.3, (b, t))).astype(np.float32)
    ref = (logp + rng.normal(0.0, 0.3, (b, t))).astype(np.float32)
    adv = rng.normal(size=b).astype(np.float32)
    lengths = rng.integers(1, t + 1, b)
    lengths[1] = 0
    mask = (np.arange(t)[None] < lengths[:, None]).astype(np.float32)
    return logp, old, ref, adv, mask


# ------------------------------------------------------------------ TRL 1.16 written out in numpy


def trl_per_token(logp, old, ref, adv, beta, eps=0.2, bias_correction_kl=True):
    """TRL ``_compute_loss`` per-token loss (token-level importance sampling), and its derivative in logp."""
    coef_1 = np.exp(logp - old)
    clipped = np.clip(coef_1, 1 - eps, 1 + eps)
    a = adv[:, None]
    loss = -np.minimum(coef_1 * a, clipped * a)
    grad = np.where(coef_1 * a <= clipped * a, -coef_1 * a, 0.0)  # only the unclipped branch depends on logp
    kl = np.exp(ref - logp) - (ref - logp) - 1
    dkl = 1 - np.exp(ref - logp)
    if bias_correction_kl:  # per_token_kl * coef_1, coef_1 not detached
        kl, dkl = kl * coef_1, dkl * coef_1 + kl * coef_1
    return loss + beta * kl, grad + beta * dkl


def trl_reduce(per_token, mask, loss_type, max_len):
    """TRL's loss of one micro-batch as a linear map of the per-token loss: (weights [B, T]) with loss = sum(w L)."""
    b = mask.shape[0]
    if loss_type == "grpo":
        return mask / np.maximum(mask.sum(-1, keepdims=True), 1.0) / b
    if loss_type == "bnpo":
        return mask / max(mask.sum(), 1.0)
    if loss_type == "dr_grpo":
        return mask / (b * max_len)
    raise ValueError(loss_type)


def trl_loss_and_grad(logp, old, ref, adv, mask, loss_type, beta, parts):
    """TRL over ``parts`` micro-batches of one accumulation window: each loss divided by the number of parts."""
    per_token, d_per_token = trl_per_token(logp, old, ref, adv, beta)
    loss, grad = 0.0, np.zeros_like(logp)
    for rows in np.split(np.arange(len(logp)), parts):
        w = trl_reduce(per_token[rows], mask[rows], loss_type, MAX_LEN) / parts
        loss += float((w * per_token[rows]).sum())
        grad[rows] = w * d_per_token[rows]
    return loss, grad


# ------------------------------------------------------------------ ours, as the train step runs it


def ours_loss_and_grad(logp, old, ref, adv, mask, cfg: GRPOLossConfig, parts: int):
    """Terms accumulated over ``parts`` micro-batches, gradient of the summed numerators / the summed denominator."""

    def numerator(lp, o, r, a, m):
        terms = grpo_loss_terms(lp, o, a, m, cfg, ref_logprobs=r)
        return terms["loss"][0], terms

    step = jax.jit(jax.value_and_grad(numerator, has_aux=True))
    acc, grads = None, []
    for rows in np.split(np.arange(len(logp)), parts):
        (_, terms), grad = step(*(jnp.asarray(x[rows]) for x in (logp, old, ref, adv, mask)))
        acc, grads = accumulate_terms(acc, terms), grads + [grad]
    return float(finalize(acc)["loss"]), np.concatenate(grads) / float(acc["loss"][1])


def _loss_config(loss_type: str, conventions: dict, beta: float = 0.05) -> GRPOLossConfig:
    return GRPOLossConfig(loss_agg_mode=LOSS_TYPES[loss_type], norm_length=MAX_LEN, kl_coef=beta, **conventions)


# ------------------------------------------------------------------ each convention against TRL's formula


def test_std_eps_is_trls_1e_4_with_the_preset():
    rewards = np.array([0.0, 0.0, 0.0, 1e-3, 1.0, 0.0, 1.0, 1.0], np.float32)  # a near-zero-std group first
    grouped = rewards.reshape(2, 4)
    std = np.repeat(grouped.std(axis=1, ddof=1), 4)
    trl = (rewards - np.repeat(grouped.mean(axis=1), 4)) / (std + 1e-4)
    gid = jnp.arange(8) // 4
    ours_trl = grpo_advantages(rewards, gid, 2, std_eps=TRL["std_eps"])
    ours_verl = grpo_advantages(rewards, gid, 2, std_eps=CONVENTIONS["verl"]["std_eps"])
    np.testing.assert_allclose(ours_trl, trl, rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(ours_verl) - trl).max() > 0.1  # 1e-6 scales the near-tie group ~1.2x more


def test_kl_times_importance_ratio_in_value_and_gradient():
    logp, old, ref, adv, mask = _batch(0)
    for kl_ratio in (True, False):
        cfg = _loss_config("bnpo", dict(kl_ratio=kl_ratio))
        loss, grad = ours_loss_and_grad(logp, old, ref, adv, mask, cfg, 1)
        per_token, d = trl_per_token(logp, old, ref, adv, 0.05, bias_correction_kl=kl_ratio)
        w = mask / mask.sum()
        np.testing.assert_allclose(loss, (w * per_token).sum(), rtol=1e-5)
        np.testing.assert_allclose(grad, w * d, rtol=1e-4, atol=1e-7)
    # on-policy (old = stop_gradient(logp)) the ratio is 1 in value, but its gradient adds KL * d log pi
    on = lambda cfg: jax.grad(lambda lp: finalize(grpo_loss_terms(lp, None, adv, mask, cfg, ref_logprobs=ref))["loss"])
    g_ratio, g_plain = (np.asarray(on(_loss_config("bnpo", dict(kl_ratio=r)))(jnp.asarray(logp))) for r in (1, 0))
    kl = np.exp(ref - logp) - (ref - logp) - 1
    np.testing.assert_allclose(g_ratio - g_plain, 0.05 * kl * mask / mask.sum(), rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo"])
def test_rows_with_no_valid_token_count_like_trl(loss_type):
    logp, old, ref, adv, mask = _batch(1)
    assert mask[1].sum() == 0
    trl_loss, trl_grad = trl_loss_and_grad(logp, old, ref, adv, mask, loss_type, 0.05, 1)
    ours, grad = ours_loss_and_grad(logp, old, ref, adv, mask, _loss_config(loss_type, TRL_LOSS), 1)
    np.testing.assert_allclose(ours, trl_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, trl_grad, rtol=1e-4, atol=1e-7)
    default, _ = ours_loss_and_grad(logp, old, ref, adv, mask, _loss_config(loss_type, dict(kl_ratio=True)), 1)
    np.testing.assert_allclose(default, trl_loss * 6 / 5, rtol=1e-5)  # 5 non-empty rows of 6


def test_bnpo_is_normalised_per_micro_batch_like_trl():
    logp, old, ref, adv, mask = _batch(2)
    mask[3:, 3:] = 0  # the two micro-batches hold different numbers of tokens
    trl_loss, trl_grad = trl_loss_and_grad(logp, old, ref, adv, mask, "bnpo", 0.05, 2)
    ours, grad = ours_loss_and_grad(logp, old, ref, adv, mask, _loss_config("bnpo", TRL_LOSS), 2)
    np.testing.assert_allclose(ours, trl_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, trl_grad, rtol=1e-4, atol=1e-7)
    pooled, _ = ours_loss_and_grad(logp, old, ref, adv, mask, _loss_config("bnpo", dict(kl_ratio=True)), 2)
    assert abs(pooled - trl_loss) > 1e-3  # one denominator over the mini-batch (TRL's dapo) is another objective


# ------------------------------------------------------------------ the preset on the config path


def test_preset_sets_its_fields_and_explicit_overrides_win():
    trl = apply_overrides(load_config("tiny_gt"), ["algo.conventions=trl"])
    assert {k: trl.algo[k] for k in TRL} == TRL
    mixed = apply_overrides(load_config("tiny_gt"), ["algo.conventions=trl", "algo.std_eps=1e-3"])
    assert mixed.algo.std_eps == 1e-3 and mixed.algo.kl_ratio
    back = apply_overrides(trl, ["algo.conventions=verl"])
    assert {k: back.algo[k] for k in TRL} == CONVENTIONS["verl"]
    loss = setup.step_and_optimizer(trl)[0].loss
    assert (loss.kl_ratio, loss.count_empty_rows, loss.normalize_per_micro_batch) == (True, True, True)
    assert loss.norm_length == trl.rollout.max_new_tokens  # dr_grpo divides by max_completion_length
    with pytest.raises(ValueError, match=r"algo.conventions='peft' is not one of '', 'verl', 'trl'"):
        apply_overrides(load_config("tiny_gt"), ["algo.conventions=peft"])


# ------------------------------------------------------------------ TRL itself, where it is installed


@pytest.mark.skipif(importlib.util.find_spec("trl") is None, reason="trl is not installed (requirements-bench.txt)")
@pytest.mark.parametrize("loss_type,parts", [("grpo", 1), ("bnpo", 2), ("dr_grpo", 1)])
def test_matches_trl_grpo_trainer(loss_type, parts):
    import torch
    from trl import GRPOTrainer
    from trl.trainer.utils import nanstd

    logp, old, ref, adv, mask = _batch(3)
    rewards = np.random.default_rng(3).integers(0, 2, 6).astype(np.float32)
    r = torch.tensor(rewards).view(-1, 3)  # TRL's advantage lines, sum_then_normalize with scale_rewards="group"
    trl_adv = (r - r.nanmean(1, keepdim=True)) / (nanstd(r, dim=1, keepdim=True) + 1e-4)
    np.testing.assert_allclose(grpo_advantages(rewards, jnp.arange(6) // 3, 2, std_eps=TRL["std_eps"]),
                               trl_adv.view(-1).numpy(), rtol=1e-5, atol=1e-6)

    trainer = object.__new__(GRPOTrainer)
    identity = lambda x, **_: x  # noqa: E731
    trainer.__dict__.update(
        loss_type=loss_type, beta=0.05, epsilon_low=0.2, epsilon_high=0.2, importance_sampling_level="token",
        max_completion_length=MAX_LEN, current_gradient_accumulation_steps=parts, top_entropy_quantile=1.0,
        off_policy_mask_threshold=None, use_vllm=False, vllm_importance_sampling_correction=False,
        aux_loss_enabled=False, _entropy_bonus_enabled=False, model=SimpleNamespace(training=True),
        args=SimpleNamespace(use_bias_correction_kl=True, delta=None), _metrics={"train": defaultdict(list)},
        accelerator=SimpleNamespace(gather=identity, reduce=identity, gather_for_metrics=identity))
    loss, grads = 0.0, []
    for rows in np.split(np.arange(6), parts):
        leaf = torch.tensor(logp[rows], requires_grad=True)
        trainer._get_per_token_logps_and_entropies = lambda *a, leaf=leaf, **k: (leaf, torch.zeros_like(leaf), None)
        t = lambda x: torch.tensor(x[rows])  # noqa: E731
        micro = trainer._compute_loss(None, dict(
            prompt_ids=torch.zeros((len(rows), 1), dtype=torch.long), prompt_mask=torch.ones((len(rows), 1)),
            completion_ids=torch.zeros(mask[rows].shape, dtype=torch.long), completion_mask=t(mask),
            advantages=t(adv), old_per_token_logps=t(old), ref_per_token_logps=t(ref)))
        micro.backward()
        loss, grads = loss + float(micro.detach()), grads + [leaf.grad.numpy()]
    ours, grad = ours_loss_and_grad(logp, old, ref, adv, mask, _loss_config(loss_type, TRL_LOSS), parts)
    np.testing.assert_allclose(ours, loss, rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(grad, np.concatenate(grads), rtol=2e-5, atol=2e-6)
