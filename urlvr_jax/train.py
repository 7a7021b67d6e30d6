"""Command line of the URLVR loop.

    python -m urlvr_jax.train --config cpu_default [--plugin mypkg.rewards] [key=value ...]

``--config`` takes a name in ``configs/`` or a path to a config file; every field can be overridden with
``dotted.key=value`` (an unknown key is refused with the valid keys listed). A bad value, path or a busy run_dir
prints one line, ``error: <message>``; ``--debug`` (or ``URLVR_DEBUG=1``) shows the traceback too. ``--plugin`` (and
the config field ``plugins``) imports your modules first, so the rewards, estimators, losses and tasks they register
can be named in the config (see :mod:`urlvr_jax.plugins`).
"""

from __future__ import annotations

import sys

from urlvr_jax.utils.config import UserError, parse_cli


def main(argv: list[str] | None = None) -> int:
    from urlvr_jax import plugins

    names, argv = plugins.split_plugin_flags(sys.argv[1:] if argv is None else argv)
    plugins.load_entry_point_plugins()
    plugins.load_plugins(names)  # before the config file, which may use what they register
    config, extra = parse_cli(argv, default_config="cpu_default")
    plugins.load_plugins(config.get("plugins", ""), source="config plugins:")
    extra = [flag for flag in extra if flag != "--debug"]  # (read by run_main: tracebacks for user errors)
    if extra:
        raise UserError(f"unknown flags {extra}; overrides are written key=value (see configs/*.py)")
    from urlvr_jax.rl.loop import train
    from urlvr_jax.utils import multihost

    result = train(config)
    collapse = result.collapse_step if result.collapse_step is not None else "none within the run"
    multihost.primary_only(lambda: print(f"run {result.run_dir}: {result.steps} steps, Model Collapse Step: "
                                         f"{collapse}, rollout tokens: {result.rollout_tokens}"
                                         f"{step_seconds(result.run_dir)}"))
    return 0


def step_seconds(run_dir: str) -> str:
    """``", seconds per step: rollout 9.1, update 27.0 (median of 3 steps)"`` from the run's metrics ("" if none)."""
    import statistics

    from urlvr_jax.utils.metrics_log import read_metrics

    try:
        records = [r for r in read_metrics(run_dir) if "train/update_time" in r and "train/rollout_time" in r]
    except FileNotFoundError:
        return ""
    if not records:
        return ""
    median = {k: statistics.median(r[f"train/{k}_time"] for r in records) for k in ("rollout", "update")}
    return (f", seconds per step: rollout {median['rollout']:.1f}, update {median['update']:.1f} "
            f"(median of {len(records)} steps)")


if __name__ == "__main__":
    from urlvr_jax.utils.entry import run_main

    run_main(main)  # huge pages for XLA's buffers, the pod's processes (URLVR_DISTRIBUTED=1), then main
