"""docs/api.md cannot drift: every name in its headings imports from its package and is in that package's
``__all__``, every name the layer packages export is documented, and the page's ```python examples run in order
(```py blocks, a whole training run, are shown only; the API tour notebook trains through a config in the suite)."""

from __future__ import annotations

import importlib
import os
import re
import tempfile
import types
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.md"
LAYERS = ("model", "sampling", "rewards", "rl", "studies", "toy")  # every export of these must be documented
HEADING = re.compile(r"^#{3} (.+)$", re.MULTILINE)
NAME = re.compile(r"`(urlvr_jax(?:\.\w+)+)`")
EXAMPLE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def documented() -> list[tuple[str, str]]:
    """(module, name) of every ``urlvr_jax.pkg.Name`` in a third-level heading, in page order."""
    names = [full for heading in HEADING.findall(PAGE.read_text()) for full in NAME.findall(heading)]
    assert names, "no names found in the headings of docs/api.md"
    return [tuple(full.rsplit(".", 1)) for full in names]


def test_every_documented_name_imports_and_is_exported():
    for module_name, name in documented():
        module = importlib.import_module(module_name)
        value = getattr(module, name)  # AttributeError: a name the page lists that the package lacks
        assert not isinstance(value, types.ModuleType), f"{module_name}.{name} is a module, not an API name"
        exported = getattr(module, "__all__", None)
        assert exported is None or name in exported, f"{module_name}.{name} is documented but not in __all__"


def test_every_exported_name_of_a_layer_is_documented():
    listed = {f"{m}.{n}" for m, n in documented()}
    for layer in LAYERS:
        module = importlib.import_module(f"urlvr_jax.{layer}")
        missing = sorted(f"urlvr_jax.{layer}.{n}" for n in module.__all__ if f"urlvr_jax.{layer}.{n}" not in listed)
        assert not missing, f"exported but not in docs/api.md: {missing}"


def test_the_page_examples_run_in_order(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # (runs write under their own temporary run_dirs)
    namespace = {"os": os, "tempfile": tempfile}
    for module_name, name in documented():  # each example may use the names of the page's headings
        namespace[name] = getattr(importlib.import_module(module_name), name)
    examples = EXAMPLE.findall(PAGE.read_text())
    assert len(examples) >= 15
    for i, source in enumerate(examples):
        try:
            exec(compile(source, f"docs/api.md example {i + 1}", "exec"), namespace)  # noqa: S102
        except Exception as err:  # noqa: BLE001
            pytest.fail(f"docs/api.md example {i + 1} failed: {type(err).__name__}: {err}\n{source}")
