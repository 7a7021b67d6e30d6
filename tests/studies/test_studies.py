"""The study tables: every run's config resolves at both scales, the runner's list / dry-run, a 2-step toy run."""

from __future__ import annotations

import json
import os
import numpy as np

import pytest

from urlvr_jax.studies import cli
from urlvr_jax.studies import runner as studies
from urlvr_jax.utils.config import load_config

ALL_RUNS = [(study, scale, run) for study in studies.STUDIES for scale in studies.SCALES
            for run in studies.study_runs(study, scale)]


def _arg(run: studies.Run, scale: str, root: str) -> str:
    labels = ",".join(f"{k}={v}" for k, v in run.labels.items())
    return f"study:study={run.study},{labels},scale={scale},root={root},warm=skip"


def _check(config) -> None:
    """What the loop checks before it runs, without building a model."""
    from urlvr_jax.rewards.registry import get_reward
    from urlvr_jax.rl.data import make_task
    from urlvr_jax.tasks.datasets.specs import SPECS

    assert config.rollout.prompts_per_step % config.algo.mini_batch_prompts == 0
    rows = config.algo.mini_batch_prompts * config.rollout.n
    assert rows % (config.algo.micro_batch_rollouts or rows) == 0
    for part in config.reward.name.split(","):
        get_reward(part.partition(":")[0])
    for name in (config.data.dataset, config.data.val_dataset):
        assert not name or name in SPECS
    assert config.data.dataset or make_task(config.data) is not None
    if config.study.scale == "toy":
        assert config.model.source == "hf" and config.model.path == config.study.prior_dir
        assert config.tokenizer.kind == "hf"


def test_study_sizes():
    counts = {s: len({r.name for r in studies.study_runs(s)}) for s in studies.STUDIES}
    assert counts == {"methods": 5 + 6 + 1 + 3, "failure_modes": 6, "mixed": 2, "sweep": 5 * (1 + 3 + 4 + 3 + 1), "dataset_size": 6, "ttt": 2,
                      "countdown": 4}


@pytest.mark.parametrize("study,scale", [(s, sc) for s in studies.STUDIES for sc in studies.SCALES])
def test_every_run_resolves(study, scale, tmp_path):
    runs = [r for s, sc, r in ALL_RUNS if (s, sc) == (study, scale)]
    for run in runs:
        config = load_config(_arg(run, scale, str(tmp_path)))
        assert config.run_dir == os.path.join(str(tmp_path), study, scale, run.name, "seed_0")
        assert json.loads(config.study.labels) == run.labels
        _check(config)
    assert not os.listdir(tmp_path)  # prior=skip: nothing warm-started, nothing written


def test_scale_mapping(tmp_path):
    get = lambda arg: load_config(f"study:{arg},root={tmp_path},warm=skip")
    paper = get("study=sweep,method=probability,knob=mini_batch,value=1,scale=paper")
    assert (paper.algo.mini_batch_prompts, paper.algo.micro_batch_rollouts, paper.rollout.max_new_tokens) == (1, 8, 7168)
    assert paper.optim.lr == 1e-6 and paper.rollout.temperature == 1.0 and paper.algo.kl_coef == 0.0
    toy = get("study=sweep,method=probability,knob=mini_batch,value=8")
    assert toy.algo.mini_batch_prompts == 4 and toy.rollout.prompts_per_step == 32
    kl = get("study=sweep,method=majority_vote,knob=kl,value=0.005,scale=paper")
    assert (kl.algo.kl_coef, kl.algo.kl_estimator) == (0.005, "k3")
    size = get("study=dataset_size,size=512,seed=2,scale=paper")
    assert (size.data.split, size.train.steps, size.rollout.prompts_per_step, size.seed) == ("train[1024:1536]", 600, 32, 2)
    toy_size = get("study=dataset_size,size=512,seed=2")
    assert (toy_size.data.pool_size, toy_size.train.steps) == (128, 150)  # same epochs: 512*... / 4
    ttt = get("study=ttt,arm=test_split,scale=paper")
    assert ttt.data.dataset == ttt.data.val_dataset == "amc23" and ttt.rollout.prompts_per_step == 40
    b = get("study=methods,method=majority_vote,prior=B,seed=1")
    assert (b.warm_start.default_fraction, b.seed, b.reward.name) == (0.16, 1, "majority_vote")
    assert b.study.prior_dir == os.path.join(str(tmp_path), "prior_B") and b.run_dir.endswith("prior=B/seed_1")
    a = get("study=methods,method=majority_vote,prior=A")
    assert a.warm_start.default_fraction == 0.08 and a.study.prior_dir == os.path.join(str(tmp_path), "prior")
    cd = get("study=countdown,arm=self_verify,scale=paper")
    assert (cd.data.dataset, cd.data.val_split, cd.val.k, cd.reward.name) == ("countdown", "train[-1000:]", 16, "self_verify")


def test_toy_ttt_validates_on_its_training_pool():
    from urlvr_jax.rl.data import train_source, validation_examples

    config = studies.build_config(studies.select(studies.study_runs("ttt"), {"arm": "test_split"})[0], "toy")
    pool = {ex.prompt for ex in train_source(config.data, 32, config.seed).pool}
    val = {ex.prompt for ex in validation_examples(config.data)}
    assert val <= pool and len(val) >= 0.9 * len(pool)


def test_countdown_toy_prompts_fit_the_char_tokenizer():
    from urlvr_jax.rl import setup
    from urlvr_jax.rl.data import make_task

    base = studies.toy_base("countdown")
    tokenizer = setup.build_tokenizer(base)
    examples = make_task(base.data).generate(8, seed=0)
    for text in setup.prompt_texts(base, tokenizer, examples) + [ex.solution for ex in examples]:
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
        assert tokenizer.unk_token_id not in ids and len(ids) <= base.rollout.max_prompt_len


@pytest.mark.parametrize("arg,message", [
    ("study=swep", "valid studies: methods, failure_modes, mixed, sweep, dataset_size, ttt, countdown"),
    ("study=ttt,arm=test_split,seed=x", "seed='x' is not a non-negative integer"),
    ("study=sweep,method=foo,knob=kl,value=off", "valid values: majority_vote, probability"),
    ("study=sweep,method=probability,knob=lr,value=1", "valid values: kl, mini_batch, rollouts, temperature"),
    ("study=sweep,method=probability,knob=kl,value=0.1", "valid values: 0.005, off"),
    ("study=sweep,method=probability", "match 12 runs"),
    ("study=ttt,arm=test_split,scale=huge", "valid scales: toy, paper"),
    ("", "needs study=NAME"),
])
def test_bad_args_list_the_valid_ones(arg, message):
    with pytest.raises(ValueError, match=message):
        load_config(f"study:{arg}" if arg else "study")


def test_list_and_dry_run(tmp_path, capsys):
    assert cli.main(["list", "countdown", "--scale", "paper"]) == 0
    out = capsys.readouterr().out
    assert "countdown (paper): 4 arms x 3 seeds" in out and "study=countdown,arm=self_verify,scale=paper" in out
    assert cli.main(["run", "sweep", "--only", "method=majority_vote", "--root", str(tmp_path), "--dry-run",
                         "--seeds", "0,4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 24 and all(line.startswith("[dry-run ") and " sweep/toy/majority_vote-" in line
                                    for line in lines)
    assert lines[0].endswith("seed 0 -> " + os.path.join(str(tmp_path), "sweep", "toy", "majority_vote-temperature=0.6",
                                                         "seed_0"))
    assert " seed 4 -> " in lines[12]  # seed by seed: every arm of seed 0 first
    assert not os.listdir(tmp_path)
    assert cli.main(["run", "sweep", "--only", "knob=lr", "--dry-run"]) == 2
    assert "valid values" in capsys.readouterr().err
    assert cli.main(["run", "ttt", "--seeds", "a", "--dry-run"]) == 2
    assert "--seeds 'a'" in capsys.readouterr().err
    assert cli.main(["report", "ttt", "--root", str(tmp_path), "--out", str(tmp_path / "docs")]) == 2
    assert "no finished run" in capsys.readouterr().err and not (tmp_path / "docs").exists()


def test_toy_run_end_to_end_two_seeds_then_report(tmp_path, capsys):
    """`studies run` on 2 seeds through the CLI, a rerun skips them, `studies report` writes the docs page."""
    tiny = ["warm_start.steps=4", "warm_start.batch_size=8", "warm_start.pool_size=16", "train.steps=2",
            "train.progress=false", "rollout.prompts_per_step=4", "rollout.n=2", "algo.mini_batch_prompts=4",
            "data.pool_size=4", "data.val_size=4", "val.k=2", "val.every=1",
            "algo.old_logprobs=sampler", "algo.report_ref_kl=false"]
    sets = [arg for item in tiny for arg in ("--set", item)]
    argv = ["run", "ttt", "--only", "arm=test_split", "--seeds", "0,1", "--root", str(tmp_path), *sets]
    assert cli.main(argv) == 0
    out_dir = tmp_path / "ttt" / "toy"
    assert (tmp_path / "prior" / "config.json").exists()
    for seed in (0, 1):
        assert (out_dir / "test_split" / f"seed_{seed}" / "study_done.json").exists()
    report = json.loads((out_dir / "report.json").read_text())
    arm = report["arms"]["test_split"]
    assert arm["seeds"] == [0, 1] and arm["steps"] == 2 and arm["over_seeds"]["val_start"]["n"] == 2
    assert arm["over_seeds"]["repetition final"]["mean"] is not None  # failure-mode metrics logged by the loop
    capsys.readouterr()
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.count("[done ") == 2
    docs = tmp_path / "docs"
    (docs).mkdir()
    (docs / "ttt_toy.md").write_text("# Study: ttt\n\nHand-written findings.\n")
    assert cli.main(["report", "ttt", "--root", str(tmp_path), "--out", str(docs)]) == 0
    page = (docs / "ttt_toy.md").read_text()
    assert "Hand-written findings." in page and "| test_split | 2 |" in page and "![ttt](ttt_toy.png)" in page
    assert (docs / "ttt_toy.png").stat().st_size > 0 and json.loads((docs / "ttt_toy.json").read_text())["seeds"] == [0, 1]
    assert cli.main(["report", "ttt", "--root", str(tmp_path), "--out", str(docs)]) == 0
    assert (docs / "ttt_toy.md").read_text() == page  # the generated section is replaced, not appended


def test_report_numbers_by_hand():
    from urlvr_jax.studies import report as R

    assert R.fall_step({0: 0.3, 10: 0.5, 20: 0.35, 30: 0.2, 40: 0.1}) == 30
    assert R.fall_step({0: 0.3, 10: 0.5, 20: 0.4}) is None and R.fall_step({0: 0.3}) is None
    assert R.fall_step({0: 0.3, 10: 0.2}) == 10  # the peak is the start
    records = lambda accuracy, vals: ([{"step": s, "val/avg@k": v} for s, v in vals]
                                      + [{"step": s + 1, "train/reward_accuracy": a} for s, a in enumerate(accuracy)])
    seeds = {0: records([0.5, 0.2, 0.005], [(0, 0.3), (2, 0.5), (3, 0.1)]),
             1: records([0.6, 0.3, 0.1], [(0, 0.4), (2, 0.6), (3, 0.5)])}
    arm = R.arm_summary(seeds, {"method": "majority_vote"}, "majority_vote")
    assert (arm["collapsed"], arm["collapse_step"]["mean"], arm["peak_step"], arm["fell"]) == (1, 3, 2, 1)
    assert arm["rise"]["mean"] == pytest.approx(0.2) and arm["fall"]["mean"] == pytest.approx(-0.25)
    assert arm["over_seeds"]["min_reward_accuracy"]["mean"] == pytest.approx((0.005 + 0.1) / 2)
    real = R.arm_summary(seeds, {"method": "self_consistency"}, "self_consistency")
    assert real["binary_reward"] is False and real["collapsed"] == 0 and R._collapse(real) == "n/a (real-valued reward)"


def test_countdown_prior_is_taught_to_verify():
    """The toy Countdown prior's verification pairs: the self_verify reward's own prompts (compact, within the
    prompt budget), verdicts equal to the Countdown checker's, about half of them true, some on the default answer;
    solutions with a changed operator keep the numbers."""
    from urlvr_jax.toy.warm_start import WarmStartConfig, _change_operator, verification_pairs
    from urlvr_jax.rewards.countdown import check_countdown, extract_countdown_answer
    from urlvr_jax.rl.data import make_task

    base = studies.toy_base("countdown")
    examples = make_task(base.data).generate(64, seed=0)
    assert examples[0].prompt.endswith(f">{examples[0].info['target']}:")
    ws = WarmStartConfig(verify_template=studies.TOY_VERIFY_TEMPLATE, default_answer=base.warm_start.default_answer)
    pairs = verification_pairs(examples, ws, 400)
    by_prompt = {}
    for ex in examples:
        listed = ", ".join(map(str, ex.info["numbers"]))
        by_prompt[f"{listed}>{ex.info['target']}?"] = ex
    for prompt, verdict in pairs:
        head, candidate = prompt.split("?", 1)
        ex = by_prompt[head + "?"]
        right = check_countdown(extract_countdown_answer(candidate[:-1]), ex.info["numbers"], ex.info["target"])
        assert verdict == ("true" if right else "false") and candidate.endswith("</answer>=")
        assert len(prompt) <= base.rollout.max_prompt_len
    assert any(base.warm_start.default_answer in p for p, _ in pairs)
    share = sum(v == "true" for _, v in pairs) / len(pairs)
    assert 0.4 < share < 0.65, share
    rng = np.random.default_rng(0)
    changed = _change_operator("<answer>3 * 5 + 7</answer>", rng)
    assert changed != "<answer>3 * 5 + 7</answer>" and changed.count("</answer>") == 1
    assert [c for c in changed if c.isdigit()] == ["3", "5", "7"]
