"""Prior ranking (urlvr_jax.studies.prior_ranking): the CLI end to end on fake runs (fast), bad input, and the
committed results' claims (slow: docs/prior_ranking.json, written by `prior_ranking report`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from urlvr_jax import collapse_step as cs
from urlvr_jax.studies import cli
from urlvr_jax.studies import prior_ranking as pr
from urlvr_jax.studies import prior_ranking_report as prr
from urlvr_jax.rl.loop import RunResult

DOCS = Path(__file__).resolve().parents[2] / "docs"
QUALITY = {"weak": 0.2, "mid": 0.5, "tuned": 0.8}  # fake priors: better ones collapse later and gain more


def _fake_training(monkeypatch):
    """Replace the warm start and the RL runs by cheap fakes that write what the real ones write."""
    calls = []

    def prepare(config, spec, out):
        path = os.path.join(out, "priors", spec.name)
        os.makedirs(path, exist_ok=True)
        calls.append(("prior", spec.name, spec.overrides))
        return path

    def fresh_run(config, prior_dir, reward, run_dir, overrides):
        os.makedirs(run_dir, exist_ok=True)
        q = QUALITY[os.path.basename(prior_dir)]
        o = dict(x.split("=", 1) for x in overrides)
        steps, seed = int(o["train.steps"]), int(o["seed"])
        calls.append(("run", run_dir, reward))
        rows, collapse = [{"step": 0}], None
        if o.get("val.k"):  # probe
            rows[0].update({"val/avg@k": q / 2, "val/pass@k": q, "val/pass@1": q / 2})
        for step in range(1, steps + 1):
            row = {"step": step, "train/generated_tokens": 100.0, "train/rollout_tokens": 100.0 * step,
                   "train/entropy_mean": 1 - q + 0.01 * seed}
            if reward == "majority_vote":
                row["train/reward_accuracy"] = 0.0 if step >= q * steps + seed else 0.5
                collapse = collapse or (step if row["train/reward_accuracy"] < 0.01 else None)
            if reward == "ground_truth" and not o.get("val.k") and step % int(o["val.every"]) == 0:
                row["val/avg@k"] = 0.3 + q * min(step, 4) / 10 + 0.01 * seed
            rows.append(row)
            if collapse:
                break
        rows[0].setdefault("val/avg@k", 0.3 + 0.01 * seed)
        with open(os.path.join(run_dir, "metrics.jsonl"), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        return RunResult(run_dir, len(rows) - 1, collapse, 100 * (len(rows) - 1), {})

    monkeypatch.setattr(cs, "prepare_prior", prepare)
    monkeypatch.setattr(cs, "_fresh_run", fresh_run)
    return calls


def test_cli_run_resume_report(tmp_path, monkeypatch, capsys):
    calls = _fake_training(monkeypatch)
    out, docs = tmp_path / "study", tmp_path / "docs"
    priors = "warm:weak=steps=2,warm:mid=steps=4;model.num_layers=1,warm:tuned=from=mid;noise_fraction=0"
    argv = ["run", "prior_ranking", "--priors", priors, "--seeds", "0,1", "--budget", "10", "--aggressive-budget", "8",
            "--gt-steps", "6", "--gt-every", "2", "--probe-k", "4", "--out", str(out)]
    assert cli.main(argv) == 0
    runs = [c for c in calls if c[0] == "run"]
    assert len(runs) == 3 * (1 + 2 * 3)  # a probe per prior, then 3 runs per prior and seed
    mid = next(c for c in calls if c[:2] == ("prior", "mid"))
    assert mid[2] == ("warm_start.steps=4", "model.num_layers=1")  # model.* keys set the model (width/depth)
    tuned = next(c for c in calls if c[:2] == ("prior", "tuned"))
    assert "model.source=hf" in tuned[2] and f"model.path={out}/priors/mid" in tuned[2]
    assert not any("from=" in o for o in tuned[2])
    assert cli.main(argv) == 0 and len([c for c in calls if c[0] == "run"]) == len(runs)  # resumed: nothing rerun

    (docs).mkdir()
    (docs / "prior_ranking.md").write_text("# Title\n\nHand-written finding.\n")
    assert cli.main(["report", "prior_ranking", "--out", str(out), "--docs", str(docs), "--bootstrap", "50"]) == 0
    assert cli.main(["report", "prior_ranking", "--out", str(out), "--docs", str(docs), "--bootstrap", "50"]) == 0
    md = (docs / "prior_ranking.md").read_text()
    assert "Hand-written finding." in md and md.count(prr.markers("prior_ranking")[0]) == 1 and "| tuned |" in md
    assert (docs / "prior_ranking.png").stat().st_size > 0
    data = json.loads((docs / "prior_ranking.json").read_text())
    assert data["command"].startswith("python -m urlvr_jax.studies report prior_ranking")
    assert data["study"]["seeds_used"] == [0, 1]
    rows = data["summary"]["priors"]
    assert list(rows) == ["weak", "mid", "tuned"]
    assert rows["weak"]["mcs_default"] == pytest.approx(2.5)  # collapses at 0.2 * 10 + seed
    assert rows["weak"]["mcs_default_collapsed"] == 2
    assert rows["tuned"]["gt"]["peak_step"] == 4 and rows["tuned"]["gt_gain"] == pytest.approx(0.32)
    assert rows["tuned"]["tokens_gt_peak"] == 400
    assert rows["mid"]["passk_gain"] == pytest.approx(0.25)
    for key in ("mcs_default", "mcs_aggressive", "passk_gain"):
        r = data["summary"]["rho"][key]
        assert r["rho"] == pytest.approx(1.0) and r["seeds_resampled"]["lo"] <= 1.0
    assert data["summary"]["rho"]["entropy"]["rho"] == pytest.approx(-1.0)
    tokens = data["summary"]["tokens"]
    assert tokens["ratio_gt_over_mcs_default"] == pytest.approx(tokens["gt_to_peak"] / tokens["mcs_default"])


@pytest.mark.parametrize("args, cause", [
    (["--priors", "warm:a=steps=2,warm:t=from=nope;steps=1"], "from=nope must name a prior listed before it"),
    (["--priors", "toy:1,toy:2,toy:3"], "needs warm:<name>=<k=v;...> priors"),
    (["--seeds", "0,x"], "--seeds '0,x': give distinct non-negative integers"),
    (["--gt-steps", "0"], "--gt-steps must be >= 1"),
    (["--only", "base,huge"], "--only names unknown priors ['huge']"),
])
def test_bad_input_names_the_cause(args, cause, tmp_path):
    pattern = cause.replace("+", r"\+").replace("[", r"\[").replace("]", r"\]")
    with pytest.raises((SystemExit, ValueError), match=pattern):
        cli.main(["run", "prior_ranking", "--out", str(tmp_path), *args])


def test_report_before_run_names_the_missing_study(tmp_path):
    with pytest.raises(SystemExit, match="study.json is missing"):
        cli.main(["report", "prior_ranking", "--out", str(tmp_path / "none"), "--docs", str(tmp_path)])


# ------------------------------------------------------------------ the committed results (slow)


def _committed(name: str = "prior_ranking") -> dict:
    path = DOCS / f"{name}.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `python -m urlvr_jax.studies report prior_ranking` (see the page)")
    return json.loads(path.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["prior_ranking", "prior_ranking_mc"])
def test_committed_results_are_recomputed_from_their_per_seed_data(name):
    data = _committed(name)
    assert len(data["priors"]) >= 6 and len(data["study"]["seeds_used"]) >= 3
    summary = prr.summarise(data, resamples=200)
    for target, rhos in data["summary"]["rho_by_target"].items():
        for key, r in rhos.items():
            assert summary["rho_by_target"][target][key]["rho"] == pytest.approx(r["rho"]), (target, key)
    for name, row in data["summary"]["priors"].items():
        assert row["gt_gain"] == pytest.approx(summary["priors"][name]["gt_gain"]), name
        assert row["mcs_default_collapsed"] == row["n_seeds"], name  # every MCS is a measured step, not the budget


@pytest.mark.slow
def test_mcs_does_not_rank_gt_gain_it_ranks_the_priors_strength():
    """Measured (docs/prior_ranking.md): rho(MCS default, GT gain) = -0.45, nowhere near the 0.8 the issue asks
    for; the bound is the seeds-resampled interval's top. MCS ranks the prior's own accuracy instead."""
    rho = _committed()["summary"]["rho_by_target"]
    assert rho["gt_gain"]["mcs_default"]["seeds_resampled"]["hi"] < 0.8
    assert rho["gt_gain"]["mcs_aggressive"]["seeds_resampled"]["hi"] < 0.8
    assert rho["gt_start"]["mcs_default"]["seeds_resampled"]["lo"] > 0
    assert rho["gt_peak"]["mcs_default"]["seeds_resampled"]["lo"] > 0


@pytest.mark.slow
def test_baselines_pass_at_k_gain_inverts_and_entropy_orders_base_above_tuned():
    data = _committed()["summary"]
    rows, rho = data["priors"], data["rho_by_target"]
    assert rho["gt_peak"]["passk_gain"]["seeds_resampled"]["hi"] < 0  # the most "potential" goes least far
    top = max(rows, key=lambda n: rows[n]["passk_gain"])
    assert rows[top]["gt"]["peak"] == min(r["gt"]["peak"] for r in rows.values())
    base, tuned = rows["base"]["entropy_interval"], rows["tuned"]["entropy_interval"]
    assert tuned["hi"] < base["lo"]  # the base model starts with more entropy than its tuned variant


@pytest.mark.slow
def test_token_ratio_as_printed():
    tokens = _committed()["summary"]["tokens"]
    assert tokens["ratio_gt_over_mcs_default"] < 1  # the default-protocol MCS costs more than GT RL to its peak
    assert tokens["ratio_gt_over_mcs_aggressive"] > tokens["ratio_gt_over_mcs_default"]


@pytest.mark.slow
def test_multiple_choice_pass_at_k_stays_below_one_and_mcs_still_misses_gt_gain():
    """Measured on the 4-option variant (docs/prior_ranking.md): the priors' pass@64 is 0.51-0.79, not 1 (they do
    not spread their samples over the listed options; 0.9 is ~3 binomial SE above the largest at 128 problems);
    rho(MCS default, GT gain) = -0.60, again below 0.8 by its seeds-resampled interval; `biased` again has the
    shortest MCS and the largest gain."""
    data = _committed("prior_ranking_mc")
    rows, rho = data["summary"]["priors"], data["summary"]["rho_by_target"]
    assert len(rows) >= 6 and len(data["study"]["seeds_used"]) >= 3
    assert max(r["passk"] for r in rows.values()) < 0.9
    assert rho["gt_gain"]["mcs_default"]["seeds_resampled"]["hi"] < 0.8
    assert min(rows, key=lambda n: rows[n]["mcs_default"]) == max(rows, key=lambda n: rows[n]["gt_gain"]) == "biased"
