"""Compile-only NVIDIA GPUs for plan mode, on a machine without one: ``h100:8``, ``h100:2x8``, ``h200:8``, ``a100:8``.

``compile_devices("h100:2x8")`` returns 16 compile-only "NVIDIA H100 80GB HBM3" devices, 2 hosts of 8 (an HGX
board each), and the chip's published figures. A program jitted over a mesh of them and ``.lower(...).compile()``d
runs XLA's real GPU compiler (ptxas included): ``memory_analysis()`` gives per-device sizes; ``cost_analysis()`` is
None on GPU. Unlike the TPU compiler, the GPU compiler does not refuse a program too big for the card (it logs a
warning and compiles), so the verdict compares ``memory_analysis()`` with ``Chip.hbm_bytes`` itself.

The devices come from ``jax.experimental.topologies.get_topology_desc(platform="cuda", ...)`` with XLA's
``GpuTargetConfig`` of the card (``gpu_targets/*.txtpb``, from openxla/xla's target_config/specs). It needs the
packages of ``requirements-gpu-plan.txt`` (the CUDA PJRT plugin without the CUDA runtime, and ``ptxas``) and
``JAX_PLATFORMS=cpu`` set before jax starts: without it, the plugin looks for a CUDA driver and does not register.
"""

from __future__ import annotations

import importlib.util
import os
import re

from urlvr_jax.plan.topology import Chip

REQUIREMENTS = "requirements-gpu-plan.txt"
_TARGETS = os.path.join(os.path.dirname(__file__), "gpu_targets")
MAX_PER_HOST = 8  # an HGX / DGX board: 8 GPUs on one NVLink switch

# name -> (XLA's target config, the chip). Dense bf16 tensor-core FLOP/s (without sparsity), HBM bandwidth and
# capacity (decimal GB) from NVIDIA's datasheets: "NVIDIA H100 Tensor Core GPU" (H100 SXM: 989 TFLOPS bf16 dense,
# 3.35 TB/s, 80 GB HBM3), "NVIDIA H200 Tensor Core GPU" (H200 SXM: 989 TFLOPS, 4.8 TB/s, 141 GB HBM3e; the H100's
# SM90 die with more, faster memory) and "NVIDIA A100 Tensor Core GPU" (A100 80GB SXM: 312 TFLOPS bf16, 2,039 GB/s).
# The capacity is the datasheet's: XLA's spec says 84,942,979,072 B for the H100, before the CUDA context's share.
GPUS: dict[str, tuple[str, Chip]] = {
    "h100": ("h100_sxm.txtpb", Chip("NVIDIA H100 80GB HBM3", 989e12, 3.35e12, 80 * 10**9)),
    "h200": ("h200.txtpb", Chip("NVIDIA H200 141GB HBM3e", 989e12, 4.8e12, 141 * 10**9)),
    "a100": ("a100_sxm_80.txtpb", Chip("NVIDIA A100-SXM4-80GB", 312e12, 2.039e12, 80 * 10**9)),
}


def parse_topology(topology: str) -> tuple[str, int, int]:
    """``"h100:8"`` -> ("h100", 1 host, 8 GPUs a host); ``"h100:2x8"`` -> ("h100", 2, 8)."""
    match = re.fullmatch(r"([a-z0-9]+):(?:(\d+)x)?(\d+)", topology.strip().lower())
    if match is None or match[1] not in GPUS:
        raise ValueError(f"--topology {topology}: expected GPU:N or GPU:HOSTSxN with GPU one of "
                         f"{', '.join(GPUS)} (e.g. h100:8, h100:2x8)")
    hosts, per_host = int(match[2] or 1), int(match[3])
    if hosts < 1 or not 1 <= per_host <= MAX_PER_HOST:
        raise ValueError(f"--topology {topology}: {hosts} host(s) x {per_host} GPUs; a host holds 1 to "
                         f"{MAX_PER_HOST} GPUs (e.g. {match[1]}:2x8 for 16 GPUs on 2 hosts)")
    return match[1], hosts, per_host


def target_config(name: str) -> str:
    """XLA's GpuTargetConfig text proto of a card in :data:`GPUS`."""
    with open(os.path.join(_TARGETS, GPUS[name][0])) as f:
        return f.read()


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package (the jax_plugins namespace) is not there either
        return False


def _missing(topology: str, what: str) -> ValueError:
    return ValueError(f"--topology {topology} needs the CUDA compiler: {what}; "
                      f"install it with `pip install -r {REQUIREMENTS}`")


def compile_devices(topology: str) -> tuple[list, Chip]:
    """The compile-only devices of ``topology`` (host-major: host 0's GPUs first) and their chip."""
    import jax
    from jax.experimental import topologies

    name, hosts, per_host = parse_topology(topology)
    if not _installed("jax_plugins.xla_cuda12"):
        raise _missing(topology, "the jax-cuda12-plugin package is not installed")
    try:
        desc = topologies.get_topology_desc(platform="cuda", topology_name=name, target_config=target_config(name),
                                            topology=f"1x{hosts}x{per_host}")
    except NotImplementedError as err:  # "topology not implemented for cuda": the plugin did not register
        raise ValueError(f"--topology {topology}: the CUDA plugin is installed but did not register ({err}); "
                         "run with JAX_PLATFORMS=cpu set before jax starts") from err
    devices = list(desc.devices)
    _check_toolkit(topology, devices[0], jax)
    return devices, GPUS[name][1]


def _check_toolkit(topology: str, device, jax) -> None:
    """Compiles a one-kernel program for ``device`` (0.1-0.3 s), so a missing CUDA toolkit is one line here, not an
    XLA error at a plan's first program: ``exp`` needs libdevice, every kernel needs ptxas."""
    import jax.numpy as jnp
    from jax.sharding import SingleDeviceSharding

    x = jax.ShapeDtypeStruct((128,), jnp.float32, sharding=SingleDeviceSharding(device))
    try:
        jax.jit(lambda v: jnp.exp(v).sum()).lower(x).compile()
    except Exception as err:  # noqa: BLE001 - XLA raises a bare JaxRuntimeError
        if not any(sign in str(err) for sign in _NO_TOOLKIT):
            raise
        raise _missing(topology, f"XLA found no CUDA toolkit to compile with ({_first_line(err)})") from None


_NO_TOOLKIT = ("PTX compilation provider", "libdevice not found", "Couldn't find a suitable version of ptxas")


def _first_line(err: Exception) -> str:
    return re.split(r"(?<=\.)\s", str(err).strip().splitlines()[0])[0]
