"""The per-problem / out-of-distribution views through their CLI (``python -m urlvr_jax.studies run|report
per_problem``) on tiny settings: run, resume, report, bad input."""

from __future__ import annotations

import json

from urlvr_jax.studies import cli, per_problem_report

TINY = ["warm_start.steps=4", "warm_start.batch_size=8", "warm_start.pool_size=16", "rollout.n=2", "val.k=2",
        "val.every=1", "data.val_size=8", "per_problem.k=8", "per_problem.right=0", "per_problem.wrong=2",
        "per_problem.single_steps=2", "per_problem.single_prompts=4", "per_problem.measure_every=1",
        "per_problem.pool_size=8", "per_problem.ood_steps=2", "per_problem.ood_prompts=4",
        "per_problem.ood_arms=wrong:2", "algo.old_logprobs=sampler"]


def _argv(command: str, root, *extra: str) -> list[str]:
    return [command, "per_problem", "--root", str(root), *extra, *[a for item in TINY for a in ("--set", item)]]


def test_run_resume_report(tmp_path, capsys):
    assert cli.main(_argv("run", tmp_path, "--seeds", "0")) == 0
    out = tmp_path / "per_problem" / "toy"
    prior = json.loads((out / "prior.json").read_text())
    assert len(prior["candidates"]) == 8 and len(prior["pool"]) == 8 and len(prior["picked"]) == 2
    assert not {p["prompt"] for p in prior["pool"]} & {p["prompt"] for p in prior["candidates"]}  # unseen
    lines = (out / "single" / "seed_0" / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == prior["picked"]
    assert [p["step"] for p in json.loads(lines[0])["curve"]] == [1, 2]
    final = json.loads((out / "ood_wrong_2" / "seed_0" / "final.json").read_text())  # 2 wrong-majority problems
    assert final["train_problems"] == 2 and len(final["final"]) == 8 and final["steps"] == 2
    report = json.loads((out / "report.json").read_text())
    seed = report["single"]["per_seed"]["0"]
    assert sum(seed[c] for c in per_problem_report.CATEGORIES) == 2 and seed["flipped"] <= 2
    assert report["ood"]["wrong_2"]["label_accuracy"]["steps"] == [0, 1, 2]
    capsys.readouterr()
    assert cli.main(_argv("run", tmp_path, "--seeds", "0")) == 0  # finished: nothing reruns
    assert "[single" not in capsys.readouterr().out
    assert len((out / "single" / "seed_0" / "results.jsonl").read_text().splitlines()) == 2
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "per_problem_toy.md").write_text("# Per-problem\n\nHand-written findings.\n")
    for _ in range(2):
        assert cli.main(["report", "per_problem", "--root", str(tmp_path), "--out", str(docs)]) == 0
    page = (docs / "per_problem_toy.md").read_text()
    assert page.count("Hand-written findings.") == 1 and page.count("## Results (toy scale, generated)") == 1
    assert "| amplified failure |" in page and "| 2 wrong-majority problems |" in page and "![per_problem](per_problem_toy.png)" in page
    assert (docs / "per_problem_toy.png").stat().st_size > 0


def test_bad_input_is_one_line(tmp_path, capsys):
    assert cli.main(["report", "per_problem", "--root", str(tmp_path)]) == 2
    assert "run `python -m urlvr_jax.studies run per_problem` first" in capsys.readouterr().err
    assert cli.main(_argv("run", tmp_path, "--seeds", "x")) == 2
    assert "--seeds 'x'" in capsys.readouterr().err
    assert cli.main(_argv("run", tmp_path) + ["--set", "per_problem.ood_arms=wrong:0"]) == 2
    assert "'wrong:0' is not wrong, right, wrong:N or right:N" in capsys.readouterr().err
    assert not (tmp_path / "per_problem").exists()  # refused before anything ran


def test_categories():
    assert [per_problem_report.category(b, a) for b, a in ((1, 1), (0, 0), (0, 1), (1, 0))] == list(
        per_problem_report.CATEGORIES)
