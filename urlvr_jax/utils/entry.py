"""How every command-line entry point starts: ``run_main(main)`` in its ``__main__`` block.

1. :func:`urlvr_jax.utils.huge_pages.use_huge_pages` restarts the interpreter once with glibc's huge-page tunable;
2. :func:`urlvr_jax.utils.distributed.maybe_initialize` joins the pod when ``URLVR_DISTRIBUTED=1`` (every process of
   a multi-host run calls the same entry point; see launch/README.md), before anything touches a device;
3. ``main()`` runs, and a user error ends it with one line.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, NoReturn

from urlvr_jax.utils.distributed import maybe_initialize
from urlvr_jax.utils.huge_pages import use_huge_pages


def run_main(main: Callable[[], int | None]) -> NoReturn:
    """An entry point's ``__main__`` block: huge pages, the pod's processes, then ``sys.exit(main())``.

    Errors the user can fix (a bad config value or path, a full disk, a busy run_dir, a diverged run: ValueError,
    OSError, FloatingPointError) print ``error: <message>`` as one line and exit 1; ``URLVR_DEBUG=1`` or ``--debug``
    shows the traceback instead. The exit skips interpreter shutdown, so no background thread (TensorBoard's
    writer, orbax's) prints its own traceback after the message.
    """
    use_huge_pages()
    try:
        maybe_initialize()
        code = main()
    except (ValueError, OSError, FloatingPointError) as err:
        if os.environ.get("URLVR_DEBUG", "0") not in ("", "0") or "--debug" in sys.argv[1:]:
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"error: {message}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    sys.exit(code)
