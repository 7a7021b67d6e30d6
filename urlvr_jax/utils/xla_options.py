"""Per-program XLA compiler options (``jax.jit(..., compiler_options=...)``).

XLA:CPU in jax 0.10 hands matmuls, reductions and elementwise fusions to YNNPACK. On the small, many-row arrays
of this codebase's CPU programs (decode steps, toy policies with 8 answers) its reduce and elementwise fusions ran
1.5-3x slower than XLA's own loops, while its matmuls are as fast as PyTorch's (measured with ``jax.profiler``;
see benchmarks/README.md). By default these options keep YNNPACK for matmuls only; programs without matmuls that
matter (the toy policies) turn it off entirely. They are CPU options, so they are passed only to programs
compiled for CPU devices; GPU and TPU programs get none.
"""

from __future__ import annotations

import jax

YNN_MATMULS_ONLY = "LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
YNN_NONE = ""


def compiler_options(mesh: jax.sharding.Mesh | None = None, *, ynn_fusions: str = YNN_MATMULS_ONLY
                     ) -> dict[str, str] | None:
    """Options for a program that runs on ``mesh`` (default: the default backend's devices)."""
    platform = mesh.devices.flat[0].platform if mesh is not None else jax.default_backend()
    return {"xla_cpu_experimental_ynn_fusion_type": ynn_fusions} if platform == "cpu" else None
