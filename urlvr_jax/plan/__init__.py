"""Plan / dry-run mode: does a config fit the accelerators, before paying for them?

    python -m urlvr_jax.plan --config paper_qwen3_1p7b --devices 8 mesh=data:2,fsdp:4 \
        [--device-memory 16GiB] [--suggest] [key=value ...]

Builds the full-size model abstractly (shapes only, no weights), lowers and compiles (AOT) the train step
and the sampler's prefill and decode for the config's batch (one chunk of ``rollout.max_rows_per_chunk`` rows)
on the config's mesh, and prints per-device memory: parameters, optimizer state, extra param copies, KV cache,
and each program's compiled argument / output / temp sizes from ``Compiled.memory_analysis()``, each beside a
back-of-the-envelope figure from the shapes (:mod:`urlvr_jax.plan.estimate`); then each phase's
peak against ``--device-memory`` (``16GiB``, ``80GB``; a bare number is GiB) with a FITS / DOES NOT FIT verdict
and, for a phase over budget, the config key to turn. ``--suggest`` first picks the rollout chunk and the
micro-batch size that the estimate fits into the budget, prints them as overrides, and plans with them.
``--devices N`` fakes N CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=N``), so a pod's mesh
can be planned on a laptop.

Compiled sizes come from whichever backend compiles (CPU when faked): a TPU or GPU compiler fuses and
schedules differently, so treat temp sizes as an estimate, not a guarantee.

Modules: :mod:`~urlvr_jax.plan.build` compiles the programs (``make_plan``), :mod:`~urlvr_jax.plan.estimate` the
shapes' figures and the knobs, :mod:`~urlvr_jax.plan.report` prints a plan, :mod:`~urlvr_jax.plan.cli` the flags.
"""

from urlvr_jax._exports import lazy_exports

_EXPORTS = {"make_plan": "build", "format_plan": "report"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
