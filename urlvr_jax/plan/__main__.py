"""``python -m urlvr_jax.plan``: see :mod:`urlvr_jax.plan`."""

from urlvr_jax.plan.cli import main
from urlvr_jax.utils.entry import run_main

run_main(main)
