"""``urlvr``: the package's one console script; each command is a ``python -m`` entry point.

    urlvr train --config tiny_gt train.steps=2 run_dir=runs/try    # = python -m urlvr_jax.train ...
    urlvr --help                                                   # the commands, one line each

``urlvr COMMAND ARGS...`` imports the command's module only then (``urlvr --help`` imports none) and runs its
``main`` through :func:`urlvr_jax.utils.entry.run_main` with ``ARGS`` as its command line, as ``python -m MODULE
ARGS...`` does; a package without ``main`` runs its ``__main__``. An unknown command, or one whose module is not in
this installation, prints one line and exits 2.
"""

from __future__ import annotations

import importlib
import importlib.util
import runpy
import sys

# command -> (module, what it does)
COMMANDS = {
    "train": ("urlvr_jax.train", "train a policy with GRPO on a label-free reward (--config NAME|PATH key=value ...)"),
    "evaluate": ("urlvr_jax.evaluate", "avg@k / pass@k / maj@k of a model or a run's checkpoint on benchmark files"),
    "plan": ("urlvr_jax.plan", "does a config fit the accelerators: compiled memory and time, without running it"),
    "mcs": ("urlvr_jax.collapse_step", "Model Collapse Step: rank priors by how long majority-vote URLVR lasts"),
    "study": ("urlvr_jax.studies", "list, run and report the paper's studies"),
    "warm-start": ("urlvr_jax.toy.warm_start", "warm-start a tiny transformer to the toy task's imperfect prior"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items()]
    return ("usage: urlvr COMMAND [ARGS...]   (urlvr COMMAND --help: that command's options)\n\ncommands:\n"
            + "\n".join(lines))


def _fail(line: str) -> int:
    print(f"error: {line}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        return _fail(f"unknown command {name!r}; the commands are {', '.join(COMMANDS)} (urlvr --help)")
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            return _fail(f"urlvr {name}: module {module_name} is not in this installation of urlvr_jax")
        return _fail(f"urlvr {name} needs the {err.name} package, which is not installed ({err})")
    sys.argv = [f"urlvr {name}", *rest]  # the command line its main (and argparse's usage) reads
    entry = getattr(module, "main", None)
    if callable(entry):
        from urlvr_jax.utils.entry import run_main

        run_main(entry)
    is_package = hasattr(module, "__path__")
    if is_package and importlib.util.find_spec(f"{module_name}.__main__") is not None:
        runpy.run_module(module_name, run_name="__main__", alter_sys=False)  # (its run_main exits)
        return 0
    return _fail(f"urlvr {name}: {module_name} has no main() to run")


if __name__ == "__main__":
    sys.exit(main())
