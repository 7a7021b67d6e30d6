"""Weights & Biases beside TensorBoard: ``train.loggers=tensorboard,wandb`` (see :mod:`urlvr_jax.utils.metrics_log`).

:class:`WandbRun` logs every record of ``metrics.jsonl`` as one W&B history row at the record's step (the same keys
and values: ``train/loss``, ``val/avg@k``, ``goodput/...``; non-finite values too) in a run whose config is the
run's config. The W&B run id is kept in ``run_dir/wandb_run_id``, so a resumed run (the same command again) continues
the same W&B run (``resume="allow"``). W&B keeps steps increasing: steps that a killed run logged after its last
checkpoint are recomputed bit for bit on resume and W&B keeps the first copy, equal to the second.

Where the files go: ``$WANDB_DIR`` if set, else ``run_dir`` (``run_dir/wandb/``); the project is ``$WANDB_PROJECT``
or ``urlvr_jax``; ``WANDB_MODE=offline`` writes the run locally for ``wandb sync``. wandb is an optional
dependency (``pip install 'urlvr_jax[wandb]'``); asking for it without it installed is one line, before the run
builds anything (:func:`require_wandb`, called by the config check).
"""

from __future__ import annotations

import os
import secrets
import string
from typing import Any, Mapping

from urlvr_jax.utils.errors import UserError

RUN_ID_FILE = "wandb_run_id"
MISSING = "train.loggers=wandb needs the wandb package: pip install 'urlvr_jax[wandb]'"


def require_wandb() -> Any:
    """The ``wandb`` module, or a :class:`~urlvr_jax.utils.errors.UserError` with the install line."""
    try:
        import wandb
    except ImportError:
        raise UserError(MISSING) from None
    return wandb


def run_id(run_dir: str) -> str:
    """The W&B run id of ``run_dir``: the one stored there, or a new one, stored."""
    path = os.path.join(run_dir, RUN_ID_FILE)
    if os.path.exists(path):
        with open(path) as f:
            stored = f.read().strip()
        if stored:
            return stored
    new = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))  # W&B's id alphabet
    with open(path, "w") as f:
        f.write(new + "\n")
    return new


class WandbRun:
    """One W&B run for ``run_dir``, with ``config`` (the run's config, as nested dicts) attached."""

    def __init__(self, run_dir: str, config: Mapping[str, Any]):
        wandb = require_wandb()
        self.id = run_id(run_dir)
        self._run = wandb.init(
            id=self.id, resume="allow", config=dict(config), name=os.path.basename(os.path.normpath(run_dir)),
            project=os.environ.get("WANDB_PROJECT", "urlvr_jax"),
            dir=None if os.environ.get("WANDB_DIR") else run_dir)

    def log(self, record: Mapping[str, Any]) -> None:
        """One metrics record (``{"step": s, key: value, ...}``) as history at step ``s``."""
        self._run.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])

    def close(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None
