"""Plug-ins: your own rewards, advantage estimators, policy losses, loss aggregations, KL estimators and tasks, used
from the command line without editing the package.

A plug-in is a Python module that registers things when it is imported::

    # mypkg/rewards.py
    from urlvr_jax.rewards import register_reward

    @register_reward("short_majority", kind="ensemble")
    def short_majority(batch, **options): ...

    python -m urlvr_jax.train --config tiny_gt --plugin mypkg.rewards reward.name=short_majority

Three ways to name one, all imported before the config is used (so its names are valid ``reward.name``,
``algo.advantage``, ``algo.policy_loss``, ``algo.loss_agg_mode``, ``algo.kl_estimator``, ``data.task`` values):

* ``--plugin NAME`` (repeatable, or ``--plugin=a,b``): a dotted module importable from ``sys.path`` (the current
  directory is on it) or a path to a ``.py`` file; imported before the config file is loaded.
* the config field ``plugins = "a,b"`` (a config file or ``plugins=a,b`` on the command line).
* an installed distribution's entry point in the group ``urlvr_jax.plugins`` (in its pyproject.toml:
  ``[project.entry-points."urlvr_jax.plugins"]`` then ``mine = "mypkg.rewards"``), imported by every CLI run.

A plug-in that cannot be imported stops the run with one line naming it and the cause.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
from types import ModuleType
from typing import Iterable, Sequence

ENTRY_POINT_GROUP = "urlvr_jax.plugins"
FLAG = "--plugin"


class PluginError(ValueError):
    """A plug-in could not be imported (the CLI prints the message as one line)."""


def _split(specs: str | Iterable[str]) -> list[str]:
    items = [specs] if isinstance(specs, str) else list(specs)
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def load_plugin(spec: str, source: str = FLAG) -> ModuleType:
    """Imports one plug-in: a dotted module name or a path to a ``.py`` file (imported once per path)."""
    try:
        if spec.endswith(".py") or os.sep in spec:
            path = os.path.abspath(spec)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"no file {path}")
            name = "urlvr_jax_plugin_" + "".join(c if c.isalnum() else "_" for c in path)
            if name in sys.modules:
                return sys.modules[name]
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            try:
                module_spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
            return module
        return importlib.import_module(spec)
    except Exception as err:  # noqa: BLE001 - any failure inside the user's module is reported in one line
        raise PluginError(f"{source} {spec}: cannot import it ({type(err).__name__}: {err})") from err


def load_plugins(specs: str | Iterable[str], source: str = FLAG) -> list[ModuleType]:
    """Imports every plug-in of ``specs`` (names, or comma-separated strings of names), in order."""
    return [load_plugin(spec, source) for spec in _split(specs)]


def load_entry_point_plugins() -> list[ModuleType]:
    """Imports the modules named by installed distributions' ``urlvr_jax.plugins`` entry points."""
    modules = []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            modules.append(entry.load())
        except Exception as err:  # noqa: BLE001
            raise PluginError(f"entry point {entry.name} = {entry.value} (group {ENTRY_POINT_GROUP}): cannot import "
                              f"it ({type(err).__name__}: {err})") from err
    return modules


def split_plugin_flags(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(plug-in names from ``--plugin NAME`` / ``--plugin=NAME`` flags, the other arguments in order)."""
    plugins, rest, args = [], [], list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == FLAG:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise PluginError(f"{FLAG} needs a value: a module name (mypkg.rewards) or a path to a .py file")
            plugins += _split(args[i + 1])
            i += 2
            continue
        if arg.startswith(FLAG + "="):
            plugins += _split(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        i += 1
    return plugins, rest
