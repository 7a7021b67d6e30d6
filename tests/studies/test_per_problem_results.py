"""The committed per-problem / out-of-distribution results (docs/studies/per_problem_toy.json, written by
`python -m urlvr_jax.studies report per_problem`) support what docs/studies/per_problem_toy.md says.

Slow only because they are read as results, not rerun: `python -m pytest -m slow tests/studies/test_per_problem_results.py`.
Bounds are set from the spread over seeds the page quotes (95% t-intervals over 5 seeds).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "docs" / "studies" / "per_problem_toy.json"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report() -> dict:
    if not PATH.exists():
        pytest.fail(f"{PATH} is missing: run `python -m urlvr_jax.studies report per_problem`")
    report = json.loads(PATH.read_text())
    assert len(report["single"]["seeds"]) >= 3 and all(len(o["seeds"]) >= 3 for o in report["ood"].values())
    return report


def test_single_problems_keep_their_initial_majority_and_sharpen_it(report):
    single, n = report["single"], report["single"]["n"]
    over = single["over_seeds"]
    assert n >= 25
    assert over["kept majority answer"]["lo"] >= 0.85 * n and over["sharpened"]["lo"] >= 0.85 * n
    assert over["flipped"]["hi"] <= 0.12 * n  # the paper: 3 of 25
    # every kept right majority got more accurate; a kept wrong one cannot rise
    for seed in single["per_seed"].values():
        assert seed["accuracy up (kept right)"] == seed["amplified success"]
    assert single["agreement"] >= 0.85


def test_a_few_flip_and_those_were_near_ties(report):
    single = report["single"]
    flips = [s["flipped"] for s in single["per_seed"].values()]
    assert sum(flips) >= 3 and max(flips) <= 3
    assert single["prior_share"]["flipped"]["hi"] < single["prior_share"]["kept"]["lo"]
    assert single["over_seeds"]["correct -> wrong"]["mean"] > single["over_seeds"]["wrong -> correct"]["mean"]


def test_training_on_wrong_majority_problems_costs_unseen_ones_far_more_than_it_fixes(report):
    wrong, noise = report["ood"]["wrong"]["over_seeds"], report["prior"]["unseen_noise"]
    assert wrong["label_final"]["hi"] < wrong["label_start"]["lo"]
    assert wrong["accuracy_final"]["hi"] < wrong["accuracy_start"]["lo"]
    assert wrong["right_to_wrong"]["lo"] > 5 * wrong["wrong_to_right"]["hi"]
    # some unseen problems move wrong -> right on a seed, no more than re-measuring the prior moves them
    assert all(s["wrong_to_right"] >= 1 for s in report["ood"]["wrong"]["per_seed"].values())
    assert wrong["wrong_to_right"]["lo"] <= noise["wrong_to_right"] + 1
    assert len(report["ood"]["wrong"]["wrong_to_right_every_seed"]) == 0


def test_six_wrong_majority_problems_the_paper_count_fall_too_and_move_one_unseen_problem_on_every_seed(report):
    six = report["ood"]["wrong_6"]
    assert six["over_seeds"]["train_problems"]["mean"] == 6
    assert six["over_seeds"]["label_final"]["hi"] < six["over_seeds"]["label_start"]["lo"]
    assert six["over_seeds"]["right_to_wrong"]["lo"] > 5 * six["over_seeds"]["wrong_to_right"]["hi"]
    assert set(six["wrong_to_right_every_seed"]) == {"5*6="}  # via the trained 5*5*6=, whose wrong majority is 30


def test_the_right_majority_control_falls_on_unseen_problems_too(report):
    right = report["ood"]["right"]["over_seeds"]
    assert right["label_final"]["hi"] < right["label_start"]["lo"]
    assert right["right_to_wrong"]["lo"] > 3 * right["wrong_to_right"]["hi"]
