"""Metric logging: JSONL (the source of truth), TensorBoard scalars, Weights & Biases and a tqdm progress bar.

``train.loggers`` names where a run's metrics go (:func:`parse_loggers`): ``jsonl`` (always written),
``tensorboard`` (default) and ``wandb`` (:mod:`urlvr_jax.utils.wandb_logger`: the same records, step for step, the
config attached, one W&B run per run_dir across resumes). Only process 0 builds a logger (the loop makes it with
:func:`urlvr_jax.utils.multihost.primary_only`).

``run_dir/metrics.jsonl`` holds one JSON object per ``log`` call: ``{"step": 12, "train/loss": 0.31, ...}``.
Lines are flushed as they are written. Non-finite floats are written as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` (strict JSON has no such numbers); ``read_metrics`` turns them back
into floats. Floats are written with ``repr`` precision, so values read back are bit-identical.
TensorBoard gets only the finite values (e.g. a point-biserial correlation is NaN when a reward is constant). Its
events are written synchronously (no background thread) and reach the disk at every :meth:`MetricsLogger.flush`.

Resuming: log a step's metrics and :meth:`~MetricsLogger.flush` *before* saving its checkpoint, and on restart pass
the restored checkpoint step as ``resume_step`` (-1 when nothing was restored; or call ``truncate_after``): lines
with a larger step are moved to ``metrics.dropped.jsonl`` so the resumed run does not duplicate them, and the
TensorBoard events are rewritten from the lines kept, so TensorBoard shows each step once, whatever a killed run
had or had not written (W&B keeps its own history: see :mod:`~urlvr_jax.utils.wandb_logger`). A failed write raises
an OSError naming the file.
"""

from __future__ import annotations

import glob
import json
import math
import os
import struct
import sys
import time
import warnings
from typing import Any, Iterable, Mapping

from tqdm.auto import tqdm

from urlvr_jax.utils.errors import UserError

METRICS_FILE = "metrics.jsonl"
DROPPED_FILE = "metrics.dropped.jsonl"
LOGGERS = ("jsonl", "tensorboard", "wandb")
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def parse_loggers(spec: str) -> frozenset[str]:
    """The loggers of ``train.loggers`` (``"tensorboard,jsonl,wandb"``), jsonl always among them; a UserError names
    an unknown one, or wandb asked for and not installed."""
    names = frozenset(name.strip() for name in str(spec).split(",") if name.strip())
    unknown = sorted(names - set(LOGGERS))
    if unknown:
        raise UserError(f"config train.loggers={spec!r}: unknown logger {', '.join(unknown)}; "
                        f"the loggers are {', '.join(LOGGERS)} (comma-separated; jsonl is always written)")
    if "wandb" in names:
        from urlvr_jax.utils.wandb_logger import require_wandb

        require_wandb()
    return names | {"jsonl"}


def _to_number(key: str, value: Any) -> int | float | bool:
    """Python scalar for a metric value (numpy / jax scalars included); TypeError naming ``key``."""
    if hasattr(value, "item") and getattr(value, "size", 1) == 1:
        value = value.item()
    if isinstance(value, (bool, int, float)):
        return value
    raise TypeError(f"metric '{key}' must be a number, got {type(value).__name__}: {value!r:.80}")


def _encode(value: int | float | bool) -> int | float | bool | str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _decode(record: dict) -> dict:
    return {k: _NONFINITE.get(v, v) if isinstance(v, str) else v for k, v in record.items()}


def _parse_lines(path: str) -> tuple[list[dict], list[str], str]:
    """Parse a metrics file into (records, raw lines, half-written tail); the tail is ignored with a warning."""
    with open(path) as f:
        text = f.read()
    lines = text.split("\n")
    complete, tail = lines[:-1], lines[-1]  # ``tail`` is "" when the file ends with a newline
    records, raw = [], []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not a JSON line ({err})") from None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise ValueError(f"{path}:{number}: expected an object with an integer 'step', got {line[:120]!r}")
        records.append(_decode(record))
        raw.append(line)
    if tail.strip():
        warnings.warn(f"{path}: ignoring a half-written last line ({len(tail)} chars, no newline)", stacklevel=3)
    return records, raw, tail


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """All records of a metrics JSONL file (or of ``run_dir/metrics.jsonl`` if given a directory)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, METRICS_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"metrics file {path} does not exist")
    return _parse_lines(path)[0]


def _tensorboardx():
    """``tensorboardX``'s event file writer, scalar summary and Event proto, imported without dragging in torch
    (an optional ~4 s import).

    tensorboardX's writer module does ``try: import torch`` only to accept torch tensors, which we never
    pass; if torch is not loaded yet, it is hidden during that import (``sys.modules`` entry None makes
    ``import torch`` raise ImportError) and restored right after, so later imports of torch still work.
    """
    hide = "tensorboardX" not in sys.modules and "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.summary import scalar
    finally:
        if hide:
            del sys.modules["torch"]
    return EventsWriter, scalar, Event


class _EventFile:
    """One TensorBoard event file in ``directory``, written synchronously (flushed by :meth:`flush`)."""

    def __init__(self, directory: str):
        os.makedirs(directory, exist_ok=True)
        events_writer, self._scalar, self._event = _tensorboardx()
        self._writer = events_writer(os.path.join(directory, "events"))

    def add_scalar(self, tag: str, value: float, step: int, wall_time: float | None = None) -> None:
        self._writer.write_event(self._event(wall_time=time.time() if wall_time is None else wall_time, step=step,
                                             summary=self._scalar(tag, value)))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def read_tensorboard(directory: str | os.PathLike) -> list[tuple[str, int, float]]:
    """(tag, step, value) of every scalar in the event files of ``directory``, in file order (TFRecord framing:
    length, its CRC, the Event proto, its CRC)."""
    event = _tensorboardx()[2]
    out = []
    for path in sorted(glob.glob(os.path.join(os.fspath(directory), "events.out.tfevents.*"))):
        with open(path, "rb") as f:
            data = f.read()
        offset = 0
        while offset + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            record = event.FromString(data[offset + 12:offset + 12 + length])
            offset += 12 + length + 4
            out += [(v.tag, record.step, v.simple_value) for v in record.summary.value]
    return out


class MetricsLogger:
    """Writes metrics to ``run_dir/metrics.jsonl``, TensorBoard (``run_dir/tb``), W&B and a tqdm bar.

    Args:
      run_dir: the run directory (created if missing).
      use_tensorboard: also write TensorBoard event files.
      wandb_config: if given, also log to a W&B run with this config attached (the run's config as a dict).
      progress_total: total steps for the progress bar (None: no total).
      progress_keys: metric keys shown in the bar's postfix, full (``train/loss``) or bare (``loss``).
      resume_step: if given, drop logged entries with ``step > resume_step`` first (see module doc).
      show_progress: False disables the bar (e.g. in tests or non-interactive jobs).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        use_tensorboard: bool = True,
        wandb_config: Mapping[str, Any] | None = None,
        progress_total: int | None = None,
        progress_keys: Iterable[str] = ("train/loss", "train/reward_mean"),
        resume_step: int | None = None,
        show_progress: bool = True,
    ):
        self.run_dir = os.fspath(run_dir)
        os.makedirs(self.run_dir, exist_ok=True)
        self.path = os.path.join(self.run_dir, METRICS_FILE)
        if resume_step is not None:
            self.truncate_after(resume_step)
        self._file = open(self.path, "a")
        self._writer = None
        if use_tensorboard:
            tb_dir = os.path.join(self.run_dir, "tb")
            if resume_step is not None:  # rewrite the events from the lines kept: each step once
                for old in glob.glob(os.path.join(tb_dir, "events.out.tfevents.*")):
                    os.remove(old)
            self._writer = _EventFile(tb_dir)
            if resume_step is not None and os.path.exists(self.path):
                for record in _parse_lines(self.path)[0]:
                    self._add_scalars(record)
                self._writer.flush()
        self._wandb = None
        if wandb_config is not None:
            from urlvr_jax.utils.wandb_logger import WandbRun

            self._wandb = WandbRun(self.run_dir, wandb_config)
        self.progress_keys = tuple(progress_keys)
        self._postfix: dict[str, str] = {}
        self._bar = tqdm(
            total=progress_total,
            initial=max(resume_step or 0, 0),
            disable=not show_progress,
            dynamic_ncols=True,
            file=sys.stderr,
            desc=os.path.basename(os.path.normpath(self.run_dir)),
        )

    def log(self, step: int, metrics: Mapping[str, Any], prefix: str | None = "train") -> dict:
        """Append one record ``{"step": step, "<prefix>/<name>": value, ...}``; returns it (decoded)."""
        value = _to_number("step", step)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"metrics step must be an int, got {step!r}")
        step = value
        record: dict[str, Any] = {"step": step}
        for name, value in metrics.items():
            key = f"{prefix}/{name}" if prefix else str(name)
            if key == "step":
                raise ValueError("metric name 'step' is reserved; use a prefix or another name")
            record[key] = _to_number(key, value)
        try:
            self._file.write(json.dumps({k: _encode(v) for k, v in record.items()}, allow_nan=False) + "\n")
            self._file.flush()
        except OSError as err:
            raise OSError(err.errno, f"cannot write {self.path}: {err.strerror or err}") from err
        self._add_scalars(record)
        if self._wandb is not None:
            self._wandb.log(record)
        self._update_bar(step, record)
        return record

    def _add_scalars(self, record: dict) -> None:
        if self._writer is not None:
            for key, value in record.items():
                if key != "step" and math.isfinite(value):  # non-finite values stay in the JSONL only
                    self._writer.add_scalar(key, float(value), record["step"])

    def flush(self) -> None:
        """Puts every line and TensorBoard event logged so far on disk (call it before saving a checkpoint)."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            if self._writer is not None:
                self._writer.flush()
        except OSError as err:
            raise OSError(err.errno, f"cannot write the logs of {self.run_dir}: {err.strerror or err}") from err

    def _update_bar(self, step: int, record: dict) -> None:
        for key, value in record.items():
            bare = key.rsplit("/", 1)[-1]
            shown = key if key in self.progress_keys else (bare if bare in self.progress_keys else None)
            if shown is not None and key != "step":
                self._postfix[shown] = f"{value:.4g}" if isinstance(value, float) else str(value)
        if step > self._bar.n:
            self._bar.update(step - self._bar.n)
        if self._postfix:
            self._bar.set_postfix(self._postfix, refresh=False)

    def truncate_after(self, step: int) -> int:
        """Drop entries with ``step > step`` from metrics.jsonl (atomic rewrite); returns how many.

        Dropped lines (and a half-written last line) are appended to ``metrics.dropped.jsonl``.
        """
        if not os.path.exists(self.path):
            return 0
        records, raw, tail = _parse_lines(self.path)
        keep = [line for rec, line in zip(records, raw) if rec["step"] <= step]
        dropped = [line for rec, line in zip(records, raw) if rec["step"] > step]
        if tail.strip():
            dropped.append(tail)
        if not dropped:
            return 0
        with open(os.path.join(self.run_dir, DROPPED_FILE), "a") as f:
            f.writelines(line + "\n" for line in dropped)
        tmp = f"{self.path}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            f.writelines(line + "\n" for line in keep)
        os.replace(tmp, self.path)
        return len(dropped)

    def close(self) -> None:
        """Flush and close the file, the TensorBoard writer, the W&B run and the bar (idempotent)."""
        if not self._file.closed:
            self._file.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._wandb is not None:
            self._wandb.close()
            self._wandb = None
        self._bar.close()

    def __enter__(self) -> "MetricsLogger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
