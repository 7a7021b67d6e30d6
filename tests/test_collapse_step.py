"""Model Collapse Step tool: prior specs, budget semantics, rho, the report, the toy and a tiny transformer."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from scipy.stats import spearmanr

from urlvr_jax import collapse_step as cs
from urlvr_jax.rl.loop import RunResult
from urlvr_jax.utils.config import load_config


def _hf_dir(tmp_path, name="model"):
    path = tmp_path / name
    path.mkdir()
    (path / "config.json").write_text("{}")
    return str(path)


# ---------------------------------------------------------------------- prior specs


def test_parse_prior_forms(tmp_path):
    toy = cs.parse_prior("toy:1.5")
    assert (toy.kind, toy.name, toy.mu) == ("toy", "toy:1.5", 1.5)
    warm = cs.parse_prior("warm:weak=train_fraction=0.3; steps=50")
    assert (warm.kind, warm.name) == ("warm", "weak")
    assert warm.overrides == ("warm_start.train_fraction=0.3", "warm_start.steps=50")
    hf = cs.parse_prior(_hf_dir(tmp_path, "qwen"))
    assert (hf.kind, hf.name, hf.path) == ("hf", "qwen", str(tmp_path / "qwen"))


@pytest.mark.parametrize("spec", ["toy:strong", "warm:weak", "warm:=steps=5", "warm:w=steps", "/no/such/dir",
                                  "qwen3"])
def test_bad_prior_spec_lists_the_forms(spec):
    with pytest.raises(ValueError, match="bad prior spec") as err:
        cs.parse_prior(spec)
    for form in ("HF directory", "toy:<mu>", "warm:<name>=<k=v;k=v>"):
        assert form in str(err.value)


def test_parse_priors_rejects_duplicates_mixing_and_empty(tmp_path):
    assert [s.mu for s in cs.parse_priors(cs.TOY_PRIORS)] == [0.0, 1.0, 1.5, 2.0, 2.5]
    with pytest.raises(ValueError, match="unique"):
        cs.parse_priors("toy:1,toy:1")
    with pytest.raises(ValueError, match="cannot be ranked together"):
        cs.parse_priors(f"toy:1,{_hf_dir(tmp_path)}")
    with pytest.raises(ValueError, match="no prior given"):
        cs.parse_priors(" , ")


def test_cli_bad_spec_exits_with_the_forms():
    with pytest.raises(SystemExit, match="toy:<mu>"):
        cs.main(["--priors", "toy:x,toy:1"])


# ---------------------------------------------------------------------- MCS budget semantics


def test_mcs_budget_semantics():
    never = cs.mcs_from_run(None, budget=50, tokens=1000)
    assert (never.step, never.collapsed, never.tokens, never.shown()) == (50.0, False, 1000, "≥50")
    hit = cs.mcs_from_run(7, budget=50, tokens=140)
    assert (hit.step, hit.collapsed, hit.shown()) == (7.0, True, "7")


def test_run_transformer_budget_and_gain(tmp_path, monkeypatch):
    """A run that never collapses gets MCS = budget (marked); one that does gets its step; GT gain from val."""
    calls = []

    def fake_run(config, prior_dir, reward, run_dir, overrides):
        calls.append((reward, run_dir, overrides))
        os.makedirs(run_dir, exist_ok=True)
        if reward != "majority_vote":
            with open(os.path.join(run_dir, "metrics.jsonl"), "w") as f:
                for step, acc in ((0, 0.25), (1, 0.3), (4, 0.4)):
                    f.write(json.dumps({"step": step, "val/avg@k": acc}) + "\n")
            return RunResult(run_dir, 4, None, 400, {})
        aggressive = "algo.mini_batch_prompts=1" in overrides
        return RunResult(run_dir, 3 if aggressive else 9, 3 if aggressive else None, 30 if aggressive else 90, {})

    monkeypatch.setattr(cs, "_fresh_run", fake_run)
    spec = cs.PriorSpec("hf", "p", path="x")
    config = load_config("cpu_default")
    res = cs.run_transformer(config, spec, "x", ["default", "aggressive"], budget=9, gt_steps=4, labels=True,
                             out=str(tmp_path))
    assert res.mcs["default"].shown() == "≥9" and res.mcs["aggressive"].shown() == "3"
    assert (res.mcs["default"].tokens, res.mcs["aggressive"].tokens, res.gt_tokens) == (90, 30, 400)
    assert res.gt_gain == pytest.approx(0.15)
    mv = [o for r, _, o in calls if r == "majority_vote"]
    assert all("train.stop_at_collapse=true" in o and "train.steps=9" in o for o in mv)
    assert [r for r, _, _ in calls] == ["majority_vote", "majority_vote", "ground_truth"]


# ---------------------------------------------------------------------- rho and the report


def test_rank_correlation():
    assert cs.rank_correlation([1, 2, 3, 4], [0.1, 0.2, 0.5, 0.9])[0] == pytest.approx(1.0)
    assert cs.rank_correlation([1, 2, 3, 4], [4, 3, 2, 1])[0] == pytest.approx(-1.0)
    x, y = [80.5, 80.5, 80.5, 298, 400], [0.03, 0.1, 0.15, 0.19, 0.23]
    rho, note = cs.rank_correlation(x, y)
    assert rho == pytest.approx(spearmanr(x, y).statistic) and "average rank" in note
    assert rho == pytest.approx(0.8944, abs=1e-4)
    rho, note = cs.rank_correlation([50, 50, 50], [0.1, 0.2, 0.3])
    assert rho is None and "same MCS" in note
    rho, note = cs.rank_correlation([1, 2, 3], [0.0, 0.0, 0.0])
    assert rho is None and "same GT gain" in note
    rho, note = cs.rank_correlation([1, 2], [0.1, 0.2])
    assert rho is None and "at least 3" in note


def _result(name, mcs_default, mcs_aggr, gain, collapsed=True):
    mcs = {"default": cs.MCS(mcs_default, collapsed, int(mcs_default * 100)),
           "aggressive": cs.MCS(mcs_aggr, True, int(mcs_aggr * 100))}
    return cs.PriorResult(name, "hf", mcs, gain, 5000)


def test_report_table_ranking_rho_and_tokens():
    results = [_result("weak", 10, 2, 0.01), _result("mid", 40, 5, 0.05), _result("strong", 60, 5, 0.2, False)]
    summary = cs.summarize(results, ["default", "aggressive"])
    assert summary["ranking"]["default"] == ["strong", "mid", "weak"]
    assert summary["rho"]["default"]["rho"] == pytest.approx(1.0)
    assert summary["rho"]["aggressive"]["rho"] == pytest.approx(spearmanr([2, 5, 5], [0.01, 0.05, 0.2]).statistic)
    assert summary["tokens"]["gt"] == 15000 and summary["tokens"]["mcs"] == {"default": 11000, "aggressive": 1200}
    assert summary["tokens"]["ratio_gt_over_mcs"]["aggressive"] == pytest.approx(12.5)
    text = cs.format_report(results, ["default", "aggressive"], summary)
    assert "≥60" in text and "lower bound" in text
    assert "ranking by MCS (default): strong > mid > weak" in text
    assert "ranking by MCS (aggressive): mid = strong > weak" in text
    assert "Spearman rho(MCS default, GT gain) = 1.000" in text and "12.50x" in text


def test_report_without_labels():
    results = [_result("a", 10, 2, None), _result("b", 20, 3, None)]
    summary = cs.summarize(results, ["default"])
    assert summary["rho"] == {} and "gt" not in summary["tokens"]
    text = cs.format_report(results, ["default"], summary)
    assert "Spearman" not in text and "ranking by MCS (default): b > a" in text


# ---------------------------------------------------------------------- end to end


def test_toy_priors_rank_like_gt_gain(tmp_path, capsys):
    """``--toy`` (5 coupled-toy priors) with small seeds/steps: MCS predicts GT gain, rho >= 0.8."""
    out = tmp_path / "toy"
    assert cs.main(["--toy", "--protocols", "default", "--budget", "100", "--gt-steps", "16", "--toy-seeds", "2",
                    "--toy-pool", "64", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / "mcs_results.json").read_text())
    assert [p["name"] for p in data["priors"]] == cs.TOY_PRIORS.split(",")
    assert data["rho"]["default"]["rho"] >= 0.8, printed
    assert "Spearman rho(MCS default, GT gain)" in printed and "GT / MCS" in printed
    assert data["tokens"]["ratio_gt_over_mcs"]["default"] > 0


def test_transformer_end_to_end(tmp_path, capsys):
    """Two warm-started tiny transformers, the aggressive protocol (mini-batch 1) and GT RL; tiny budgets.

    (The default protocol runs the same code path with other mini-batches; left out to keep CI time.)"""
    out = tmp_path / "mcs"
    tiny = ["warm_start.steps=10", "train.steps=3", "rollout.prompts_per_step=4", "algo.mini_batch_prompts=4",
            "rollout.n=4", "data.val_size=8", "val.k=2", "train.progress=false"]
    priors = "warm:weak=train_fraction=0.2,warm:strong=train_fraction=0.9;default_fraction=0.05"
    assert cs.main(["--priors", priors, "--protocols", "aggressive", "--budget", "2", "--gt-steps", "1",
                    "--out", str(out), *tiny]) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / "mcs_results.json").read_text())
    assert [p["name"] for p in data["priors"]] == ["weak", "strong"] and data["labels"] is True
    for prior in data["priors"]:
        for mcs in prior["mcs"].values():
            assert mcs["collapsed"] or mcs["step"] == 2  # never collapsed -> the budget
            assert 1 <= mcs["step"] <= 2 and mcs["tokens"] > 0
        assert prior["gt_tokens"] > 0 and np.isfinite(prior["gt_gain"])
    assert "MCS (aggressive)" in printed and "ranking by MCS (aggressive)" in printed and "GT / MCS" in printed
    assert "needs at least 3 priors" in printed
    assert len(os.listdir(out / "priors")) == 2
