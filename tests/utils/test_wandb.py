"""train.loggers=wandb: real tiny runs through the train CLI in wandb's offline mode (files under tmp, no network),
read back from the run's ``.wandb`` file; a resumed run continues the same W&B run; without wandb, one line."""

import glob
import json
import math
import os
import struct
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rl"))

from loop_fixtures import cli_env, run_cli, train_cmd  # noqa: E402  (after the path above)

from urlvr_jax.utils.metrics_log import MetricsLogger, parse_loggers, read_metrics  # noqa: E402
from urlvr_jax.utils.wandb_logger import MISSING, RUN_ID_FILE  # noqa: E402

wandb_pb = pytest.importorskip("wandb.proto.wandb_internal_pb2")

LOGGERS = "train.loggers=tensorboard,jsonl,wandb"


def read_wandb_records(path: str) -> list:
    """The Record protos of a ``.wandb`` file: a 7-byte header (``:W&B``, magic, version), then LevelDB-log records
    (crc32c, uint16 length, type: 1 full, 2 first, 3 middle, 4 last) in 32 KiB blocks, a block's last < 7 bytes
    zero padding."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b":W&B", path
    block, pos, part, out = 32768, 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        part += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_pb.Record()
            record.ParseFromString(part)
            out.append(record)
            part = b""
    return out


def offline_run(records: list) -> tuple[str, dict, dict]:
    """(run id, config, {step: {key: value}}) of one offline run's records (W&B's own ``_*`` keys left out)."""
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    history = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            row = {(item.key or "/".join(item.nested_key)): json.loads(item.value_json) for item in record.history.item}
            history[int(row["_step"])] = {k: v for k, v in row.items() if not k.startswith("_")}
    return run.run_id, config, history


def jsonl_by_step(run_dir) -> dict:
    """metrics.jsonl merged per step, as W&B merges the records logged at one step into one history row."""
    rows: dict = {}
    for record in read_metrics(run_dir):
        rows.setdefault(record["step"], {}).update({k: v for k, v in record.items() if k != "step"})
    return rows


def same(a, b) -> bool:
    return (math.isnan(a) and math.isnan(b)) if isinstance(a, float) and math.isnan(a) else a == b


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """tiny_gt for 2 steps, then the same command with train.steps=4 (a resumed run), logging to W&B offline."""
    root = tmp_path_factory.mktemp("wandb")
    env = cli_env(str(root / "jax_cache"))
    env["XLA_FLAGS"] = "--xla_backend_optimization_level=0"  # (compiles faster; as tests/reliability)
    env.update(WANDB_MODE="offline", WANDB_DIR=str(root / "wandb_files"), WANDB_SILENT="true")
    os.makedirs(env["WANDB_DIR"])
    run_dir = root / "run"
    for steps in (2, 4):
        done = run_cli(train_cmd("tiny_gt", f"run_dir={run_dir}", f"train.steps={steps}", LOGGERS), env=env)
        assert done.returncode == 0, done.stderr[-3000:]
    files = sorted(glob.glob(os.path.join(env["WANDB_DIR"], "wandb", "offline-run-*", "run-*.wandb")))
    assert len(files) == 2, files  # one offline run directory per session
    return run_dir, [offline_run(read_wandb_records(path)) for path in files]


def test_wandb_history_is_metrics_jsonl_step_for_step_with_the_config(runs):
    run_dir, sessions = runs
    logged = jsonl_by_step(run_dir)
    history = {**sessions[0][2], **sessions[1][2]}
    assert sorted(history) == sorted(logged) == [0, 1, 2, 3, 4]
    for step, row in logged.items():
        assert set(history[step]) == set(row), step
        assert all(same(history[step][k], v) for k, v in row.items()), (step, history[step], row)
    config = json.load(open(run_dir / "config.json"))  # the last session's
    attached = sessions[1][1]
    assert {k: attached[k] for k in config} == config and config["train"]["loggers"] == "tensorboard,jsonl,wandb"
    assert sessions[0][1]["train"]["steps"] == 2 and attached["train"]["steps"] == 4


def test_resumed_run_continues_the_same_wandb_run(runs):
    run_dir, sessions = runs
    stored = (run_dir / RUN_ID_FILE).read_text().strip()
    assert [run_id for run_id, _, _ in sessions] == [stored, stored]
    assert sorted(sessions[0][2]) == [0, 1, 2] and sorted(sessions[1][2]) == [3, 4]  # resumed after step 2


def test_missing_wandb_is_one_line(tmp_path):
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "wandb.py").write_text("raise ImportError('wandb blocked by the test')\n")
    env = cli_env()
    env["PYTHONPATH"] = os.pathsep.join([str(blocked), env.get("PYTHONPATH", "")])
    done = run_cli(train_cmd("tiny_gt", f"run_dir={tmp_path / 'run'}", LOGGERS), env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"error: {MISSING}" and "Traceback" not in done.stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # refused before the run started


def test_unknown_logger_names_the_key():
    assert parse_loggers("tensorboard") == {"tensorboard", "jsonl"}
    with pytest.raises(ValueError, match=r"train.loggers='tensorboard,mlflow': unknown logger mlflow"):
        parse_loggers("tensorboard,mlflow")


def test_only_process_zero_logs_to_wandb(tmp_path, monkeypatch):
    import jax

    from urlvr_jax.utils import multihost

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    logger = multihost.primary_only(lambda: MetricsLogger(tmp_path / "run", wandb_config={"seed": 0},
                                                          show_progress=False))
    logger.log(1, {"loss": 0.5})
    logger.close()
    assert os.listdir(tmp_path) == []  # no run_dir, no wandb_run_id, no offline run
