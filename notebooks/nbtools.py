"""Writing the notebooks from their cells and executing them headless (the generators and tests share this)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat as nbf

NB_DIR = Path(__file__).resolve().parent
QUICK_ENV = "URLVR_NOTEBOOK_QUICK"


def notebook(cells: list[tuple[str, str]]) -> nbf.NotebookNode:
    """A notebook of ("md" | "code", source) cells with a python3 kernelspec."""
    nb = nbf.v4.new_notebook()
    make = {"md": nbf.v4.new_markdown_cell, "code": nbf.v4.new_code_cell}
    nb.cells = [make[kind](source.strip("\n")) for kind, source in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def kernel_env(quick: bool) -> dict[str, str]:
    """Environment of the notebook kernel: the repo importable, one CPU device, Agg plots, quick or full mode."""
    env = {"MPLBACKEND": "Agg", "JAX_PLATFORMS": "cpu", "TOKENIZERS_PARALLELISM": "false",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=1" + (" --xla_backend_optimization_level=0" if quick
                                                                        else ""),
           QUICK_ENV: "1" if quick else "0",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
           "PYTHONPATH": str(NB_DIR.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return env


def execute(nb: nbf.NotebookNode, quick: bool, timeout: int = 600) -> nbf.NotebookNode:
    """Runs every cell in a fresh kernel (cwd notebooks/), in place; a failing cell raises CellExecutionError."""
    from nbclient import NotebookClient

    saved = {k: os.environ.get(k) for k in kernel_env(quick)}
    os.environ.update(kernel_env(quick))
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NB_DIR)}}
                       ).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    timings = []
    for i, cell in enumerate(nb.cells):  # committed notebooks carry no execution timing noise
        times = cell.get("metadata", {}).pop("execution", None)
        if times and "iopub.execute_input" in times and "shell.execute_reply" in times:
            from datetime import datetime

            start, end = (datetime.fromisoformat(times[k].replace("Z", "+00:00"))
                          for k in ("iopub.execute_input", "shell.execute_reply"))
            timings.append(f"cell {i}: {(end - start).total_seconds():.1f} s")
    nb.metadata["timings"] = timings  # (read by the generators, dropped before writing)
    return nb


def write(nb: nbf.NotebookNode, name: str) -> Path:
    timings = nb.metadata.pop("timings", None)
    if timings:
        print(f"{name}: " + ", ".join(timings))
    path = NB_DIR / name
    nbf.write(nb, path)
    return path
