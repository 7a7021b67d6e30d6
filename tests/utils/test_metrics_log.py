"""Metrics JSONL/TensorBoard logger, resume truncation, and the curve plots."""

import json
import math
import os

import jax.numpy as jnp
import numpy as np
import pytest

from urlvr_jax.utils.metrics_log import DROPPED_FILE, MetricsLogger, read_metrics, read_tensorboard
from urlvr_jax.utils.plots import plot_curves


def _log_steps(logger, steps):
    for s in steps:
        logger.log(s, {"loss": 1.0 / (s + 1), "reward_mean": jnp.float32(0.1 * s), "n": np.int32(s)})
        logger.log(s, {"gt_acc": 0.5 + 0.01 * s}, prefix="eval")


def test_log_jsonl_tensorboard_and_nonfinite(tmp_path):
    with MetricsLogger(tmp_path, progress_total=5, show_progress=False) as logger:
        _log_steps(logger, range(3))
        rec = logger.log(3, {"loss": float("nan"), "kl": float("inf"), "x": -math.inf, "ok": True})
    assert rec["train/ok"] is True
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 7
    assert json.loads(lines[0]) == {"step": 0, "train/loss": 1.0, "train/reward_mean": 0.0, "train/n": 0}
    assert json.loads(lines[-1])["train/kl"] == "Infinity"  # strict JSON on disk
    records = read_metrics(tmp_path)
    assert math.isnan(records[-1]["train/loss"]) and records[-1]["train/x"] == -math.inf
    assert records[4]["train/loss"] == 1.0 / 3  # repr precision: exact round trip
    assert records[5]["eval/gt_acc"] == 0.5 + 0.01 * 2
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "tb"))


def test_bad_metric_values(tmp_path):
    with MetricsLogger(tmp_path, use_tensorboard=False, show_progress=False) as logger:
        with pytest.raises(TypeError, match="metric 'train/loss' must be a number"):
            logger.log(1, {"loss": "high"})
        with pytest.raises(TypeError, match="step must be an int"):
            logger.log(1.5, {"loss": 1.0})
        with pytest.raises(ValueError, match="reserved"):
            logger.log(1, {"step": 1}, prefix=None)
        logger.log(2, {"loss": 1.0})
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [2]


def test_resume_truncates_without_duplicates(tmp_path):
    with MetricsLogger(tmp_path, show_progress=False) as logger:
        _log_steps(logger, range(6))
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "train/lo')  # killed mid-write
    # Uninterrupted reference run.
    with MetricsLogger(tmp_path / "ref", use_tensorboard=False, show_progress=False) as logger:
        _log_steps(logger, range(8))
    # Resume from the checkpoint of step 3 and redo steps 4..7.
    with pytest.warns(UserWarning, match="half-written"):
        logger = MetricsLogger(tmp_path, resume_step=3, progress_total=8, show_progress=False)
    with logger:
        assert [r["step"] for r in read_metrics(tmp_path)] == [0, 0, 1, 1, 2, 2, 3, 3]
        _log_steps(logger, range(4, 8))
    assert read_metrics(tmp_path) == read_metrics(tmp_path / "ref")
    assert (tmp_path / "metrics.jsonl").read_text() == (tmp_path / "ref" / "metrics.jsonl").read_text()
    dropped = (tmp_path / DROPPED_FILE).read_text().splitlines()
    assert len(dropped) == 5 and dropped[-1] == '{"step": 6, "train/lo'
    # TensorBoard: the killed run's events after step 3 are gone, each step is there once, as in the reference.
    with MetricsLogger(tmp_path / "tb_ref", show_progress=False) as logger:
        _log_steps(logger, range(8))
    assert sorted(read_tensorboard(tmp_path / "tb")) == sorted(read_tensorboard(tmp_path / "tb_ref" / "tb"))
    assert len(read_tensorboard(tmp_path / "tb")) == 8 * 4


def test_flush_puts_tensorboard_events_on_disk_and_a_fresh_start_drops_old_rows(tmp_path):
    logger = MetricsLogger(tmp_path, show_progress=False)
    logger.log(0, {"avg@k": 0.5}, prefix="val")
    logger.log(1, {"loss": 2.0})
    logger.flush()  # what a SIGKILL right after a checkpoint leaves
    # (TensorBoard tags keep [A-Za-z0-9_./-]: "@" becomes "_", as with tensorboardX's SummaryWriter)
    assert sorted(read_tensorboard(tmp_path / "tb")) == [("train/loss", 1, 2.0), ("val/avg_k", 0, 0.5)]
    # A restart with no checkpoint (resume_step=-1) logs step 0 again: it must not appear twice.
    with MetricsLogger(tmp_path, resume_step=-1, show_progress=False) as again:
        again.log(0, {"avg@k": 0.5}, prefix="val")
    assert [r["step"] for r in read_metrics(tmp_path)] == [0]
    assert read_tensorboard(tmp_path / "tb") == [("val/avg_k", 0, 0.5)]
    logger.close()


def test_read_metrics_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2"):
        read_metrics(tmp_path)


def test_plot_curves_two_runs(tmp_path):
    a = [{"step": s, "eval/gt_acc": 0.3 + 0.01 * s, "train/maj_reward": 0.5 + 0.02 * s} for s in range(20)]
    b = [{"step": s, "eval/gt_acc": 0.3 - 0.01 * s, "train/maj_reward": min(1.0, 0.5 + 0.05 * s)} for s in range(20)]
    with MetricsLogger(tmp_path / "run_a", use_tensorboard=False, show_progress=False) as logger:
        for rec in a:
            logger.log(rec["step"], {k: v for k, v in rec.items() if k != "step"}, prefix=None)
    panels = [("GT accuracy", ["eval/gt_acc"]), ("majority-vote reward", ["train/maj_reward"])]
    out = plot_curves(None, tmp_path / "plots" / "curves.png", panels,
                      runs={"intrinsic": tmp_path / "run_a", "entropy": b}, collapse_step=10, title="t")
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(out) > 5000
    assert plot_curves(a, tmp_path / "one.png", [("both", ["eval/gt_acc", "train/maj_reward"])],
                       collapse_step={"run a": 5, "run b": 8}).endswith("one.png")
    with pytest.raises(ValueError, match=r"\['eval/acc'\] are in none of the runs.*eval/gt_acc"):
        plot_curves(a, tmp_path / "bad.png", [("x", ["eval/acc"])])
    assert not (tmp_path / "bad.png").exists()


def test_a_full_disk_names_the_metrics_file(tmp_path, monkeypatch):
    import errno

    with MetricsLogger(tmp_path, use_tensorboard=False, show_progress=False) as logger:
        logger.log(1, {"loss": 1.0})

        def full(_text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(logger, "_file", type("Full", (), {"write": staticmethod(full), "closed": True})())
        with pytest.raises(OSError, match=r"cannot write .*metrics.jsonl: No space left on device") as err:
            logger.log(2, {"loss": 1.0})
        assert err.value.errno == errno.ENOSPC
    assert [r["step"] for r in read_metrics(tmp_path)] == [1]
