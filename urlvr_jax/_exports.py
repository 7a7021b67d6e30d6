"""Lazy package exports: ``from urlvr_jax.rl import grpo_loss_terms`` imports ``urlvr_jax.rl.losses`` on first use,
so importing a package (the CLI's start-up, a grading worker) costs nothing until a name is used."""

from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package``: each name in ``exports`` comes from the module it maps to
    (relative to ``package``), imported the first time the name is read, then cached on the package."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
