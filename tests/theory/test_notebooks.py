"""The notebooks: the committed files are what the generators write, carry their outputs and figures, and
re-execute headless in quick mode, where a cell fails (and so this test) if a claim's check does not hold."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

NB_DIR = Path(__file__).resolve().parents[2] / "notebooks"
sys.path.insert(0, str(NB_DIR))

import make_api_tour  # noqa: E402
import make_results_notebook  # noqa: E402
import make_theory_notebooks  # noqa: E402
from nbtools import execute, notebook  # noqa: E402

CELLS = {**make_theory_notebooks.NOTEBOOKS, make_api_tour.NAME: make_api_tour.CELLS,
         make_results_notebook.NAME: make_results_notebook.CELLS}


@pytest.mark.parametrize("name", sorted(CELLS))
def test_committed_notebook_is_the_generated_one_with_outputs(name):
    committed = nbformat.read(NB_DIR / name, as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in notebook(CELLS[name]).cells], \
        f"{name} differs from its generator; rerun the generator with --execute"
    outputs = [o for c in committed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type == "stream" for o in outputs), f"{name} was committed without outputs"
    if name.startswith(("theory_", "results_")):
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{name} was committed without its figures"


@pytest.mark.parametrize("name", sorted(CELLS))
def test_notebook_runs_in_quick_mode(name):
    nb = execute(notebook(CELLS[name]), quick=True)  # CellExecutionError (a failed claim included) fails the test
    assert any(o.get("output_type") == "stream" for c in nb.cells for o in c.get("outputs", []))
