"""``--topology NAME``: compile-only devices of an accelerator slice, and its chip's published figures.

``v5e:2x2``, ``v5e:8x8``, ``v4:2x2x1``, ``v4:2x2x2``, ``v5p:4x4x4``, ``v6e:4x4`` (chip generation : the slice's
chip grid) come from libtpu (``pip install -r requirements-tpu.txt``) through
``jax.experimental.topologies.get_topology_desc``: TPU devices that the TPU compiler compiles for on a machine
without a TPU (plan mode never runs a program on them). GPU names (``h100:8``, ``h100:2x8``, ``h200:8``) come from
:mod:`urlvr_jax.plan.gpu`. The chip's figures are per device: libtpu's v4 topologies have a device per TensorCore
(``v4:2x2x1``: 8 devices of half a chip each).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os

GiB = 2**30


@dataclasses.dataclass(frozen=True)
class Chip:
    """One accelerator chip's peak dense bf16 FLOP/s, HBM bandwidth (bytes/s) and HBM capacity (bytes)."""

    name: str
    peak_flops: float
    hbm_bandwidth: float
    hbm_bytes: int


# Per chip, from Google Cloud's "TPU v4", "TPU v5e", "TPU v5p" and "Trillium (TPU v6e)" system architecture pages
# (cloud.google.com/tpu/docs/v4, /v5e, /v5p, /v6e): peak bf16 compute, HBM bandwidth, HBM capacity.
TPU_CHIPS = {
    "v4": Chip("TPU v4", 275e12, 1.2e12, 32 * GiB),
    "v5e": Chip("TPU v5e", 197e12, 8.19e11, 16 * GiB),
    "v5p": Chip("TPU v5p", 459e12, 2.765e12, 95 * GiB),
    "v6e": Chip("TPU v6e", 918e12, 1.64e12, 32 * GiB),
}


def compile_devices(topology: str) -> tuple[list, Chip]:
    """(compile-only devices of ``topology``, its chip); ValueError naming the flag for a name it cannot make."""
    generation = topology.split(":", 1)[0].lower()
    if generation not in TPU_CHIPS:
        return _gpu_devices(topology)
    if importlib.util.find_spec("libtpu") is None:
        raise ValueError(f"--topology {topology}: the TPU compiler (libtpu) is not installed: "
                         "pip install -r requirements-tpu.txt")
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")  # compile-only: another process may hold libtpu
    import jax
    from jax.experimental import topologies

    try:
        devices = topologies.get_topology_desc(platform="tpu", topology_name=topology).devices
    except jax.errors.JaxRuntimeError as err:
        raise ValueError(f"--topology {topology}: libtpu cannot make it ({str(err).splitlines()[0]}); give "
                         f"<chip>:<grid> with chip one of {', '.join(TPU_CHIPS)}, e.g. v5e:2x2, v4:2x2x1") from None
    return list(devices), per_device(TPU_CHIPS[generation], 1 + max(d.core_on_chip for d in devices))


def per_device(chip: Chip, cores: int) -> Chip:
    """The share of ``chip`` one device has when each of its ``cores`` TensorCores is a device (libtpu's v4
    topologies: 2 devices a chip, where a v4 VM runs one megacore device a chip)."""
    if cores == 1:
        return chip
    return Chip(f"{chip.name} TensorCore (1/{cores} chip)", chip.peak_flops / cores, chip.hbm_bandwidth / cores,
                chip.hbm_bytes // cores)


def _gpu_devices(topology: str) -> tuple[list, Chip]:
    try:
        gpu = importlib.import_module("urlvr_jax.plan.gpu")
    except ModuleNotFoundError as err:
        if err.name != "urlvr_jax.plan.gpu":
            raise
        raise ValueError(f"--topology {topology}: not a TPU topology ({', '.join(f'{k}:...' for k in TPU_CHIPS)}) "
                         "and this checkout has no GPU topologies (urlvr_jax/plan/gpu.py)") from None
    return gpu.compile_devices(topology)
