"""run_main / use_huge_pages: re-executes an entry point once with glibc's huge-page tunable, same pid and arguments."""

import json
import os
import subprocess
import sys

import pytest

from urlvr_jax.utils import huge_pages

PROBE = """
import json, os, sys
with open(sys.argv[1], "a") as f:
    f.write("run\\n")  # one line per start of the interpreter
from urlvr_jax.utils.entry import run_main
from urlvr_jax.utils.huge_pages import huge_pages_supported
def main():
    print(json.dumps(dict(tunables=os.environ.get("GLIBC_TUNABLES"), argv=sys.argv[2:], pid=os.getpid(),
                          supported=huge_pages_supported())))
run_main(main)  # an entry point's __main__ block
"""


def run_probe(tmp_path, **env):
    script, starts = tmp_path / "probe.py", tmp_path / "starts.txt"
    script.write_text(PROBE)
    clean = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "URLVR_HUGE_PAGES")}
    proc = subprocess.Popen([sys.executable, str(script), str(starts), "--flag", "a b"], env={**clean, **env},
                            stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    report = json.loads(out)
    assert report["argv"] == ["--flag", "a b"]
    assert report["pid"] == proc.pid  # execv: the same process, not a child
    return report, starts.read_text().count("run")


def test_tunable_is_appended_to_those_already_set():
    assert huge_pages.tunables_with_huge_pages("") == "glibc.malloc.hugetlb=1"
    assert huge_pages.tunables_with_huge_pages("glibc.malloc.arena_max=2") == \
        "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"


def test_entry_point_restarts_once_with_the_tunable(tmp_path):
    report, starts = run_probe(tmp_path, GLIBC_TUNABLES="glibc.malloc.arena_max=4")
    if report["supported"]:
        assert (report["tunables"], starts) == ("glibc.malloc.arena_max=4:glibc.malloc.hugetlb=1", 2)
    else:  # not glibc >= 2.35 on Linux, or transparent huge pages off: nothing happens
        assert (report["tunables"], starts) == ("glibc.malloc.arena_max=4", 1)


@pytest.mark.parametrize("env", [dict(URLVR_HUGE_PAGES="0"), dict(GLIBC_TUNABLES="glibc.malloc.hugetlb=0")])
def test_turned_off_or_already_set_runs_once_unchanged(tmp_path, env):
    report, starts = run_probe(tmp_path, **env)
    assert (report["tunables"], starts) == (env.get("GLIBC_TUNABLES"), 1)
