"""Executable checks of the paper's theory on the toys; each returns `Row`s (measured vs predicted)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from urlvr_jax.theory import coupled as C
from urlvr_jax.theory import rewards as R
from urlvr_jax.theory.dynamics import GRPOConfig, exact_reward_fn, kl_iteration, make_train, pg_flow
from urlvr_jax.theory.toys import answer_marginal, class_probs, sequence_prior, tabular_prior


@dataclass
class Row:
    """One line of the report."""

    claim: str
    prediction: str
    measured: str
    holds: bool


def _class_mv(form_to_answer: jax.Array):
    """Majority vote on answer classes (surface forms of one answer vote together)."""
    onehot = jax.nn.one_hot(form_to_answer, int(form_to_answer.max()) + 1)

    def fn(lz, la, c):
        p_cls = jnp.exp(lz[:, None] + la).sum(0) @ onehot
        return jnp.broadcast_to(onehot[:, jnp.argmax(p_cls)], la.shape)
    return fn


def check_theorem1(beta: float = 0.5, steps: int = 40) -> list[Row]:
    """Odds x e^{1/beta} per step; 1 - p_maj -> 0 at rate e^{-1/beta}; limit = pi_ref on the class."""
    with jax.enable_x64(True):
        return _theorem1_rows(beta, steps)


def _theorem1_rows(beta: float, steps: int) -> list[Row]:
    prior, f2a = tabular_prior(jax.random.PRNGKey(0), 50, 4, 0.6, 0.5, num_forms=3)
    prior = jax.tree.map(lambda x: x.astype(jnp.float64) if x.dtype == jnp.float32 else x, prior)
    lzs, las = kl_iteration(prior, _class_mv(f2a), beta, steps)
    p = jax.vmap(answer_marginal)(lzs, las)  # [T, P, K*F]
    p_cls = class_probs(p, f2a)
    maj = jnp.argmax(p_cls[0], -1)
    p_maj = jnp.take_along_axis(p_cls, maj[None, :, None], -1)[..., 0]
    odds = jnp.log(p_maj) - jnp.log1p(-p_maj)
    err_odds = float(jnp.abs(odds[1] - odds[0] - 1.0 / beta).max())
    rate = float(jnp.median((1 - p_maj[12]) / (1 - p_maj[11])))
    in_cls = f2a[None, :] == maj[:, None]
    ref = jnp.where(in_cls, p[0], 0.0)
    limit_err = float(jnp.abs(p[-1] - ref / ref.sum(-1, keepdims=True)).max())
    flips = int((jnp.argmax(p_cls[-1], -1) != maj).sum())
    return [
        Row("Thm 1: one KL step multiplies majority odds by e^{1/beta}", f"log-odds +{1/beta:.3f} (err<1e-6)",
            f"max err {err_odds:.1e}", err_odds < 1e-6),
        Row("Thm 1: p_maj -> 1 geometrically", f"(1-p_maj) ratio e^(-1/beta)={np.exp(-1/beta):.4f}",
            f"{rate:.4f}", abs(rate - np.exp(-1 / beta)) < 1e-3),
        Row("Thm 1: limit = pi_ref renormalised on initial majority class", "max |diff| < 1e-4, 0 flips",
            f"{limit_err:.1e}, {flips} flips", limit_err < 1e-4 and flips == 0),
    ]


def check_unified(num_prompts: int = 64) -> Row:
    """psi(sigma * mean H(q, pi)) equals every direct reward definition."""
    prior = sequence_prior(jax.random.PRNGKey(1), num_prompts, 3, 5)
    lz = jax.nn.log_softmax(prior.s_z, -1)
    la = jax.nn.log_softmax(prior.s_a, -1)
    p_vote = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(2), (num_prompts, 5)), -1)
    err = 0.0
    for name in R.REWARDS:
        d = jax.vmap(lambda *x: R.reward_table(name, *x))(lz, la, prior.c, p_vote)
        u = jax.vmap(lambda *x: R.unified_reward_table(name, *x))(lz, la, prior.c, p_vote)
        err = max(err, float(jnp.abs(d - u).max()))
    return Row("Unified psi(sigma H(q,pi)) = direct rewards (7 rewards)", "max |diff| < 1e-5",
               f"{err:.1e}", err < 1e-5)


def sharpening_exact(name: str, num_prompts: int = 200, steps: int = 30) -> tuple[float, float]:
    """Share of prompts whose answer argmax is kept and answer entropy fell: (KL iteration, PG flow)."""
    prior = sequence_prior(jax.random.PRNGKey(3), num_prompts, 3, 5)
    out = []
    for lzs, las in (kl_iteration(prior, exact_reward_fn(name), 1.0, steps),
                     pg_flow(prior, exact_reward_fn(name), 1.0, steps)):
        p0, p1 = answer_marginal(lzs[0], las[0]), answer_marginal(lzs[-1], las[-1])
        kept = jnp.argmax(p0, -1) == jnp.argmax(p1, -1)
        ent = lambda p: -(p * jnp.log(jnp.clip(p, 1e-30))).sum(-1)
        out.append(float((kept & (ent(p1) < ent(p0))).mean()))
    return out[0], out[1]


def check_sharpening() -> list[Row]:
    """Every intrinsic reward keeps the argmax and lowers entropy under exact dynamics."""
    rows = []
    for name in R.INTRINSIC:
        kl, pg = sharpening_exact(name)
        rows.append(Row(f"Sharpening (exact): {name}", "argmax kept & entropy down on 100%",
                        f"KL {kl:.0%}, PG {pg:.0%}", min(kl, pg) >= 0.99))
    return rows


def sampled_flip_rate(num_rollouts: int, margin: float, steps: int = 60, num_prompts: int = 256) -> float:
    """Tabular MV-GRPO with N rollouts: share of prompts whose answer mode changed."""
    prior, _ = tabular_prior(jax.random.PRNGKey(4), num_prompts, 4, 1.0, margin)
    cfg = GRPOConfig(num_rollouts=num_rollouts, batch_size=num_prompts, lr=1.0, rho=1.0 * num_prompts ** 0.5,
                     learn_shared=False, steps=steps)
    _, m = jax.jit(make_train(cfg))(jax.random.PRNGKey(5), prior)
    return 1.0 - float(m.mode_kept[-1])


def check_sampled_sharpening() -> Row:
    """Finite-N GRPO breaks argmax preservation more often at small N and small margin."""
    grid = {(n, mg): sampled_flip_rate(n, mg) for n in (4, 16) for mg in (0.1, 1.0)}
    txt = ", ".join(f"N={n},m={mg}: {v:.0%}" for (n, mg), v in grid.items())
    holds = grid[(4, 0.1)] > grid[(16, 0.1)] >= grid[(16, 1.0)] and grid[(4, 0.1)] > grid[(4, 1.0)]
    return Row("Sharpening (sampled MV-GRPO): mode flips", "more flips at small N / margin", txt, holds)


def check_alignment(steps: int = 60) -> list[Row]:
    """Tabular MV: accuracy -> aligned share (up or down from pass@1); GT: accuracy -> 1."""
    rows = []
    for frac, K, margin in ((0.7, 6, 1.0), (0.3, 3, 0.3)):
        prior, _ = tabular_prior(jax.random.PRNGKey(6), 400, K, frac, margin)
        accs = {}
        for name in ("majority_vote", "ground_truth"):
            lzs, las = kl_iteration(prior, exact_reward_fn(name), 1.0, steps)
            p = jax.vmap(answer_marginal)(lzs, las)
            accs[name] = np.asarray(jnp.take_along_axis(p, prior.c[None, :, None], -1)[..., 0].mean(-1))
        a0, a_mv, a_gt = accs["majority_vote"][0], accs["majority_vote"][-1], accs["ground_truth"][-1]
        direction = "rises" if frac > a0 else "falls"
        ok = abs(a_mv - frac) < 0.01 and (a_mv > a0) == (frac > a0) and a_gt > 0.99
        rows.append(Row(f"Alignment: MV acc -> aligned share ({direction}); GT -> 1",
                        f"{frac:.2f} from pass@1 {a0:.2f}; GT 1.00", f"MV {a_mv:.3f}, GT {a_gt:.3f}", ok))
    return rows


def check_coupling(mus=(0.0, 1.0, 1.5, 2.0, 2.5), seeds: int = 2, steps: int = 400) -> list[Row]:
    """Coupled toy: rise-then-fall, collapse step vs alignment and vs GT gain, small-data effect."""
    cfg = C.COUPLED_DEFAULT._replace(steps=steps)
    runs = [C.run_coupled(mu, seeds=seeds, config=cfg) for mu in mus]
    score = [min(C.rise_then_fall(r["accuracy"])[1], C.rise_then_fall(r["accuracy"])[3]) for r in runs]
    mid = runs[int(np.argmax(score))]  # the prior that shows rise-then-fall most clearly
    ok, rise, peak, fall = C.rise_then_fall(mid["accuracy"])
    mv_end = float(mid["mv_reward"][-10:].mean())
    cs = [float(r["collapse_step"].mean()) for r in runs]
    gains = [float(r["gt_gain"].mean()) for r in runs]
    al = [r["aligned"] for r in runs]
    rho_al, rho_gain = C.spearman(al, cs), C.spearman(cs, gains)
    mids = mid["mu"]
    low = runs[1]  # a weak prior that collapses with the large pool
    cs_small = float(C.run_coupled(low["mu"], seeds=seeds, pool=32, config=cfg)["collapse_step"].mean())
    cs_large = float(low["collapse_step"].mean())
    return [
        Row("Coupled: MV accuracy rises then falls, MV reward keeps rising",
            "rise>=0.05, fall>=0.1, MV reward->1",
            f"mu={mids}: +{rise:.2f} by step {peak}, -{fall:.2f} after; MV reward {mv_end:.2f}",
            ok and mv_end > 0.95),
        Row("Coupled: collapse step grows with prior alignment", "Spearman rho >= 0.8",
            f"rho={rho_al:.2f}; aligned {[round(a, 2) for a in al]} -> MCS {[round(c) for c in cs]} (cap {steps})",
            rho_al >= 0.8),
        Row("Coupled: collapse step predicts GT gain across priors", "Spearman rho >= 0.8",
            f"rho={rho_gain:.2f}; GT gain {[round(g, 3) for g in gains]}", rho_gain >= 0.8),
        Row("Coupled: fewer prompts delay or prevent collapse", f"MCS(pool 32) > MCS(pool {C.POOL})",
            f"mu={low['mu']}: {cs_small:.0f} vs {cs_large:.0f} (cap {steps})", cs_small > cs_large),
    ]


def all_checks(quick: bool = False) -> list[Row]:
    """Every check, in report order."""
    rows = check_theorem1() + [check_unified()] + check_sharpening()
    rows += [check_sampled_sharpening()] + check_alignment()
    rows += check_coupling(seeds=1 if quick else 2, steps=300 if quick else 400)
    return rows
