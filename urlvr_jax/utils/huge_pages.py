"""Transparent huge pages for the large allocations of XLA:CPU, by restarting the interpreter once.

XLA:CPU allocates a program's temporary buffers afresh at every execution: 275 MiB for the train step of
``benchmarks/grpo_bench.py``. glibc serves allocations that large with ``mmap`` and unmaps them when freed, so each
step first touches tens of thousands of new 4 KiB pages, and the kernel spends a large share of the step faulting
and zeroing them (``grpo_bench.py --only ours`` prints the step's page faults and system time). glibc >= 2.35 can
advise transparent huge pages for those mappings (the tunable ``glibc.malloc.hugetlb=1``), which leaves a few
hundred faults; the figures are in the README. PyTorch's CPU allocator goes through the same malloc, so a
benchmark that runs both in one process gives both the same pages.

Tunables are read when a process starts, so :func:`use_huge_pages` re-executes the interpreter with the same
command line and ``GLIBC_TUNABLES`` extended. Entry points run their ``main`` through :func:`urlvr_jax.utils.entry.run_main`, which
calls it before any work (what their imports loaded is simply loaded again); library code and tests never do.
``URLVR_HUGE_PAGES=0`` turns it off.
"""

from __future__ import annotations

import os
import platform
import sys

TUNABLE = "glibc.malloc.hugetlb=1"
THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"


def huge_pages_supported() -> bool:
    """glibc >= 2.35 on Linux, with transparent huge pages not switched off (``[never]``)."""
    if sys.platform != "linux":
        return False
    libc, version = platform.libc_ver()
    try:
        if libc != "glibc" or tuple(int(v) for v in version.split(".")[:2]) < (2, 35):
            return False
        with open(THP_SETTING) as f:
            return "[never]" not in f.read()
    except (OSError, ValueError):
        return False


def tunables_with_huge_pages(current: str) -> str:
    """``GLIBC_TUNABLES`` with :data:`TUNABLE` added to the tunables already set (colon-separated)."""
    return f"{current}:{TUNABLE}" if current else TUNABLE


def use_huge_pages() -> None:
    """Re-executes this process with :data:`TUNABLE` unless it is set already, turned off, or unsupported.

    Returns (doing nothing) in those three cases; otherwise it does not return: ``os.execv`` replaces the process
    (same pid, same arguments, same environment plus the tunable).
    """
    current = os.environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" in current or os.environ.get("URLVR_HUGE_PAGES", "1") == "0":
        return
    if not huge_pages_supported() or not sys.executable or not getattr(sys, "orig_argv", None):
        return  # (an embedded interpreter has no executable or command line to restart)
    os.environ["GLIBC_TUNABLES"] = tunables_with_huge_pages(current)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
