"""Write the theory notebooks, each: the paper's claim and formula, the executable check and its figure, what it
means. ``--execute`` runs them and saves them with outputs; ``--quick`` uses the small settings the tests use.

    python notebooks/make_theory_notebooks.py --execute
"""

from __future__ import annotations

import argparse

from nbtools import execute, notebook, write

SETUP = """
import os, warnings
import matplotlib
matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt
%matplotlib inline
import jax, jax.numpy as jnp, numpy as np
from urlvr_jax.theory import checks, coupled, format_table
QUICK = os.environ.get("URLVR_NOTEBOOK_QUICK") == "1"  # the tests' small settings

def check(rows):
    \"\"\"Print the rows; fail if a claim does not hold (a documented finding, NO (finding), is not a failure).\"\"\"
    print(format_table(rows))
    failed = [r.claim for r in rows if not (r.holds or r.finding)]
    assert not failed, f"claims that do not hold: {failed}"
"""

THEOREM1 = [
    ("md", r"""
# Theorem 1: URLVR sharpens the model's initial preference

**The paper's claim.** Intrinsic rewards are functions of the model's own distribution, so the KL-regularised
update $\pi_{k+1}(y) \propto \pi_k(y)\, e^{r_k(y)/\beta}$ can only re-weight what the model already prefers. With the
majority-vote reward $r(y) = \mathbb{1}[\mathrm{ans}(y) = \arg\max_a \pi_k(a)]$ one step multiplies the odds of the
majority answer by $e^{1/\beta}$:

$$\frac{p^{k+1}_{maj}}{1 - p^{k+1}_{maj}} = e^{1/\beta}\, \frac{p^{k}_{maj}}{1 - p^{k}_{maj}}
\quad\Rightarrow\quad 1 - p^{k}_{maj} \sim C\, e^{-k/\beta},$$

and the limit is $\pi_{ref}$ renormalised on the initial majority class: the answer never changes, only the
confidence in it. Proposition 1 extends this to the certainty rewards that are monotone in $\pi(y)$ (probability,
trajectory-level entropy): the most likely *sequence* keeps its place and the sequence entropy falls.

**The check.** Exact KL iteration (no sampling) on a tabular toy: 50 prompts, 4 answers with 3 surface forms each,
$\beta = 0.5$; then, for every intrinsic reward, the share of prompts whose argmax is kept while the entropy falls,
at the level the paper makes its claim (sequences for certainty rewards, answers for ensemble rewards).
"""),
    ("code", SETUP + "from urlvr_jax.theory.dynamics import exact_reward_fn, kl_iteration\n"
             "from urlvr_jax.theory.toys import answer_marginal, tabular_prior\n"
             "from urlvr_jax.theory.sharpening import sharpening_table"),
    ("code", """
check(checks.check_theorem1())  # odds x e^{1/beta} per step, the geometric rate, the limit
"""),
    ("md", """
The figure shows the same iteration on 6 prompts (one surface form per answer): measured $1 - p_{maj}$ (dots) on top of
the closed form $1 / (1 + \\mathrm{odds}_0\\, e^{k/\\beta})$ (lines).
"""),
    ("code", """
beta, steps = 0.5, 8  # (float32: 1 - p_maj rounds to 0 a little later)
prior, _ = tabular_prior(jax.random.PRNGKey(0), 6, 4, 0.6, 0.5)
lzs, las = kl_iteration(prior, exact_reward_fn("majority_vote"), beta, steps)
p = np.asarray(jax.vmap(answer_marginal)(lzs, las))  # [steps + 1, prompts, answers]
p_maj = np.take_along_axis(p, p[0].argmax(-1)[None, :, None], -1)[..., 0]
k = np.arange(steps + 1)
odds0 = p_maj[0] / (1 - p_maj[0])
for i in range(p_maj.shape[1]):
    line, = plt.semilogy(k, 1 / (1 + odds0[i] * np.exp(k / beta)), lw=1)
    plt.semilogy(k, 1 - p_maj[:, i], "o", ms=3, color=line.get_color())
plt.xlabel("KL iteration k"); plt.ylabel("1 - p_maj"); plt.title("Theorem 1: odds x e^(1/beta) per step")
plt.show()
"""),
    ("code", """
prompts, steps = (30, 8) if QUICK else (200, 30)
check(checks.check_sharpening(num_prompts=prompts, steps=steps))
tab = sharpening_table(num_prompts=prompts, steps=steps)
x = np.arange(len(tab))
for i, level in enumerate(("trajectory", "answer")):
    plt.bar(x + 0.4 * i, [t[("kl", level)][2] for t in tab.values()], 0.4, label=f"{level} level")
plt.xticks(x + 0.2, list(tab), rotation=30, ha="right"); plt.ylabel("share of prompts: argmax kept, entropy down")
plt.title("KL iteration: which distribution each reward sharpens"); plt.legend(); plt.show()
"""),
    ("md", """
**What it means.** Under the paper's update every intrinsic reward is a sharpening operator: majority vote sharpens
the answer distribution, probability and trajectory entropy sharpen the sequence distribution, and none of them
moves the argmax. Whether that helps is decided before training starts, by whether the model's initial preference
is correct. Rows marked *NO (finding)* are results about the theory, not failures: self-certainty and token entropy
are not monotone in $\\pi(y)$, and the answer marginal need not sharpen under the certainty rewards, which the paper
does not claim. Finite-sample GRPO breaks the guarantee more often at small N and small margins
(`checks.check_sampled_sharpening`).
"""),
]

ALIGNMENT = [
    ("md", r"""
# Alignment decides the outcome; rise-then-fall when prompts share parameters

**The paper's claim.** Sharpening helps exactly when confidence is aligned with correctness, i.e. when the model's
initial majority answer is the correct one ($P_{init}(\mathrm{correct}) > P_{init}(\text{any wrong answer})$).
Per prompt the majority-vote iteration converges to its initial majority, so accuracy goes to the *aligned share*

$$\mathrm{acc}_\infty = \frac{1}{|X|} \sum_{x} \mathbb{1}\big[\arg\max_a \pi_0(a \mid x) = a^*(x)\big],$$

which can be above or below the initial pass@1, while the ground-truth reward drives accuracy to 1. In real models
the early gains come from aligned prompts and the collapse follows once misaligned ones dominate: majority-vote
accuracy **rises then falls** while the majority-vote reward keeps rising.

**The check.** (1) Exact KL iteration on two tabular priors with 70% and 30% aligned prompts, majority vote against
ground truth. (2) The coupled toy (`urlvr_jax.theory.coupled`): prompts share a "default answer" bias and a
saturating sharpening, trained by sampled GRPO with N = 8 rollouts and majority vote.
"""),
    ("code", SETUP),
    ("code", """
check(checks.check_alignment(steps=20 if QUICK else 60))  # MV -> aligned share (up or down), GT -> 1
"""),
    ("code", """
steps, seeds = (40, 1) if QUICK else (400, 4)
cfg = coupled.COUPLED_DEFAULT._replace(steps=steps)
out = coupled.run_coupled(checks.RISE_FALL_MU, seeds=seeds, config=cfg, gt_steps=0)
for key in ("accuracy", "mv_reward", "reward_accuracy"):
    plt.plot(out[key], label=key)
plt.xlabel("GRPO step"); plt.title(f"coupled toy, {out['aligned']:.0%} of prompts aligned"); plt.legend(); plt.show()
holds, rise, peak, fall = coupled.rise_then_fall(out["accuracy"])
print(f"accuracy +{rise:.3f} by step {peak}, then -{fall:.3f}; "
      f"final majority-vote reward {out['mv_reward'][-10:].mean():.3f}")
if not QUICK:  # the quick run is too short to fall
    assert holds and out["mv_reward"][-10:].mean() >= 0.95, "rise-then-fall does not hold"
"""),
    ("md", """
**What it means.** Unsupervised RLVR cannot be better than the model's prior on each prompt: it converges to the
share of prompts it already gets right by majority, which is a gain when that share exceeds pass@1 and a loss
otherwise. When prompts are coupled through shared parameters, the misaligned ones eventually pull the shared
state toward the default answer: accuracy peaks and falls while the proxy reward (agreement with itself) keeps
rising, the reward hacking the paper reports.
"""),
]

COLLAPSE = [
    ("md", r"""
# The Model Collapse Step predicts trainability

**The paper's claim.** Run URLVR with the majority-vote reward and record the first step at which the reward
accuracy (agreement between the proxy and the ground-truth reward) falls below 1%:

$$\mathrm{MCS} = \min\{\, t : \mathrm{RewardAccuracy}(t) < 0.01 \,\}.$$

A model whose prior is better aligned collapses later, and the ranking of models by MCS matches their ranking by
GT gain (the improvement from ordinary RLVR with labels), at a fraction of the cost and without labels.

**The check.** The coupled toy at several alignments $\mu$ (the mean prior logit of the correct answer): the
collapse step of majority-vote GRPO against the GT gain after a short ground-truth GRPO run, and their Spearman
rank correlation.
"""),
    ("code", SETUP),
    ("code", """
steps = 100 if QUICK else 400
cfg = coupled.COUPLED_DEFAULT._replace(steps=steps)
mus = (0.0, 2.5) if QUICK else checks.COUPLED_MUS
rows = coupled.collapse_step_experiment(mus, seeds=1 if QUICK else 4, config=cfg, gt_steps=16 if QUICK else 64)
cs, gain = [r["collapse_step"] for r in rows], [r["gt_gain"] for r in rows]
rho = coupled.spearman(cs, gain)
for r in rows:
    print(f"mu {r['mu']:.2f}: aligned {r['aligned']:.0%}, collapse step {r['collapse_step']:.0f} (cap {steps}), "
          f"GT gain {r['gt_gain']:+.3f}")
print(f"Spearman rho(collapse step, GT gain) = {rho:.2f}")
assert rho >= 0.8, "the collapse step does not rank the priors like the GT gain"
"""),
    ("code", """
plt.scatter(cs, gain)
for r in rows:
    plt.annotate(f"mu={r['mu']}", (r["collapse_step"], r["gt_gain"]), textcoords="offset points", xytext=(4, 4))
plt.xlabel(f"Model Collapse Step (cap {steps})"); plt.ylabel("GT gain"); plt.title(f"Spearman rho = {rho:.2f}")
plt.show()
"""),
    ("md", """
**What it means.** How long intrinsic URLVR survives before its reward stops tracking correctness is a property of
the prior, and it orders priors the way labelled RL would, without labels. The MCS tool
(`python -m urlvr_jax.collapse_step`) applies the same measurement to real models.
"""),
]

PHASE = [
    ("md", r"""
# The coupled toy explained: where rise-then-fall happens, and why certainty rewards move the argmax

**Rise-then-fall is a band, not a point.** In the coupled toy (`urlvr_jax.theory.coupled`) every prompt has its
own logits, but all prompts share a bias $b$ on a "default answer" that is never correct (initially $b_0 = \kappa$)
and a saturating sharpening of the prior. The prior logit of the right answer is $g \sim \mathcal N(\mu, 1.5^2)$.
Majority-vote GRPO pushes each prompt toward its current majority; through $b$ the prompts whose majority is the
default answer pull *every* prompt toward it, while aligned prompts (majority = correct answer) push $b_0$ down.
Sweeping $(\mu, \kappa)$ and the pool size (`urlvr_jax.theory.phase`) shows three regions: **no rise** (the
default answer already wins the tug of war: accuracy only falls and the reward accuracy collapses), **rise without
collapse** (aligned prompts win: accuracy rises to the aligned share and stays), and between them a thin band of
**rise-then-fall**, where the fast, saturating sharpening gain comes first and the slow drift of the shared
default-answer bias wins afterwards. The default setting ($\mu = 1.75$, $\kappa = 2$, pool 1024) lies in it.

**The check.** A small grid here (the full map: `python -m urlvr_jax.theory.phase`, 214 s on a shared 2-core CPU;
its figure is shown below): per cell, the share of seeds that rise then fall (`coupled.rise_then_fall`), the mean
rise, the share of seeds whose majority-vote reward accuracy collapses (< 1%) and when, and the drift of $b_0$.
"""),
    ("code", SETUP + "import json\nfrom IPython.display import Image, display\nfrom urlvr_jax.theory import phase\n"
             "from urlvr_jax.theory.sharpening import argmax_flip_example, certainty_tilt_shares"),
    ("code", """
if QUICK:
    grid = dict(mus=(1.0, checks.RISE_FALL_MU, 3.0), kappas=(coupled.KAPPA,), pools=(coupled.POOL,), seeds=4)
else:
    grid = dict(mus=(1.0, 1.5, checks.RISE_FALL_MU, 2.0, 2.5, 3.0), kappas=(1.5, 2.0, 2.5), pools=(coupled.POOL,),
                seeds=5)
cfg = coupled.COUPLED_DEFAULT._replace(steps=300)
result = phase.phase_diagram(**grid, config=cfg)
print(phase.format_table(result))
cell = lambda mu: phase.find_cell(result, coupled.POOL, mu, coupled.KAPPA)
low, mid, high = cell(1.0), cell(checks.RISE_FALL_MU), cell(3.0)
assert low["region"] == "no rise (collapse)", low
assert high["region"] == "rise without collapse", high
assert mid["rise_fall_frac"] > 0 and mid["collapse_frac"] == 1.0, mid
print(f"b0 drift (final shared default-answer bias minus kappa): mu=1 {low['b0_drift']:+.2f}, "
      f"mu={checks.RISE_FALL_MU} {mid['b0_drift']:+.2f}, mu=3 {high['b0_drift']:+.2f}")
"""),
    ("code", """
phase.figure(result)
plt.show()
"""),
    ("md", """
The full map (`docs/theory_phase.png`, 5 seeds x 400 steps per cell; `docs/theory_phase.json` holds every cell):
"""),
    ("code", """
display(Image("../docs/theory_phase.png"))
full = json.load(open("../docs/theory_phase.json"))
for pool in full["grid"]["pools"]:
    band = [c for c in full["cells"] if c["pool"] == pool and c["region"] == "rise-then-fall"]
    print(f"pool {pool}: {len(band)} rise-then-fall cells of {len(full['cells']) // len(full['grid']['pools'])}"
          + (f", aligned share {min(c['aligned'] for c in band):.2f}-{max(c['aligned'] for c in band):.2f}" if band
             else ""))
"""),
    ("md", r"""
# Why self-certainty and token entropy move the argmax (a property, not a bug)

Notebook 1 marks *NO (finding)*: under the exact KL iteration, self-certainty and token entropy keep the argmax
sequence on only about half of the prompts. The reason is what these rewards score. With a reasoning token $z$ then
an answer $a$, both are functions of the *distribution* the model is in after each prefix, never of the token it
samples:

$$r_{SC}(z, a) = 	frac12ig[\mathrm{KL}(U \| \pi_z) + \mathrm{KL}(U \| \pi(\cdot \mid z))ig], \qquad
r_{TE}(z, a) = -	frac12ig[H(\pi_z) + H(\pi(\cdot \mid z))ig],$$

so $r$ is constant in $a$. The KL-optimal tilt $\pi_{k+1} \propto \pi_k e^{r/eta}$ therefore leaves
$\pi(a \mid z)$ untouched and only re-weights branches, $\pi_k(z) \propto \pi_0(z)\, e^{k\, r(z)/eta}$: mass
flows to the most *certain* branch whatever its probability, and the answer it prefers wins. Proposition 1 needs a
reward monotone in $\pi(y)$ (probability, trajectory entropy); these two are not.

**Worked example.** $\pi(z) = (0.7, 0.3)$; branch 0 is unsure, $\pi(a \mid 0) = (0.7, 0.2, 0.1)$, branch 1 is sure,
$\pi(a \mid 1) = (0.02, 0.96, 0.02)$. The likeliest sequence is $(0, A)$ with 0.49, the answer marginal is
$A\ 0.496 > B\ 0.428 > C\ 0.076$, and $A$ is correct. $eta = 1$.
"""),
    ("code", """
ex = argmax_flip_example(steps=4)
print("H(a | z) per branch:", [round(h, 3) for h in ex["entropy_a_given_z"]])
for name, run in ex["rewards"].items():
    constant = max(max(r) - min(r) for r in run["reward"]) < 1e-6
    per_branch = [round(row[0], 3) for row in run["reward"]]
    print(f"\\n{name}: " + (f"reward per branch {per_branch}, the same for every answer" if constant
                             else f"reward r[z][a] {np.round(run['reward'], 3).tolist()}"))
    for k, (pz, pa) in enumerate(zip(run["pi_z"], run["answer"])):
        print(f"  step {k}: pi(z) {np.round(pz, 3)}  pi(answer) {np.round(pa, 3)}  "
              f"argmax sequence {run['argmax_sequence'][k]}  argmax answer {'ABC'[run['argmax_answer'][k]]}")
for name in ("majority_vote", "probability"):
    assert ex["rewards"][name]["answer_flip_step"] is None and ex["rewards"][name]["sequence_flip_step"] is None
for name in ("self_certainty", "token_entropy"):
    assert ex["rewards"][name]["argmax_answer"][-1] == 1 and ex["rewards"][name]["argmax_sequence"][-1] == (1, 1)
"""),
    ("code", """
# the same closed form on the report's sequence toy (200 prompts, 3 branches x 5 answers, 30 KL steps)
for name in ("self_certainty", "token_entropy"):
    s = certainty_tilt_shares(name)
    print(f"{name}: argmax sequence kept on {s['kept_iteration']:.1%} (KL iteration) = {s['kept_closed_form']:.1%} "
          f"(branch tilt, pi(a|z) fixed); limit {s['kept_limit']:.1%} (argmax already in the most certain branch); "
          f"max change of pi(a|z) {s['answer_step_change']:.0e}")
    assert s["kept_iteration"] == s["kept_closed_form"] and s["answer_step_change"] < 1e-3
"""),
    ("md", """
**What it means.** The coupled toy's rise-then-fall is not a tuned accident but the boundary between two regimes of
one tug of war: aligned and misaligned prompts pull the shared parameters in opposite directions, and where they
nearly balance the early sharpening gain shows before the default answer takes over. Smaller pools move the band
(each prompt is revisited more often, so its own logits lock in its majority before the shared bias drifts). The
certainty rewards' argmax flips are equally structural: they reward being in a confident *state*, so under the
paper's update they move mass toward the most confident branch rather than sharpening the most likely answer, and a
minority answer with a peakier continuation can overtake a correct majority.
"""),
]

NOTEBOOKS = {"theory_01_theorem1_sharpening.ipynb": THEOREM1, "theory_02_alignment_rise_fall.ipynb": ALIGNMENT,
             "theory_03_collapse_step.ipynb": COLLAPSE, "theory_04_phase_diagram.ipynb": PHASE}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--execute", action="store_true", help="run them and save them with their outputs")
    parser.add_argument("--quick", action="store_true", help="with --execute: the tests' small settings")
    parser.add_argument("--only", default="", help="one notebook's file name")
    args = parser.parse_args()
    for name, cells in NOTEBOOKS.items():
        if args.only and args.only != name:
            continue
        nb = notebook(cells)
        print(write(execute(nb, quick=args.quick) if args.execute else nb, name))


if __name__ == "__main__":
    main()
