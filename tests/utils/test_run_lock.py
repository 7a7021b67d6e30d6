"""run_dir lock: exclusive, names its holder, takes over a dead process's lock on this host only."""

import json
import os
import socket
import subprocess
import sys

import pytest

from urlvr_jax.utils import run_lock


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(run_dir, **holder) -> str:
    path = os.path.join(run_dir, run_lock.LOCK_FILE)
    with open(path, "w") as f:
        json.dump(holder, f)
    return path


def test_second_holder_is_refused_naming_the_first(tmp_path):
    path = run_lock.acquire(str(tmp_path))
    holder = json.load(open(path))
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname() and holder["started"]
    with pytest.raises(run_lock.RunDirBusy, match=rf"run_dir {tmp_path} is in use by pid {os.getpid()} on host "
                                                  rf"{socket.gethostname()} since .* \(lock file {path}\)"):
        run_lock.acquire(str(tmp_path))
    run_lock.release(path)
    assert not os.path.exists(path)


def test_stale_lock_on_this_host_is_taken_over(tmp_path):
    dead = _dead_pid()
    _write_lock(tmp_path, pid=dead, host=socket.gethostname(), started="yesterday")
    with pytest.warns(UserWarning, match=rf"taking over the stale lock .* of pid {dead} on host .* since yesterday"):
        path = run_lock.acquire(str(tmp_path))
    assert json.load(open(path))["pid"] == os.getpid()
    run_lock.release(path)


def test_lock_from_another_host_is_refused(tmp_path):
    path = _write_lock(tmp_path, pid=_dead_pid(), host="another-host", started="today")
    with pytest.raises(run_lock.RunDirBusy, match="on host another-host since today"):
        run_lock.acquire(str(tmp_path))
    run_lock.release(path)  # not ours: left in place
    assert os.path.exists(path)


def test_hold_releases_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with run_lock.hold(str(tmp_path / "run")):
            assert os.path.exists(tmp_path / "run" / run_lock.LOCK_FILE)
            raise RuntimeError("the run failed")
    assert not os.path.exists(tmp_path / "run" / run_lock.LOCK_FILE)
