"""The committed study results (docs/studies/*.json, written by `studies report`) support what their pages say.

Slow only because they are read as results, not rerun: `python -m pytest -m slow tests/studies/test_study_results.py`.
Each claim is checked on the intervals over seeds the page quotes (95% t-intervals, at least 5 seeds: RL seeds 0-4).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "studies"
pytestmark = pytest.mark.slow

RISE_THEN_FALL = ("majority_vote", "self_consistency", "semantic_cluster", "srt_threshold", "srt_soft",
                  "trajectory_entropy", "probability")
TOKEN_LEVEL = ("self_certainty", "token_entropy", "probability_disparity")
MIN_SEEDS = 5  # every arm of every page


def _report(name: str) -> dict:
    path = DOCS / f"{name}.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `python -m urlvr_jax.studies report {name.rsplit('_', 1)[0]}`")
    report = json.loads(path.read_text())
    for arm, summary in report["arms"].items():
        assert len(summary["seeds"]) >= MIN_SEEDS, f"{name}: {arm} has {len(summary['seeds'])} seeds"
    return report["arms"]


def test_methods_every_intrinsic_reward_ends_below_ground_truth_and_all_but_the_teacher_fall():
    arms = _report("methods_toy")
    intrinsic = RISE_THEN_FALL + TOKEN_LEVEL
    assert arms["ground_truth"]["over_seeds"]["val_final"]["lo"] > 0.4
    for name in intrinsic:
        assert arms[name]["fall"]["hi"] < 0, (name, arms[name]["fall"])
        assert arms[name]["over_seeds"]["val_final"]["mean"] < 0.1, name
    teacher = arms["co_rewarding_teacher"]
    assert teacher["collapsed"] == 0 and teacher["fell"] == 0  # never back below its start
    assert teacher["rise"]["lo"] > 0 and teacher["over_seeds"]["val_final"]["lo"] > 0.3


def test_methods_sequence_level_rewards_rise_token_level_ones_never_do():
    arms = _report("methods_toy")
    for name in RISE_THEN_FALL:
        assert arms[name]["rise"]["lo"] > 0, (name, arms[name]["rise"])
    for name in TOKEN_LEVEL:
        assert arms[name]["peak_step"] == 0, name
        assert all(s["fall_step"] <= 30 for s in arms[name]["per_seed"].values()), name  # by step 10-30


def test_methods_same_prior_same_timing_other_prior_other_timing():
    arms = _report("methods_toy")
    intervals = [arms[name]["fall_step"] for name in RISE_THEN_FALL]
    assert max(i["lo"] for i in intervals) <= min(i["hi"] for i in intervals)  # every pair overlaps
    a, b = arms["majority_vote"], arms["majority_vote-prior=B"]
    assert a["collapsed"] == b["collapsed"] == 5 and arms["srt_threshold"]["collapsed"] == 5
    assert b["fall_step"]["hi"] < a["fall_step"]["lo"]  # prior B falls earlier, intervals apart
    assert b["collapse_step"]["hi"] < a["collapse_step"]["lo"]  # and collapses earlier, intervals apart
    assert 0 < b["rise"]["lo"] and b["rise"]["mean"] < a["rise"]["mean"]  # rises, less


def test_methods_srt_soft_is_self_consistency():
    arms = _report("methods_toy")
    assert arms["srt_soft"]["per_seed"] == arms["self_consistency"]["per_seed"]


def test_dataset_size_small_pools_never_collapse_yet_fall_on_held_out_problems():
    arms = _report("dataset_size_toy")
    small, large = ("size=32", "size=128", "size=512"), ("size=8192", "size=16384")
    for name in small:
        assert arms[name]["collapsed"] == 0 and arms[name]["over_seeds"]["min_reward_accuracy"]["mean"] > 0.1, name
    for name in large:
        assert arms[name]["collapsed"] == 5, name
    assert arms["size=2048"]["collapsed"] == 1
    for name in arms:  # held-out accuracy falls at every size
        assert arms[name]["fall"]["hi"] < 0, (name, arms[name]["fall"])
    assert min(arms[n]["over_seeds"]["val_final"]["mean"] for n in small) > 0.15
    assert max(arms[n]["over_seeds"]["val_final"]["mean"] for n in ("size=2048",) + large) < 0.1


def test_ttt_gains_hold_on_the_trained_problems_and_training_elsewhere_falls_on_them():
    arms = _report("ttt_toy")
    test, train = arms["test_split"], arms["train_set"]
    assert test["rise"]["lo"] > 0.1 and test["collapsed"] == 0 and test["fell"] == 0
    assert test["over_seeds"]["val_final"]["lo"] > test["over_seeds"]["val_start"]["hi"]  # still above its start
    assert train["fall"]["hi"] < 0 and train["over_seeds"]["val_final"]["mean"] < test["over_seeds"]["val_final"]["lo"]
    assert train["fell"] == 5 and train["collapsed"] == 2 and train["rise"]["mean"] < test["rise"]["mean"]


def test_failure_modes_token_certainty_maxes_length_probability_mostly_repeats_ground_truth_does_neither():
    arms = _report("failure_modes_toy")
    final = lambda name, key: [s[f"{key} final"] for s in arms[name]["per_seed"].values()]
    for name in ("token_entropy", "self_certainty"):
        assert min(final(name, "response length")) > 15.9, name  # the 16-token limit on every seed
    assert min(final("token_entropy", "repetition")) > 0.25
    assert sum(x < 0.005 for x in final("self_certainty", "distinct answers")) == 3  # no answer on 3 of 5 seeds
    probability = list(arms["probability"]["per_seed"].values())  # repeats on 4 of 5 seeds, shorter on the fifth
    repeats = [s for s in probability if s["repetition final"] > 0.2]
    assert len(repeats) == 4 and min(s["response length final"] for s in repeats) > 2.6
    (short,) = [s for s in probability if s["repetition final"] <= 0.2]
    assert short["repetition final"] == 0 and short["response length final"] < short["response length start"] - 0.4
    assert max(final("ground_truth", "repetition")) < 0.05
    assert max(abs(x - 2.6) for x in final("ground_truth", "response length")) < 0.2
    assert min(final("ground_truth", "distinct answers")) > 1.3
    distinct = arms["ground_truth"]["over_seeds"]["distinct answers final"]
    assert all(arm["over_seeds"]["distinct answers final"]["mean"] < distinct["lo"] for name, arm in arms.items()
               if name != "ground_truth")


def test_sweep_every_setting_collapses_or_nearly_and_falls():
    arms = {name: arm for name, arm in _report("sweep_toy").items() if name.startswith("majority_vote")}
    assert sum(a["collapsed"] for a in arms.values()) == len(arms) * 5 - 2  # 58 of 60 runs
    assert arms["majority_vote-temperature=0.6"]["collapsed"] == arms["majority_vote-temperature=0.8"]["collapsed"] == 4
    for name, arm in arms.items():
        assert arm["over_seeds"]["min_reward_accuracy"]["mean"] < 0.02, name
        assert arm["fall"]["hi"] < 0 and arm["over_seeds"]["val_final"]["mean"] < 0.05, name


def test_mixed_rewards_track_their_parts_and_still_fall():
    mixed, methods = _report("mixed_toy"), _report("methods_toy")
    both = mixed["majority_vote+trajectory_entropy"]
    for part in ("majority_vote", "trajectory_entropy"):  # the mix's rise and fall step overlap each part's
        for key in ("rise", "fall_step"):
            assert both[key]["lo"] <= methods[part][key]["hi"] and methods[part][key]["lo"] <= both[key]["hi"], (part, key)
    for arm in mixed.values():
        assert arm["fall"]["hi"] < 0 and arm["over_seeds"]["val_final"]["mean"] < 0.05
    certain = mixed["majority_vote+self_certainty"]
    assert certain["fall_step"]["mean"] > methods["self_certainty"]["fall_step"]["hi"]  # the vote delays the failure
    assert 0 < certain["rise"]["lo"] and certain["rise"]["mean"] < methods["majority_vote"]["rise"]["mean"]  # shrinks


def test_sweep_more_updates_per_batch_collapse_sooner():
    arms = _report("sweep_toy")
    order = ["majority_vote-mini_batch=1", "majority_vote-mini_batch=8", "majority_vote-mini_batch=16",
             "majority_vote-mini_batch=32", "majority_vote-default"]  # 1, 4, 8, 16, 32 (on-policy) prompts per update
    means = [arms[name]["collapse_step"]["mean"] for name in order]
    assert means == sorted(means), means
    for fast in order[:2]:
        assert arms[fast]["fall_step"]["hi"] < arms["majority_vote-default"]["fall_step"]["lo"], fast
    for fast in order[:3]:
        assert arms[fast]["collapse_step"]["hi"] < arms["majority_vote-default"]["collapse_step"]["lo"], fast


def test_sweep_other_knobs_shift_the_collapse_within_the_intervals_rollouts_order_the_fall():
    arms = _report("sweep_toy")
    default = arms["majority_vote-default"]["collapse_step"]
    for name in ("temperature=0.6", "temperature=0.8", "temperature=1.2", "rollouts=4", "rollouts=16", "rollouts=32",
                 "kl=0.005"):
        step = arms[f"majority_vote-{name}"]["collapse_step"]
        assert step["lo"] <= default["hi"] and default["lo"] <= step["hi"], name
    rollouts = [arms[f"majority_vote-{n}"]["fall_step"] for n in ("rollouts=4", "default", "rollouts=16", "rollouts=32")]
    assert [f["mean"] for f in rollouts] == sorted(f["mean"] for f in rollouts)
    assert rollouts[0]["hi"] < rollouts[-1]["lo"]  # n 4 and n 32 apart


def test_countdown_oracle_leads_and_the_prior_verifies_below_the_base_rate():
    arms = _report("countdown_toy")
    peak = {name: arm["over_seeds"]["val_at_peak"]["mean"] for name, arm in arms.items()}
    assert peak["countdown"] == max(peak.values()) and peak["self_verify"] >= peak["trajectory_entropy"]
    for name in ("self_verify", "trajectory_entropy", "majority_vote"):  # every label-free arm falls
        assert arms[name]["fall"]["hi"] < 0 and arms[name]["over_seeds"]["val_final"]["mean"] < 0.02, name
    verify = arms["self_verify"]["over_seeds"]
    base_rate = 1 - verify["ground-truth reward start"]["mean"]  # accuracy of always answering "false"
    assert verify["reward accuracy start"]["hi"] < base_rate - 0.2
    assert verify["proxy reward start"]["lo"] > 3 * verify["ground-truth reward start"]["hi"]  # says true far too often
    assert arms["majority_vote"]["collapsed"] == 5 and arms["countdown"]["fell"] == 4
    accepted = sorted(s["proxy reward final"] for s in arms["self_verify"]["per_seed"].values())
    assert max(accepted[:3]) < 0.05 and min(accepted[3:]) > 0.7  # 3 seeds reject (nearly) all, 2 accept most


def test_sweep_self_certainty_falls_at_every_mini_batch_soonest_with_one_prompt():
    arms = {name: arm for name, arm in _report("sweep_toy").items() if name.startswith("self_certainty")}
    assert len(arms) == 5
    for name, arm in arms.items():
        assert arm["fell"] == 5 and arm["over_seeds"]["val_final"]["mean"] < 0.05, name
    one = arms["self_certainty-mini_batch=1"]["fall_step"]
    assert one["mean"] == min(arm["fall_step"]["mean"] for arm in arms.values())
    assert one["mean"] < arms["self_certainty-default"]["fall_step"]["mean"]
