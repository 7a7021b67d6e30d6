"""Multi-host start-up: ``jax.distributed.initialize`` from environment variables.

Every host of a TPU pod slice or a GPU cluster runs the same command; the launch scripts in ``launch/`` set

* ``URLVR_DISTRIBUTED=1`` to initialise at all (unset or 0: a single-process run, nothing happens);
* ``URLVR_COORDINATOR`` (``host:port`` of process 0), ``URLVR_NUM_PROCESSES`` and ``URLVR_PROCESS_ID``
  on GPU clusters. On a TPU pod slice (and under SLURM or Open MPI, which JAX detects itself) they may be
  left unset: ``jax.distributed.initialize()`` finds the coordinator and the process ids on its own.
* ``URLVR_LOCAL_DEVICE_IDS`` (optional, e.g. ``0,1,2,3``): the local devices this process drives.

Call :func:`maybe_initialize` first thing in a program's ``main``, before anything touches a device.
"""

from __future__ import annotations

import os
from typing import Mapping

_TRUE = {"1", "true", "yes", "on"}


_CLUSTER_VARS = {"coordinator_address": "URLVR_COORDINATOR", "num_processes": "URLVR_NUM_PROCESSES",
                 "process_id": "URLVR_PROCESS_ID"}


def distributed_kwargs(env: Mapping[str, str] | None = None) -> dict | None:
    """The ``jax.distributed.initialize`` keyword arguments the environment asks for; None: do not initialise."""
    env = os.environ if env is None else env
    if env.get("URLVR_DISTRIBUTED", "").strip().lower() not in _TRUE:
        return None
    kwargs: dict = {}
    for key, name in _CLUSTER_VARS.items():
        value = env.get(name, "").strip()
        if not value:
            continue
        if key == "coordinator_address":
            kwargs[key] = value
            continue
        try:
            kwargs[key] = int(value)
        except ValueError:
            raise ValueError(f"{name}={value!r} must be an integer") from None
    if kwargs and len(kwargs) < len(_CLUSTER_VARS):
        missing = sorted(name for key, name in _CLUSTER_VARS.items() if key not in kwargs)
        raise ValueError(f"URLVR_DISTRIBUTED=1 with a partial cluster description: set {', '.join(missing)} too "
                         "(or none of the three, to let JAX detect the cluster on TPU / SLURM / Open MPI)")
    if env.get("URLVR_LOCAL_DEVICE_IDS", "").strip():
        kwargs["local_device_ids"] = [int(i) for i in env["URLVR_LOCAL_DEVICE_IDS"].split(",") if i.strip()]
    return kwargs


def maybe_initialize(env: Mapping[str, str] | None = None) -> bool:
    """Calls ``jax.distributed.initialize`` when ``URLVR_DISTRIBUTED`` is set; returns whether it did."""
    kwargs = distributed_kwargs(env)
    if kwargs is None:
        return False
    import jax

    jax.distributed.initialize(**kwargs)
    if jax.process_index() == 0:
        print(f"jax.distributed: {jax.process_count()} processes, {jax.device_count()} devices "
              f"({jax.local_device_count()} local)", flush=True)
    return True
