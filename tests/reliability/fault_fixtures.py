"""What a run_dir holds, as the fault-injection tests read it."""

import os


def checkpoint_steps(run_dir) -> list[int]:
    """The committed checkpoint steps of a run_dir, ascending (orbax's temporary directories left out)."""
    folder = os.path.join(run_dir, "checkpoints")
    return sorted(int(d) for d in os.listdir(folder) if d.isdigit()) if os.path.isdir(folder) else []
