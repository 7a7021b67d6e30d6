"""Plan mode moved to :mod:`urlvr_jax.plan` (``python -m urlvr_jax.plan``); this name still runs it."""

if __name__ == "__main__":
    import sys

    from urlvr_jax.plan.cli import main

    sys.exit(main())
