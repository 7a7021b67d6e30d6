"""The coupled toy explained: its phase diagram on a tiny grid, and why certainty rewards move the argmax.

Thresholds come from the full run (docs/theory_phase.json, 5 seeds x 400 steps per cell) with margin.
"""

import functools
import json

from urlvr_jax.theory import checks, coupled, phase
from urlvr_jax.theory.sharpening import argmax_flip_example, certainty_tilt_shares

LOW_MU, HIGH_MU = 1.0, 3.0


@functools.lru_cache(maxsize=None)
def tiny_diagram() -> dict:
    cfg = coupled.COUPLED_DEFAULT._replace(steps=checks.QUICK["coupled_steps"])
    return phase.phase_diagram((LOW_MU, checks.RISE_FALL_MU, HIGH_MU), (coupled.KAPPA,), (coupled.POOL,), seeds=4,
                               config=cfg)


def cell(mu: float) -> dict:
    return phase.find_cell(tiny_diagram(), coupled.POOL, mu, coupled.KAPPA)


def test_default_setting_is_inside_the_rise_then_fall_region():
    c = cell(checks.RISE_FALL_MU)
    assert c["region"] == "rise-then-fall" and c["rise_fall_frac"] >= 0.5, c
    assert c["mean_rise"] >= 0.05 and c["collapse_frac"] == 1.0, c
    assert c["b0_drift"] > 1.0, c  # the shared default-answer bias grew: the coupling won


def test_low_mu_shows_no_rise_and_collapses():
    c = cell(LOW_MU)
    assert c["region"] == "no rise (collapse)" and c["rose_frac"] == 0.0, c
    assert c["mean_rise"] < 0.02 and c["collapse_frac"] == 1.0 and c["final_accuracy"] < 0.01, c


def test_high_mu_rises_without_collapse():
    c = cell(HIGH_MU)
    assert c["region"] == "rise without collapse" and c["rise_fall_frac"] == 0.0, c
    assert c["mean_rise"] > 0.15 and c["collapse_frac"] == 0.0, c
    assert c["final_accuracy"] > c["acc0"] + 0.15, c
    assert c["b0_drift"] < 0.0, c  # aligned prompts pushed the shared default-answer bias down


def test_diagram_is_json_ready_and_printable():
    result = tiny_diagram()
    assert json.loads(json.dumps(result))["grid"]["seeds"] == 4
    table = phase.format_table(result)
    assert "*F" in table and f"pool {coupled.POOL}" in table


def test_certainty_rewards_flip_the_argmax_in_the_worked_example():
    """Branch 1 is unlikely (0.3) but sure (answer B 0.96): a certainty reward scores the branch, not the answer,
    so mass moves to branch 1 and B overtakes the initial (and correct) majority A; majority vote and the
    probability reward (monotone in pi(y), Prop. 1) keep A."""
    ex = argmax_flip_example(steps=4)
    for name in ("majority_vote", "probability"):
        run = ex["rewards"][name]
        assert run["sequence_flip_step"] is None and run["answer_flip_step"] is None, name
        assert run["answer"][-1][0] > run["answer"][0][0], name  # A sharpened
    for name in ("self_certainty", "token_entropy"):
        run = ex["rewards"][name]
        rewards = run["reward"]
        assert all(max(row) - min(row) < 1e-6 for row in rewards), name  # constant in the sampled answer
        assert rewards[1][0] > rewards[0][0], name  # the sure branch earns more
        assert run["answer_flip_step"] == 1 and run["sequence_flip_step"] in (1, 2), name
        assert run["argmax_answer"][-1] == 1 and run["argmax_sequence"][-1] == (1, 1), name
        assert run["answer"][-1][0] < run["answer"][0][0], name  # the correct answer lost mass
    assert ex["entropy_a_given_z"][1] < ex["entropy_a_given_z"][0]


def test_branch_tilt_closed_form_explains_the_report_shares():
    """On the report's sequence toy the KL iteration == the branch tilt pi_0(z) e^{k r(z)/beta} with pi(a|z) fixed,
    which keeps the argmax sequence on only ~half of the prompts (the report's 'NO (finding)' rows)."""
    for name in ("self_certainty", "token_entropy"):
        s = certainty_tilt_shares(name)
        assert s["kept_iteration"] == s["kept_closed_form"], (name, s)
        assert s["answer_step_change"] < 1e-3, (name, s)
        assert 0.3 < s["kept_iteration"] < 0.6 and 0.3 < s["kept_limit"] < 0.6, (name, s)
