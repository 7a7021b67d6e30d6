"""Policy loss, aggregation and combined GRPO terms: hand values, TRL / verl transcriptions, micro-batching."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy_reference import trl_aggregate, trl_per_token_loss, verl_agg_loss, verl_policy_loss_vanilla

from urlvr_jax.rl.losses import (
    AGGREGATIONS,
    GRPOLossConfig,
    accumulate_terms,
    aggregate,
    finalize,
    grpo_loss_terms,
    policy_loss,
)

MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


def _batch(seed: int, b: int = 7, t: int = 6, empty_row: bool = False):
    """Random log-probs near each other, advantages, right-padded masks of varying length."""
    rng = np.random.default_rng(seed)
    logp = rng.normal(-1.5, 0.5, size=(b, t)).astype(np.float32)
    old = (logp + rng.normal(0.0, 0.3, size=(b, t))).astype(np.float32)
    ref = (logp + rng.normal(0.0, 0.3, size=(b, t))).astype(np.float32)
    ent = rng.uniform(0.0, 2.0, size=(b, t)).astype(np.float32)
    adv = rng.normal(size=b).astype(np.float32)
    lengths = rng.integers(1, t + 1, size=b)
    if empty_row:
        lengths[2] = 0
    mask = (np.arange(t)[None, :] < lengths[:, None]).astype(np.float32)
    return logp, old, ref, ent, adv, mask


def _value(pair):
    return float(pair[0] / pair[1])


@functools.partial(jax.jit, static_argnums=(4,))
def _loss_value(logp, old, adv, mask, cfg, ref=None, ent=None):
    s, d = grpo_loss_terms(logp, old, adv, mask, cfg, ref_logprobs=ref, entropy=ent)["loss"]
    return s / d


def test_aggregation_hand_computed():
    # L = [[1, 2, 3], [4, 5, 6]], mask = [[1, 1, 0], [1, 0, 0]]: masked tokens 1, 2 | 4.
    # token-mean: (1 + 2 + 4, 3 tokens); seq-mean-token-mean: (1.5 + 4, 2 seqs);
    # seq-mean-token-sum: (3 + 4, 2); seq-mean-token-sum-norm: (7 / T=3, 2) or (7 / 10, 2) with norm_length 10.
    loss = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = jnp.array([[True, True, False], [True, False, False]])
    expected = {
        "token-mean": (7.0, 3.0),
        "seq-mean-token-mean": (5.5, 2.0),
        "seq-mean-token-sum": (7.0, 2.0),
        "seq-mean-token-sum-norm": (7.0 / 3.0, 2.0),
    }
    for mode, pair in expected.items():
        np.testing.assert_allclose(aggregate(loss, mask, mode), pair, rtol=1e-6, err_msg=mode)
    np.testing.assert_allclose(aggregate(loss, mask, "seq-mean-token-sum-norm", norm_length=10), (0.7, 2.0), rtol=1e-6)
    assert set(AGGREGATIONS.names()) == set(MODES)


def test_empty_rows_do_not_count_and_padding_cannot_leak():
    # Row 1 is all padding (and holds a NaN): it adds nothing and is not counted as a sequence.
    loss = jnp.array([[2.0, 4.0], [jnp.nan, 1.0]])
    mask = jnp.array([[1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(aggregate(loss, mask, "seq-mean-token-mean"), (3.0, 1.0))
    np.testing.assert_allclose(aggregate(loss, mask, "token-mean"), (6.0, 2.0))


def test_ppo_clip_hand_computed():
    # eps_low = 0.2, eps_high = 0.28, dual clip c = 3:
    #  A =  1, w = 1.5: max(-1.5, -1.28) = -1.28, clipped.       A =  1, w = 0.5: max(-0.5, -0.8) = -0.5.
    #  A = -1, w = 1.5: max( 1.5,  1.28) =  1.5.
    #  A = -1, w = 4:   max(4, 1.28) = 4 -> dual clip min(4, -A c = 3) = 3.
    #  A = -2, w = 0.5: max(-(-2)(0.5)=1, 2 * 0.8 = 1.6) = 1.6, clipped.
    ratio = jnp.array([[1.5, 0.5, 1.5, 4.0, 0.5]])
    adv = jnp.array([[1.0, 1.0, -1.0, -1.0, -2.0]])
    cfg = GRPOLossConfig(eps_low=0.2, eps_high=0.28, dual_clip_c=3.0)
    loss, metrics = policy_loss(jnp.log(ratio), jnp.zeros_like(ratio), adv, cfg)
    np.testing.assert_allclose(loss, [[-1.28, -0.5, 1.5, 3.0, 1.6]], rtol=1e-6)
    np.testing.assert_array_equal(metrics["clip_frac"], [[1, 0, 0, 0, 1]])
    np.testing.assert_array_equal(metrics["dual_clip_frac"], [[0, 0, 0, 1, 0]])
    # Without dual clip the A = -1, w = 4 token keeps loss 4.
    loss_nodual, _ = policy_loss(jnp.log(ratio), jnp.zeros_like(ratio), adv, GRPOLossConfig(eps_high=0.28))
    np.testing.assert_allclose(loss_nodual[0, 3], 4.0, rtol=1e-6)


def test_log_ratio_clamp():
    # log w = 50 is clamped to 20 before exp: loss = -A e^20 for A = -1 (unclipped branch wins).
    loss, _ = policy_loss(jnp.array([[50.0]]), jnp.zeros((1, 1)), jnp.array([-1.0]), GRPOLossConfig())
    np.testing.assert_allclose(loss, [[np.exp(20.0)]], rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_policy_loss_matches_verl(mode):
    logp, old, _, _, adv, mask = _batch(0)
    cfg = GRPOLossConfig(eps_low=0.2, eps_high=0.28, dual_clip_c=3.0, loss_agg_mode=mode)
    terms = grpo_loss_terms(logp, old, adv, mask, cfg)
    adv_bt = np.broadcast_to(adv[:, None], logp.shape)
    pg, clipped, dual = verl_policy_loss_vanilla(old, logp, adv_bt, 0.2, 0.28, 3.0)
    expected = verl_agg_loss(pg, mask, mode)
    if mode == "seq-mean-token-sum-norm":  # verl divides by L only; ours (TRL dr_grpo) by L and the sequences
        expected /= logp.shape[0]
    np.testing.assert_allclose(_value(terms["policy"]), expected, rtol=1e-5)
    np.testing.assert_allclose(_value(terms["clip_frac"]), verl_agg_loss(clipped, mask, "token-mean"), rtol=1e-6)
    np.testing.assert_allclose(_value(terms["dual_clip_frac"]), verl_agg_loss(dual, mask, "token-mean"), atol=1e-7)
    assert _value(terms["clip_frac"]) > 0  # the inputs exercise clipping


@pytest.mark.parametrize("loss_type,mode", [("grpo", "seq-mean-token-mean"), ("bnpo", "token-mean"),
                                            ("dr_grpo", "seq-mean-token-sum-norm")])
def test_total_loss_matches_trl_with_k3(loss_type, mode):
    logp, old, ref, _, adv, mask = _batch(1)
    beta, max_len = 0.04, 10  # TRL's max_completion_length is our constant norm_length
    cfg = GRPOLossConfig(eps_low=0.2, eps_high=0.3, loss_agg_mode=mode, norm_length=max_len, kl_coef=beta)
    out = finalize(grpo_loss_terms(logp, old, adv, mask, cfg, ref_logprobs=ref))
    per_token = trl_per_token_loss(logp, old, adv, 0.2, 0.3, beta, ref)
    np.testing.assert_allclose(out["loss"], trl_aggregate(per_token, mask, loss_type, max_len), rtol=1e-5)
    np.testing.assert_allclose(out["loss"], out["policy"] + beta * out["kl"], rtol=1e-6)


def test_combined_loss_with_entropy_and_metrics():
    logp, old, ref, ent, adv, mask = _batch(2)
    cfg = GRPOLossConfig(kl_coef=0.1, kl_estimator="k2", entropy_coef=0.01)
    out = finalize(grpo_loss_terms(logp, old, adv, mask, cfg, ref_logprobs=ref, entropy=ent))
    k2 = 0.5 * (logp - ref) ** 2
    tm = lambda x: float((x * mask).sum() / mask.sum())  # noqa: E731
    np.testing.assert_allclose(out["kl"], tm(k2), rtol=1e-5)
    np.testing.assert_allclose(out["entropy"], tm(ent), rtol=1e-5)
    np.testing.assert_allclose(out["loss"], out["policy"] + 0.1 * out["kl"] - 0.01 * out["entropy"], rtol=1e-6)
    ratio = np.exp(logp - old)
    np.testing.assert_allclose(out["ratio_mean"], tm(ratio), rtol=1e-5)
    np.testing.assert_allclose(out["ppo_kl"], tm(old - logp), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["ratio_max"], ratio[mask > 0].max(), rtol=1e-6)
    np.testing.assert_allclose(out["ratio_min"], ratio[mask > 0].min(), rtol=1e-6)
    assert "kl" not in grpo_loss_terms(logp, old, adv, mask, GRPOLossConfig())
    assert "entropy" not in grpo_loss_terms(logp, old, adv, mask, GRPOLossConfig())


def test_on_policy_gradient_is_advantage_weighted_score():
    # old = sg(logp): w = 1 in value, d loss / d logp_it = -A_i m_it / sum(m) for token-mean.
    logp, _, _, _, adv, mask = _batch(3)
    grad = jax.jit(jax.grad(_loss_value), static_argnums=4)(jnp.asarray(logp), None, adv, mask, GRPOLossConfig())
    np.testing.assert_allclose(grad, -adv[:, None] * mask / mask.sum(), rtol=1e-5, atol=1e-7)


@functools.partial(jax.jit, static_argnums=(4,))
def _sum_and_grad(logp, old, adv, mask, cfg, ref, ent):
    """(terms, d terms['loss'][0] / d logp) of one micro-batch; the denominator is parameter-free."""

    def numerator(lp):
        terms = grpo_loss_terms(lp, old, adv, mask, cfg, ref_logprobs=ref, entropy=ent)
        return terms["loss"][0], terms

    (_, terms), grad = jax.value_and_grad(numerator, has_aux=True)(logp)
    return terms, grad


@pytest.mark.parametrize("mode", MODES)
def test_micro_batch_accumulation_equals_full_batch(mode):
    logp, old, ref, ent, adv, mask = _batch(4, b=7, empty_row=True)
    cfg = GRPOLossConfig(
        eps_high=0.28, dual_clip_c=3.0, loss_agg_mode=mode, norm_length=8, kl_coef=0.05, entropy_coef=0.01
    )
    args = (old, adv, mask, cfg, ref, ent)
    full_loss, full_grad = jax.jit(jax.value_and_grad(_loss_value), static_argnums=4)(jnp.asarray(logp), *args)

    acc, grads = None, []
    for lo, hi in [(0, 3), (3, 4), (4, 7)]:  # micro-batches of sizes 3, 1, 3
        sl = slice(lo, hi)
        terms, grad = _sum_and_grad(logp[sl], old[sl], adv[sl], mask[sl], cfg, ref[sl], ent[sl])
        acc = accumulate_terms(acc, terms)
        grads.append(grad)
    total_denom = acc["loss"][1]
    micro = finalize(acc)
    np.testing.assert_allclose(micro["loss"], full_loss, rtol=1e-5)
    np.testing.assert_allclose(np.concatenate(grads) / total_denom, full_grad, rtol=1e-5, atol=1e-8)
    full_terms = finalize(_sum_and_grad(logp, *args)[0])  # same function, one call on the whole batch
    for name, value in full_terms.items():
        np.testing.assert_allclose(micro[name], value, rtol=1e-5, atol=1e-7, err_msg=name)


def test_bad_config_names_are_reported():
    with pytest.raises(ValueError, match=r"unknown loss aggregation mode 'mean'.*seq-mean-token-mean"):
        GRPOLossConfig(loss_agg_mode="mean")
    with pytest.raises(ValueError, match=r"unknown KL estimator 'k9'.*k1, k2, k3"):
        GRPOLossConfig(kl_estimator="k9")
    with pytest.raises(ValueError, match=r"unknown policy loss 'gspo'.*ppo_clip, vanilla"):
        GRPOLossConfig(policy_loss="gspo")
    with pytest.raises(ValueError, match="dual_clip_c"):
        GRPOLossConfig(dual_clip_c=0.5)
    with pytest.raises(ValueError, match="unknown loss aggregation mode"):
        aggregate(jnp.zeros((1, 1)), jnp.ones((1, 1)), "sum")
    with pytest.raises(ValueError, match="ref_logprobs"):
        grpo_loss_terms(jnp.zeros((1, 2)), None, jnp.zeros(1), jnp.ones((1, 2)), GRPOLossConfig(kl_coef=0.1))
