"""How every command-line entry point starts: ``run_main(main)`` in its ``__main__`` block.

1. :func:`urlvr_jax.utils.huge_pages.use_huge_pages` restarts the interpreter once with glibc's huge-page tunable;
2. :func:`urlvr_jax.utils.distributed.maybe_initialize` joins the pod when ``URLVR_DISTRIBUTED=1`` (every process of
   a multi-host run calls the same entry point; see launch/README.md), before anything touches a device;
3. ``main()`` runs, and a user error ends it with one line; so does a preemption (SIGTERM / SIGINT), after the run saved
   a checkpoint, with the exit code :data:`~urlvr_jax.utils.preemption.PREEMPTED_EXIT_CODE` (75) that the launchers
   requeue on.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, NoReturn

from urlvr_jax.utils.distributed import PEER_LOST_EXIT_CODE, lost_peer_line, maybe_initialize, shutdown
from urlvr_jax.utils.huge_pages import use_huge_pages
from urlvr_jax.utils.preemption import PREEMPTED_EXIT_CODE, Preempted


def run_main(main: Callable[[], int | None]) -> NoReturn:
    """An entry point's ``__main__`` block: huge pages, the pod's processes, then ``sys.exit(main())``.

    Errors the user can fix (a bad config value or path, a full disk, a busy run_dir, a diverged run: ValueError,
    OSError, FloatingPointError) print ``error: <message>`` as one line and exit 1; ``URLVR_DEBUG=1`` or ``--debug``
    shows the traceback instead. A preempted run (:class:`~urlvr_jax.utils.preemption.Preempted`) prints
    ``preempted at step N: checkpoint saved to ...; run the same command to resume`` and exits 75. The exit skips
    interpreter shutdown, so no background thread (TensorBoard's
    writer, orbax's) prints its own traceback after the message.
    """
    # transformers' advice "PyTorch was not found. Models won't be available ..." on every start of an install
    # without torch, which urlvr_jax's JAX models never need (GGUF weights, which do, name the extra themselves)
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    use_huge_pages()
    try:
        maybe_initialize()
        code = main()
    except Preempted as stop:  # every process saved the same step; leave the pod together, then go
        shutdown()
        _exit(str(stop), PREEMPTED_EXIT_CODE)
    except (ValueError, OSError, FloatingPointError) as err:
        if os.environ.get("URLVR_DEBUG", "0") not in ("", "0") or "--debug" in sys.argv[1:]:
            raise
        _exit(f"error: {' '.join(str(err).split()) or type(err).__name__}", 1)
    except Exception as err:  # noqa: BLE001 - only a collective whose peer is gone is explained; the rest re-raise
        line = lost_peer_line(err)
        if line is None:
            raise
        _exit(line, PEER_LOST_EXIT_CODE)  # (no shutdown: its barrier would wait for the dead process, then abort)
    sys.exit(code)


def _exit(line: str, code: int) -> NoReturn:
    print(line, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
