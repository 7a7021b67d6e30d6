"""``python -m urlvr_jax.evaluate`` through ``main(argv)``: on the checkpoint of a 1-step tiny training run and on
the same weights as a Hugging Face directory (the run's export), over the MATH-500 and AIME24 fixtures; the
training loop's validation computes the same numbers through ``urlvr_jax.evaluation``; bad inputs fail in one
line. Slow: SmolLM2-135M-Instruct over 20 MATH-500-style problems."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jax
import numpy as np
import pytest

from urlvr_jax import evaluate, evaluation
from urlvr_jax.tasks.datasets import DATA_DIR_ENV

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY = ("train.progress=false", "model.num_layers=1", "model.hidden_size=16", "model.intermediate_size=32",
        "model.num_heads=2", "model.num_kv_heads=1", "model.head_dim=8", "rollout.prompts_per_step=2",
        "rollout.n=2", "algo.mini_batch_prompts=2", "algo.report_ref_kl=false", "rollout.max_new_tokens=8",
        "rollout.max_prompt_len=384", "model.max_position_embeddings=400", "data.chat_template=false",
        "data.template=raw")
# What the run's config.json says and --model must be told: its prompts and response budget.
AS_THE_RUN = ("data.template=raw", "data.chat_template=false", "tokenizer.add_special_tokens=true",
              "rollout.max_prompt_len=384", "--max-new-tokens", "8")


def _rows(path: Path) -> int:
    return len(path.read_text().splitlines())


def data_root(tmp_path: Path, *names: str, source: Path = FIXTURES / "datasets") -> Path:
    """A ``$URLVR_DATA_DIR`` linking to fixture datasets (so prepared TFDS files land in ``tmp_path``)."""
    root = tmp_path / "data"
    root.mkdir(exist_ok=True)
    for name in names:
        (root / name).symlink_to(source / name)
    return root


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 1-step majority-vote run on the MATH-500 fixture, exported as a Hugging Face directory too."""
    from urlvr_jax.train import main

    tmp = tmp_path_factory.mktemp("eval")
    root = data_root(tmp, "math500", "aime24")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_DIR_ENV, str(root))
        run_dir = tmp / "run"
        assert main(["--config", "tiny_gt", *TINY, "data.task=", "data.dataset=math500", "reward.name=majority_vote",
                     "train.steps=1", "val.every=0", "train.export_hf=true", f"run_dir={run_dir}"]) == 0
    return root, run_dir


def _evaluate(capsys, monkeypatch, root, *argv):
    monkeypatch.setenv(DATA_DIR_ENV, str(root))
    rc = evaluate.main([*argv, "--no-progress"])
    out, err = capsys.readouterr()
    return rc, out, err


def test_run_checkpoint_and_its_hf_export_score_the_same(tiny_run, tmp_path, capsys, monkeypatch):
    root, run_dir = tiny_run
    common = ("--k", "4", "--seed", "3", "--batch-prompts", "4")
    rc, out, err = _evaluate(capsys, monkeypatch, root, "--run", str(run_dir), "--datasets", "math500,aime24",
                             *common, "--out", str(tmp_path / "run.json"))
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["dataset", "problems", "avg@4", "pass@4", "maj@4", "mean", "length"]
    assert [line.split()[0] for line in lines[1:3]] == ["math500", "aime24"]
    results = json.loads((tmp_path / "run.json").read_text())
    assert results["checkpoint_step"] == 1
    assert results["protocol"] == {"k": 4, "temperature": 0.6, "top_p": 0.95, "seed": 3, "max_new_tokens": 8,
                                   "template": "raw", "chat_template": "false"}
    for name, scores in results["datasets"].items():
        assert scores["problems"] == _rows(FIXTURES / "datasets" / name / "test.jsonl")
        assert 0 <= scores["avg@4"] <= scores["pass@4"] <= 1 and 0 <= scores["maj@4"] <= 1, (name, scores)
        assert scores["pass@1"] == pytest.approx(scores["avg@4"]) and 1 <= scores["response_length"] <= 8
        assert f"{scores['avg@4']:.4f}" in out

    # The same weights as a Hugging Face directory, prompted as the run prompts: the same samples and scores.
    rc, out_hf, err = _evaluate(capsys, monkeypatch, root, "--model", str(run_dir / "hf"), "--datasets", "math500",
                                *common, *AS_THE_RUN, "--out", str(tmp_path / "hf.json"))
    assert rc == 0, err
    from_hf = json.loads((tmp_path / "hf.json").read_text())
    assert from_hf["model"] == str(run_dir / "hf") and from_hf["datasets"] == {"math500": results["datasets"]["math500"]}
    assert out_hf.splitlines()[:2] == lines[:2]


def test_checkpoint_params_are_the_trained_ones(tiny_run, monkeypatch):
    from urlvr_jax.model.hf_io import load_hf

    root, run_dir = tiny_run
    monkeypatch.setenv(DATA_DIR_ENV, str(root))
    args, overrides = evaluate.parse_args(["--run", str(run_dir), "--datasets", "math500"])
    _, cfg, params, _, step = evaluate.load_policy(args, evaluate.run_config(args, overrides))
    _, exported = load_hf(str(run_dir / "hf"))
    assert step == 1
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), params, exported)


def test_validation_is_evaluate_examples(tmp_path):
    """The loop's validation numbers, recomputed by ``evaluation`` from the same sampler, params and keys."""
    from urlvr_jax.rl import setup
    from urlvr_jax.rl.loop import URLVRRun
    from urlvr_jax.utils.config import apply_overrides, load_config

    config = apply_overrides(load_config("tiny_gt"), [*TINY, "data.val_size=6", "val.k=3", "rollout.n=2",
                                                      f"run_dir={tmp_path}"])
    run = URLVRRun(config)
    expected = run.validate(5)
    key = jax.random.fold_in(run.rng, 2_000_000 + 5)

    def rollout_batch(part, start):
        prompts = setup.prompt_texts(config, run.tokenizer, part)
        _, host, texts = evaluation.sample_texts(config, run.tokenizer, run.val_sampler, run.state.params, prompts,
                                                 jax.random.fold_in(key, start), 3)
        return evaluation.reward_batch(host, texts, part, 3, run.extract)

    chunks = []
    got = evaluation.evaluate_examples(run.val_examples, 3, rollout_batch, chunk=config.rollout.prompts_per_step,
                                       gt_reward=run.gt_reward, on_chunk=chunks.append)
    assert got == expected and set(got) == {"avg@k", "pass@k", "pass@1", "response_length", "maj@k"}
    assert chunks == [2, 2, 2]
    sampler = evaluation.validation_sampler(config, run.cfg, run.tokenizer, run.mesh)
    assert (sampler.sampling, sampler.buckets) == (run.val_sampler.sampling, run.val_sampler.buckets)


@pytest.mark.parametrize("argv,message", [
    (("--model", "/no/such/dir", "--datasets", "math500"),
     "error: --model /no/such/dir: not a Hugging Face directory or a .gguf file"),
    (("--run", "/no/such/run", "--datasets", "math500"),
     "error: /no/such/run: no config.json (expected a run directory of urlvr_jax.train)"),
    (("--run", "RUN", "--datasets", "math500,aime25"),
     "error: No data file for dataset 'aime25' (split 'test') in DATA/aime25."),
    (("--run", "RUN", "--datasets", "math501"),
     "error: --datasets: unknown dataset 'math501'; known: dapo17k, math500, aime24, aime25, amc23, countdown"),
    (("--run", "RUN", "--datasets", "math500:train"),
     "error: dataset 'math500' has splits ['test'], got split 'train'"),
    (("--run", "RUN", "--datasets", "math500", "rollout.max_prompt_len=16"),
     "error: * prompt(s) exceed rollout.max_prompt_len=16 tokens (longest *); raise it or filter the data"),
])
def test_bad_inputs_fail_in_one_line(tiny_run, capsys, monkeypatch, argv, message):
    root, run_dir = tiny_run
    argv = [str(run_dir) if a == "RUN" else a for a in argv]
    rc, out, err = _evaluate(capsys, monkeypatch, root, *argv)
    pattern = re.escape(message.replace("DATA", str(root))).replace(r"\*", r"\d+") + "\n"
    assert rc == 2 and out == "" and re.fullmatch(pattern, err), err


def test_run_without_checkpoints(tiny_run, tmp_path, capsys, monkeypatch):
    root, run_dir = tiny_run
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text((run_dir / "config.json").read_text())
    rc, out, err = _evaluate(capsys, monkeypatch, root, "--run", str(tmp_path / "run"), "--datasets", "math500")
    assert (rc, err) == (2, f"error: {tmp_path / 'run'}: no checkpoints/ directory (the run saved no checkpoint)\n")


@pytest.mark.slow
def test_smollm2_on_twenty_math500_problems(tmp_path, capsys, monkeypatch):
    from urlvr_jax.model import smollm2

    root = data_root(tmp_path, "math500", source=FIXTURES / "math500_20")
    rc, out, err = _evaluate(capsys, monkeypatch, root, "--model", smollm2.hf_dir(), "--datasets", "math500",
                             "--k", "2", "--max-new-tokens", "128", "--batch-prompts", "20",
                             "--out", str(tmp_path / "r.json"))
    assert rc == 0, err
    print(out)
    scores = json.loads((tmp_path / "r.json").read_text())["datasets"]["math500"]
    assert scores["problems"] == 20 and 0 <= scores["avg@2"] <= scores["pass@2"] <= 1
    assert scores["pass@2"] > 0, scores  # the easy problems (2 + 3, 7 x 8, ...) are answered and graded right


@pytest.mark.slow
def test_smollm2_math500_config_trains_two_steps_then_evaluates(tmp_path):
    """configs/smollm2_math500.py as shipped (validation cut to 8 problems), 2 TTRL steps on the 20-problem
    fixture, then the evaluation command on its checkpoint: both as a user runs them, in their own processes on
    one CPU device. In this test session's process (8 fake CPU devices, one mesh, all in this machine's memory) the
    run was OOM-killed at 21.4 GB of RSS; one device peaked at 7.0 GiB through its first step."""
    import os
    import subprocess
    import sys

    root = data_root(tmp_path, "math500", source=FIXTURES / "math500_20")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {DATA_DIR_ENV: str(root)}
    run = lambda *argv: subprocess.run([sys.executable, "-m", *argv], env=env, capture_output=True, text=True,
                                       timeout=3600)
    run_dir = tmp_path / "run"
    result = run("urlvr_jax.train", "--config", "smollm2_math500", "train.steps=2", "train.progress=false",
                 "data.val_size=8", f"run_dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if "train/proxy_reward" in r]
    assert [r["step"] for r in train] == [1, 2]
    assert all(0 <= r["train/proxy_reward"] <= 1 and 0 <= r["train/ground_truth_reward"] <= 1 for r in train)
    assert {r["step"] for r in records if "val/avg@k" in r} == {0, 2}
    print(result.stdout)
    result = run("urlvr_jax.evaluate", "--run", str(run_dir), "--datasets", "math500", "--k", "2", "--limit", "8",
                 "--max-new-tokens", "128", "--no-progress", "--out", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr[-3000:]
    print(result.stdout)
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["checkpoint_step"] == 2 and results["datasets"]["math500"]["problems"] == 8
