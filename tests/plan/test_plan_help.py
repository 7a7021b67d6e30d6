"""``python -m urlvr_jax.plan --help`` prints its flags and exits 0 (it used to answer "unknown flags")."""

import subprocess
import sys


def test_help_lists_the_flags():
    run = subprocess.run([sys.executable, "-m", "urlvr_jax.plan", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    for flag in ("--devices", "--topology", "--device-memory", "--suggest"):
        assert flag in run.stdout
