"""The fault-injection tests run the CLI as the loop tests do: their helpers live in tests/rl/loop_fixtures.py.
Here: the CLI environment a module's runs share; tests/reliability/fault_fixtures.py: what a run_dir holds."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rl"))

from loop_fixtures import cli_env  # noqa: E402  (after the path above)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """One CPU device, a compilation cache shared by the module's runs, XLA's fastest-compiling level."""
    out = cli_env(str(tmp_path_factory.mktemp("jax_cache")))
    out["XLA_FLAGS"] = "--xla_backend_optimization_level=0"
    return out

