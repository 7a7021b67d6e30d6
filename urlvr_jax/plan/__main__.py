"""``python -m urlvr_jax.plan``: see :mod:`urlvr_jax.plan`."""

import sys

from urlvr_jax.plan.cli import main

sys.exit(main())
