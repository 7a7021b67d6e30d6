"""Where a run's files live: a local directory, a directory every host shares, or a ``gs://`` URL.

On a pod, ``run_dir`` must be visible to every host: orbax writes each host's shards of a checkpoint there
itself, through its own path handling (local paths, shared filesystems, ``gs://``). The run's other files are
small and written by process 0 alone (:mod:`urlvr_jax.utils.multihost`):
``metrics.jsonl`` (appended every step), TensorBoard events, ``config.json``, ``curves.png`` and the HF export.
Object stores cannot append, so for a URL ``run_dir`` these go to a local mirror directory
(``$URLVR_LOCAL_RUNS``, default ``<tmp>/urlvr_runs``, one sub-directory per URL) that is

* downloaded from ``run_dir`` when the run starts, so a resumed run continues its metrics and events;
* uploaded to ``run_dir`` after every checkpoint and when the run ends (``etils.epath``: ``gs://`` needs
  ``gcsfs`` or TensorFlow's file system on the hosts, as for orbax).

A local or shared ``run_dir`` is its own mirror: nothing is copied.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile

from etils import epath

CHECKPOINTS = "checkpoints"


def is_url(path: str | os.PathLike) -> bool:
    return "://" in os.fspath(path)


class RunStorage:
    """``run_dir`` (local path or URL) and ``local_dir``, the local directory process 0 writes logs into."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = os.fspath(run_dir)
        if is_url(self.run_dir):
            root = os.environ.get("URLVR_LOCAL_RUNS") or os.path.join(tempfile.gettempdir(), "urlvr_runs")
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.run_dir.split("://", 1)[1]).strip("_")[-80:]
            digest = hashlib.sha1(self.run_dir.encode()).hexdigest()[:8]
            self.local_dir = os.path.join(root, f"{slug}-{digest}")
        else:
            self.local_dir = self.run_dir

    @property
    def mirrored(self) -> bool:
        return self.local_dir != self.run_dir

    def checkpoint_dir(self) -> str:
        """Where orbax keeps the checkpoints: always under ``run_dir`` itself (shared by the hosts)."""
        return f"{self.run_dir.rstrip('/')}/{CHECKPOINTS}" if self.mirrored else os.path.join(self.run_dir,
                                                                                             CHECKPOINTS)

    def download(self) -> None:
        """Copies ``run_dir``'s logs (not its checkpoints) into the local mirror; creates ``local_dir``."""
        os.makedirs(self.local_dir, exist_ok=True)
        if self.mirrored:
            _copy_tree(epath.Path(self.run_dir), epath.Path(self.local_dir))

    def upload(self) -> None:
        """Copies the local mirror's files to ``run_dir`` (a no-op for a local ``run_dir``)."""
        if self.mirrored:
            _copy_tree(epath.Path(self.local_dir), epath.Path(self.run_dir))


def _copy_tree(src: epath.Path, dst: epath.Path) -> None:
    """Every file under ``src`` (but ``checkpoints/``) copied to the same place under ``dst``, overwriting."""
    if not src.exists():
        return
    dst.mkdir(parents=True, exist_ok=True)
    for child in src.iterdir():
        if child.name == CHECKPOINTS:
            continue
        if child.is_dir():
            _copy_tree(child, dst / child.name)
        else:
            child.copy(dst / child.name, overwrite=True)
