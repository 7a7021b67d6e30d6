"""Executable checks of the paper's theory on the toys; each returns `Row`s (measured vs predicted)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from urlvr_jax.theory import coupled as C
from urlvr_jax.theory import rewards as R
from urlvr_jax.theory.dynamics import GRPOConfig, batched_train, exact_reward_fn, kl_iteration, stack_priors
from urlvr_jax.theory.sharpening import sharpening_table
from urlvr_jax.theory.toys import Prior, answer_marginal, class_probs, sequence_prior, tabular_prior


@dataclass
class Row:
    """One line of the report. `finding`: if the row does not hold, that is a documented result
    about the theory (reported as "NO (finding)"), not a defect of the code."""

    claim: str
    prediction: str
    measured: str
    holds: bool
    finding: bool = False

    @property
    def status(self) -> str:
        return "yes" if self.holds else ("NO (finding)" if self.finding else "NO")


def _class_mv(form_to_answer: jax.Array, num_classes: int):
    """Majority vote on answer classes (surface forms of one answer vote together)."""
    onehot = jax.nn.one_hot(form_to_answer, num_classes)

    def fn(lz, la, c):
        p_cls = jnp.exp(lz[:, None] + la).sum(0) @ onehot
        return jnp.broadcast_to(onehot[:, jnp.argmax(p_cls)], la.shape)
    return fn


def check_theorem1(beta: float = 0.5, steps: int = 40) -> list[Row]:
    """Odds x e^{1/beta} per step; 1 - p_maj -> 0 at rate e^{-1/beta}; limit = pi_ref on the class."""
    with jax.enable_x64(True):
        return _theorem1_rows(beta, steps)


@partial(jax.jit, static_argnames=("num_classes", "beta", "steps"))
def _theorem1_numbers(prior: Prior, f2a: jax.Array, num_classes: int, beta: float, steps: int):
    """(odds error, median 1 - p_maj ratio, limit error, flips) in one compiled program."""
    lzs, las = kl_iteration(prior, _class_mv(f2a, num_classes), beta, steps)
    p = jax.vmap(answer_marginal)(lzs, las)  # [T, P, K*F]
    p_cls = class_probs(p, f2a, num_classes)
    maj = jnp.argmax(p_cls[0], -1)
    p_maj = jnp.take_along_axis(p_cls, maj[None, :, None], -1)[..., 0]
    odds = jnp.log(p_maj) - jnp.log1p(-p_maj)
    err_odds = jnp.abs(odds[1] - odds[0] - 1.0 / beta).max()
    rate = jnp.median((1 - p_maj[12]) / (1 - p_maj[11]))
    in_cls = f2a[None, :] == maj[:, None]
    ref = jnp.where(in_cls, p[0], 0.0)
    limit_err = jnp.abs(p[-1] - ref / ref.sum(-1, keepdims=True)).max()
    return err_odds, rate, limit_err, (jnp.argmax(p_cls[-1], -1) != maj).sum()


def _theorem1_rows(beta: float, steps: int) -> list[Row]:
    prior, f2a = tabular_prior(jax.random.PRNGKey(0), 50, 4, 0.6, 0.5, num_forms=3)
    prior = jax.tree.map(lambda x: x.astype(jnp.float64) if x.dtype == jnp.float32 else x, prior)
    err_odds, rate, limit_err, flips = (float(x) for x in _theorem1_numbers(prior, f2a, 4, beta, steps))
    flips = int(flips)
    return [
        Row("Thm 1: one KL step multiplies majority odds by e^{1/beta}", f"log-odds +{1/beta:.3f} (err<1e-6)",
            f"max err {err_odds:.1e}", err_odds < 1e-6),
        Row("Thm 1: p_maj -> 1 geometrically", f"(1-p_maj) ratio e^(-1/beta)={np.exp(-1/beta):.4f}",
            f"{rate:.4f}", abs(rate - np.exp(-1 / beta)) < 1e-3),
        Row("Thm 1: limit = pi_ref renormalised on initial majority class", "max |diff| < 1e-4, 0 flips",
            f"{limit_err:.1e}, {flips} flips", limit_err < 1e-4 and flips == 0),
    ]


@jax.jit
def _unified_error(prior: Prior) -> jax.Array:
    """max |direct - unified| over all rewards, one compiled program."""
    lz = jax.nn.log_softmax(prior.s_z, -1)
    la = jax.nn.log_softmax(prior.s_a, -1)
    p_vote = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(2), prior.s_a.shape[::2]), -1)
    errs = []
    for name in R.REWARDS:
        d = jax.vmap(partial(R.reward_table, name))(lz, la, prior.c, p_vote)
        u = jax.vmap(partial(R.unified_reward_table, name))(lz, la, prior.c, p_vote)
        errs.append(jnp.abs(d - u).max())
    return jnp.stack(errs).max()


def check_unified(num_prompts: int = 64) -> Row:
    """psi(sigma * mean H(q, pi)) equals every direct reward definition."""
    err = float(_unified_error(sequence_prior(jax.random.PRNGKey(1), num_prompts, 3, 5)))
    return Row("Unified psi(sigma H(q,pi)) = direct rewards (7 rewards)", "max |diff| < 1e-5",
               f"{err:.1e}", err < 1e-5)


ENSEMBLE = ("majority_vote", "self_consistency")
CERTAINTY = ("self_certainty", "token_entropy", "trajectory_entropy", "probability")
MONOTONE_IN_PI_Y = ("trajectory_entropy", "probability")  # Prop. 1 holds exactly for these


def sharpening_exact(name: str, num_prompts: int = 200, steps: int = 30, level: str = "answer") -> tuple[float, float]:
    """Share of prompts whose argmax is kept and entropy fell at `level` ("answer" or
    "trajectory"): (KL iteration, PG flow)."""
    t = sharpening_table(R.INTRINSIC, num_prompts, steps)[name]
    return t[("kl", level)][2], t[("pg", level)][2]


def _pct(kept_down_both: tuple[float, float, float]) -> str:
    k, d, b = kept_down_both
    return f"{b:.0%} (argmax kept {k:.0%}, H down {d:.0%})"


def check_sharpening(num_prompts: int = 200, steps: int = 30) -> list[Row]:
    """Which distribution each intrinsic reward sharpens, under the exact KL iteration (the paper's
    update); the exact PG flow on the softmax parametrisation is reported alongside."""
    table = sharpening_table(R.INTRINSIC, num_prompts, steps)
    rows, pg_short = [], []
    for name in R.INTRINSIC:
        t = table[name]
        level = "answer" if name in ENSEMBLE else "trajectory"
        kl, pg = t[("kl", level)], t[("pg", level)]
        if pg[2] < 0.99:
            pg_short.append(f"{name} {pg[2]:.0%}")
        if name in ENSEMBLE:
            rows.append(Row(f"Sharpening of the answer marginal (KL iteration): {name}",
                            "answer argmax kept & H(answer) down on 100%",
                            f"KL {_pct(kl)}; PG flow {pg[2]:.0%}", kl[2] >= 0.99))
            continue
        why = "Prop. 1: r monotone in pi(y)" if name in MONOTONE_IN_PI_Y else "paper: sharpens pi_0(y)"
        rows.append(Row(f"Sharpening of pi(y), y=(z,a) sequences (KL iteration): {name}",
                        f"argmax sequence kept & H(y) down on 100% ({why})",
                        f"KL {_pct(kl)}; PG flow {pg[2]:.0%}", kl[2] >= 0.99,
                        finding=name not in MONOTONE_IN_PI_Y))
        ans_kl, ans_pg = t[("kl", "answer")][2], t[("pg", "answer")][2]
        rows.append(Row(f"Answer marginal also sharpens (not claimed by the paper): {name}",
                        "answer argmax kept & H(answer) down on 100%",
                        f"fails on {1 - ans_kl:.0%} of prompts (KL), {1 - ans_pg:.0%} (PG flow)",
                        ans_kl >= 0.99, finding=True))
    rows.append(Row("Sharpening at the paper's level under the exact PG flow (softmax logits, not the KL optimum)",
                    "same as KL iteration (100%)",
                    "below 99%: " + (", ".join(pg_short) if pg_short else "none"), not pg_short, finding=True))
    return rows


def sampled_flip_rates(num_rollouts: int, margins: tuple[float, ...], steps: int = 60,
                       num_prompts: int = 256) -> list[float]:
    """Tabular MV-GRPO with N rollouts: share of prompts whose answer mode changed, per margin
    (one vmapped call over the margins' priors)."""
    priors = stack_priors([tabular_prior(jax.random.PRNGKey(4), num_prompts, 4, 1.0, m)[0] for m in margins])
    cfg = GRPOConfig(num_rollouts=num_rollouts, batch_size=num_prompts, lr=1.0, rho=1.0 * num_prompts ** 0.5,
                     learn_shared=False, steps=steps)
    _, m = batched_train(cfg)(jax.random.PRNGKey(5)[None], priors)
    return [1.0 - float(v) for v in m.mode_kept[:, 0, -1]]


def sampled_flip_rate(num_rollouts: int, margin: float, steps: int = 60, num_prompts: int = 256) -> float:
    """Tabular MV-GRPO with N rollouts: share of prompts whose answer mode changed."""
    return sampled_flip_rates(num_rollouts, (margin,), steps, num_prompts)[0]


def check_sampled_sharpening(steps: int = 60, num_prompts: int = 256) -> Row:
    """Finite-N GRPO breaks argmax preservation more often at small N and small margin."""
    margins = (0.1, 1.0)
    grid = {(n, mg): v for n in (4, 16) for mg, v in zip(margins, sampled_flip_rates(n, margins, steps, num_prompts))}
    txt = ", ".join(f"N={n},m={mg}: {v:.0%}" for (n, mg), v in grid.items())
    holds = grid[(4, 0.1)] > grid[(16, 0.1)] >= grid[(16, 1.0)] and grid[(4, 0.1)] > grid[(4, 1.0)]
    return Row("Sharpening (sampled MV-GRPO): mode flips", "more flips at small N / margin", txt, holds)


@lru_cache(maxsize=None)
def _alignment_fn(steps: int):
    """Jitted exact KL iteration for MV and GT rewards; pass@1 curves [2, steps + 1]."""
    def curves(prior):
        out = []
        for name in ("majority_vote", "ground_truth"):
            lzs, las = kl_iteration(prior, exact_reward_fn(name), 1.0, steps)
            p = jax.vmap(answer_marginal)(lzs, las)
            out.append(jnp.take_along_axis(p, prior.c[None, :, None], -1)[..., 0].mean(-1))
        return jnp.stack(out)
    return jax.jit(curves)


def check_alignment(steps: int = 60) -> list[Row]:
    """Tabular MV: accuracy -> aligned share (up or down from pass@1); GT: accuracy -> 1."""
    rows = []
    for frac, K, margin in ((0.7, 6, 1.0), (0.3, 3, 0.3)):
        prior, _ = tabular_prior(jax.random.PRNGKey(6), 400, K, frac, margin)
        mv, gt = np.asarray(_alignment_fn(steps)(prior))
        a0, a_mv, a_gt = mv[0], mv[-1], gt[-1]
        direction = "rises" if frac > a0 else "falls"
        ok = abs(a_mv - frac) < 0.01 and (a_mv > a0) == (frac > a0) and a_gt > 0.99
        rows.append(Row(f"Alignment: MV acc -> aligned share ({direction}); GT -> 1",
                        f"{frac:.2f} from pass@1 {a0:.2f}; GT 1.00", f"MV {a_mv:.3f}, GT {a_gt:.3f}", ok))
    return rows


@lru_cache(maxsize=4)
def coupled_runs(mus: tuple[float, ...], seeds: int, steps: int, gt_steps: int) -> tuple[dict, ...]:
    """Cached `run_coupled_many` on the default coupled config (shared by the report and tests)."""
    cfg = C.COUPLED_DEFAULT._replace(steps=steps)
    return tuple(C.run_coupled_many(mus, seeds=seeds, config=cfg, gt_steps=gt_steps))


RISE_FALL_MU = 1.75  # 41% aligned: the default-answer attractor beats the saturating sharpening in every seed


COUPLED_MUS = (0.0, 1.0, 1.5, RISE_FALL_MU, 2.0, 2.5)


def check_coupling(mus=COUPLED_MUS, seeds: int = 4, steps: int = 400,
                   gt_steps: int = 64) -> list[Row]:
    """Coupled toy: rise-then-fall, collapse step vs alignment and vs GT gain, small-data effect.

    All priors x seeds run in one vmapped call per reward (MV, GT) and one for the small pool.
    """
    cfg = C.COUPLED_DEFAULT._replace(steps=steps)
    runs = coupled_runs(tuple(mus), seeds, steps, gt_steps)
    mid = runs[list(mus).index(RISE_FALL_MU)]
    ok, rise, peak, fall = C.rise_then_fall(mid["accuracy"])
    mv_end = float(mid["mv_reward"][-10:].mean())
    n_collapsed = int((mid["collapse_step"] < steps).sum())
    seed_rises = [C.rise_then_fall(a)[1] for a in mid["accuracy_per_seed"]]
    cs = [float(r["collapse_step"].mean()) for r in runs]
    gains = [float(r["gt_gain"].mean()) for r in runs]
    al = [r["aligned"] for r in runs]
    rho_al, rho_gain = C.spearman(al, cs), C.spearman(cs, gains)
    low = runs[1]  # a weak prior that collapses with the large pool
    cs_small = float(C.run_coupled(low["mu"], seeds=seeds, pool=32, config=cfg, gt_steps=0)["collapse_step"].mean())
    cs_large = float(low["collapse_step"].mean())
    return [
        Row("Coupled: MV accuracy rises then falls, MV reward keeps rising "
            f"(mu={RISE_FALL_MU}, {mid['aligned']:.0%} aligned, seed-mean of {seeds} seeds, {steps} steps)",
            "rise>=0.05, fall>=0.1, MV reward>=0.95",
            f"+{rise:.3f} by step {peak}, -{fall:.3f} after; MV reward {mv_end:.3f}; "
            f"{n_collapsed}/{seeds} seeds collapse (MCS {[int(c) for c in mid['collapse_step']]}); "
            f"per-seed rise {min(seed_rises):.3f}..{max(seed_rises):.3f}",
            ok and mv_end >= 0.95),
        Row("Coupled: collapse step grows with prior alignment", "Spearman rho >= 0.8",
            f"rho={rho_al:.2f}; aligned {[round(a, 2) for a in al]} -> MCS {[round(c) for c in cs]} (cap {steps})",
            rho_al >= 0.8),
        Row("Coupled: collapse step predicts GT gain across priors", "Spearman rho >= 0.8",
            f"rho={rho_gain:.2f}; GT gain {[round(g, 3) for g in gains]}", rho_gain >= 0.8),
        Row("Coupled: fewer prompts delay or prevent collapse", f"MCS(pool 32) > MCS(pool {C.POOL})",
            f"mu={low['mu']}: {cs_small:.0f} vs {cs_large:.0f} (cap {steps})", cs_small > cs_large),
    ]


QUICK = {"coupled_steps": 300, "gt_steps": 64}
FULL = {"coupled_steps": 400, "gt_steps": 64}


def all_checks(quick: bool = False) -> list[Row]:
    """Every check, in report order."""
    s = QUICK if quick else FULL
    rows = check_theorem1() + [check_unified()] + check_sharpening()
    rows += [check_sampled_sharpening()] + check_alignment()
    rows += check_coupling(steps=s["coupled_steps"], gt_steps=s["gt_steps"])
    return rows
