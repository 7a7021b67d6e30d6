"""``python -m urlvr_jax.studies run|report NAME [flags]``: see :mod:`urlvr_jax.studies.cli`."""

from urlvr_jax.studies.cli import main

if __name__ == "__main__":
    from urlvr_jax.utils.entry import run_main

    run_main(main)  # huge pages for XLA's buffers, the pod's processes (URLVR_DISTRIBUTED=1), then main
