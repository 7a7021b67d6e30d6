"""Training on every dataset builder, end to end: ``urlvr_jax.train.main`` (the CLI entry point, in process) runs a
tiny model 2 steps on fixture files (tests/fixtures/datasets, see make_fixtures.py) with ``$URLVR_DATA_DIR``
pointing at them, validating on another dataset; metrics.jsonl must hold both steps with finite rewards and
validation at steps 0 and 2.

The normal suite (``FAST``) trains every dataset with ``majority_vote`` and with ``ground_truth`` (Countdown also
with its verifier ``countdown`` and with ``self_verify``), and trains or validates on every file layout at least
once (test_datasets.py checks that each layout loads to the same examples). Every other (dataset, layout,
reward) triple is ``slow``. All runs share one shape (every fixture prompt falls in the 384-token prompt
bucket, validation samples as the rollouts do, and rollout.max_prompt_len=512 leaves room for self_verify's
prompts), so after the first run the compiled programs come from the persistent compilation cache.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from urlvr_jax.tasks.datasets import DATA_DIR_ENV
from urlvr_jax.train import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "datasets"
MAPPED = "data.fields=question=query,answer=gold,solution=explanation"
TINY = (
    "train.progress=false", "train.steps=2", "train.checkpoint_every=2", "val.every=2",
    "model.num_layers=1", "model.hidden_size=16", "model.intermediate_size=32", "model.num_heads=2",
    "model.num_kv_heads=1", "model.head_dim=8", "model.max_position_embeddings=520",
    "rollout.prompts_per_step=2", "rollout.n=2", "algo.mini_batch_prompts=2", "algo.report_ref_kl=false",
    "rollout.max_new_tokens=8", "rollout.max_prompt_len=512", "reward.verify_max_new_tokens=8",
    "data.val_size=2", "val.k=2", "val.temperature=1.0", "val.top_p=1.0", "data.chat_template=false",
)
# dataset -> its layouts (plain: tests/fixtures/datasets/<name>; others: .../datasets/layouts/<layout>/<name>)
LAYOUTS = {
    "math500": ("plain", "capitalised", "ttrl", "verl", "mapped"),
    "aime24": ("plain", "capitalised", "verl"),
    "aime25": ("plain", "ttrl"),
    "amc23": ("plain", "ref_answer"),
    "dapo17k": ("plain", "verl", "dapo_label"),
    "countdown": ("plain", "tinyzero", "verl"),
}
MATH_REWARDS = ("majority_vote", "ground_truth")
COUNTDOWN_REWARDS = ("majority_vote", "ground_truth", "countdown", "self_verify")
# The normal suite: every dataset with each reward; every layout is trained on or validated on at least once.
# (train dataset, its layout, reward, validation dataset, its layout)
FAST = [
    ("math500", "plain", "majority_vote", "aime24", "capitalised"),
    ("math500", "mapped", "ground_truth", "aime24", "verl"),  # data.fields also applies to the validation set
    ("aime24", "plain", "ground_truth", "math500", "capitalised"),
    ("aime24", "verl", "majority_vote", "math500", "ttrl"),
    ("aime25", "plain", "majority_vote", "math500", "verl"),
    ("aime25", "ttrl", "ground_truth", "amc23", "ref_answer"),
    ("amc23", "plain", "ground_truth", "aime25", "plain"),
    ("amc23", "ref_answer", "majority_vote", "dapo17k", "plain"),
    ("dapo17k", "verl", "ground_truth", "amc23", "plain"),
    ("dapo17k", "dapo_label", "majority_vote", "aime24", "plain"),
    ("countdown", "plain", "majority_vote", "countdown", "plain"),
    ("countdown", "tinyzero", "ground_truth", "countdown", "tinyzero"),
    ("countdown", "verl", "countdown", "countdown", "verl"),
    ("countdown", "verl", "self_verify", "countdown", "verl"),
    ("countdown", "plain", "countdown", "math500", "plain"),  # validation graded by its own dataset's protocol
]


def cases():
    """FAST, then (slow) every other (dataset, layout, reward), validated on the plain aime24 (math500 for
    aime24) or on Countdown itself."""
    yield from (pytest.param(*case, id="-".join(case[:3])) for case in FAST)
    fast = {case[:3] for case in FAST}
    for name, layouts in LAYOUTS.items():
        for layout in layouts:
            for reward in COUNTDOWN_REWARDS if name == "countdown" else MATH_REWARDS:
                if (name, layout, reward) not in fast:
                    val = ("countdown", layout) if name == "countdown" else (
                        "math500" if name == "aime24" else "aime24", "plain")
                    yield pytest.param(name, layout, reward, *val, marks=pytest.mark.slow,
                                       id=f"{name}-{layout}-{reward}")


def layout_dir(name: str, layout: str) -> Path:
    return FIXTURES / name if layout == "plain" else FIXTURES / "layouts" / layout / name


def data_root(tmp_path: Path, links: dict[str, Path]) -> Path:
    """A data root of links to fixture folders, so the prepared TFDS files go to ``tmp_path``."""
    root = tmp_path / "data"
    root.mkdir()
    for name, target in links.items():
        (root / name).symlink_to(target)
    return root


@pytest.mark.parametrize("name, layout, reward, val_name, val_layout", list(cases()))
def test_train_two_steps(tmp_path, monkeypatch, name, layout, reward, val_name, val_layout):
    links = {val_name: layout_dir(val_name, val_layout), name: layout_dir(name, layout)}
    monkeypatch.setenv(DATA_DIR_ENV, str(data_root(tmp_path, links)))
    val_split = ("test" if layout == "verl" else "train[-2:]") if val_name == "countdown" else ""
    template = "raw" if name == "countdown" else "boxed"  # the Countdown question carries its own instruction
    run_dir = tmp_path / "run"
    assert main(["--config", "tiny_gt", *TINY, "data.task=", f"data.dataset={name}", f"data.template={template}",
                 f"data.val_dataset={val_name}", f"data.val_split={val_split}", f"reward.name={reward}",
                 *((MAPPED,) if "mapped" in (layout, val_layout) else ()), f"run_dir={run_dir}"]) == 0
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = {r["step"]: r for r in records if "train/proxy_reward" in r}
    val = {r["step"]: r for r in records if "val/avg@k" in r}
    assert sorted(train) == [1, 2] and sorted(val) == [0, 2]
    for record in train.values():
        for key in ("train/proxy_reward", "train/ground_truth_reward", "train/loss"):
            assert math.isfinite(record[key]), (key, record)
        # the failure-mode metrics of every run (issue 22): length, repeated 4-grams, distinct answers per prompt
        assert record["train/response_length"] >= 1 and 0.0 <= record["train/repetition"] < 1.0, record
        # distinct answers where answers are voted on (not Countdown: expressions judged by its verifier)
        assert ("train/distinct_answers" in record) == (name != "countdown"), record
        assert 0.0 <= record.get("train/distinct_answers", 0.0) <= 2, record  # rollout.n=2
    for record in val.values():
        assert 0.0 <= record["val/avg@k"] <= record["val/pass@k"] <= 1.0
        assert ("val/maj@k" in record) == (val_name != "countdown")  # majority labels are graded on math
