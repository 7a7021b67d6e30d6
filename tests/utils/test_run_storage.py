"""A gs:// run_dir: logs go to a local mirror that is downloaded at start and uploaded after checkpoints
(gs:// is served from a local folder by etils' own epath mock); a local run_dir is its own mirror."""

from __future__ import annotations

import contextlib
import os

from etils import epath
from etils.epath import testing as epath_testing

from urlvr_jax.utils.run_storage import RunStorage, is_url


@contextlib.contextmanager
def fake_gcs(root):
    """gs://BUCKET/... read and written under ``root``/BUCKET/... for every epath operation used here."""
    def local(path):
        path = os.fspath(path)
        return os.path.join(root, path[len("gs://"):]) if path.startswith("gs://") else path

    def fn(original, path, *args, **kwargs):
        return original(local(path), *[local(a) if isinstance(a, (str, os.PathLike)) else a for a in args], **kwargs)

    names = ("copy", "exists", "isdir", "listdir", "makedirs", "mkdir", "open", "remove", "rename", "replace",
             "rmtree", "stat", "walk", "glob")
    with epath_testing.mock_epath(**{name: fn for name in names}):
        yield


def test_local_run_dir_is_its_own_mirror(tmp_path):
    storage = RunStorage(str(tmp_path / "run"))
    assert not storage.mirrored and storage.local_dir == str(tmp_path / "run")
    assert storage.checkpoint_dir() == str(tmp_path / "run" / "checkpoints")
    storage.download()
    assert os.path.isdir(storage.local_dir)
    storage.upload()  # nothing to copy


def test_url_run_dir_round_trips_logs_but_not_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("URLVR_LOCAL_RUNS", str(tmp_path / "mirrors"))
    bucket = tmp_path / "gcs"
    url = "gs://my-bucket/runs/exp 1"
    storage = RunStorage(url)
    assert is_url(url) and storage.mirrored
    assert storage.local_dir.startswith(str(tmp_path / "mirrors")) and "://" not in storage.local_dir
    assert storage.checkpoint_dir() == "gs://my-bucket/runs/exp 1/checkpoints"
    assert RunStorage("gs://my-bucket/runs/exp_1").local_dir != storage.local_dir  # no two URLs share a mirror

    with fake_gcs(str(bucket)):
        storage.download()  # nothing there yet
        local = epath.Path(storage.local_dir)
        (local / "metrics.jsonl").write_text('{"step": 1}\n')
        (local / "tb").mkdir()
        (local / "tb" / "events.out").write_bytes(b"\x00\x01")
        (local / "checkpoints").mkdir()
        (local / "checkpoints" / "junk").write_text("never uploaded")
        storage.upload()
    remote = bucket / "my-bucket" / "runs" / "exp 1"
    assert (remote / "metrics.jsonl").read_text() == '{"step": 1}\n'
    assert (remote / "tb" / "events.out").read_bytes() == b"\x00\x01"
    assert not (remote / "checkpoints").exists()

    # A resumed run on a fresh host starts from the bucket's logs.
    monkeypatch.setenv("URLVR_LOCAL_RUNS", str(tmp_path / "other_host"))
    fresh = RunStorage(url)
    (remote / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n')
    with fake_gcs(str(bucket)):
        fresh.download()
    assert open(os.path.join(fresh.local_dir, "metrics.jsonl")).read() == '{"step": 1}\n{"step": 2}\n'
    assert os.path.exists(os.path.join(fresh.local_dir, "tb", "events.out"))
