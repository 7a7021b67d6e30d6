"""PNG plots of logged metric curves: one subplot per panel, several runs overlaid on shared axes."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from urlvr_jax.utils.metrics_log import read_metrics  # noqa: E402

Records = Sequence[Mapping[str, object]]
Panel = tuple[str, Sequence[str]]


def _load(source: str | os.PathLike | Records) -> list[Mapping[str, object]]:
    if isinstance(source, (str, os.PathLike)):
        return read_metrics(source)
    return list(source)


def _series(records: Records, key: str, x_key: str) -> tuple[list[float], list[float]]:
    """(x, y) of every record that has ``key``; non-numeric values are skipped, NaN leaves a gap."""
    xs, ys = [], []
    for rec in records:
        value = rec.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and x_key in rec:
            xs.append(float(rec[x_key]))
            ys.append(float(value))
    return xs, ys


def plot_curves(
    source: str | os.PathLike | Records | None,
    out_png: str | os.PathLike,
    panels: Sequence[Panel],
    runs: Mapping[str, str | os.PathLike | Records] | None = None,
    collapse_step: int | Mapping[str, int] | None = None,
    title: str | None = None,
    x_key: str = "step",
) -> str:
    """Plot metric curves to ``out_png`` and return its path.

    Args:
      source: one run's metrics (a JSONL path, a run directory or a list of records); None when ``runs``.
      out_png: output PNG path (its folder is created).
      panels: ``[(panel title, [metric keys]), ...]``: one subplot each, every key of every run drawn in it.
      runs: ``{label: metrics}`` to overlay several runs (``source`` is then added as label "run" if given).
      collapse_step: a step (or ``{label: step}``) marked with a dashed vertical line.
      title: figure title.
      x_key: the record field used as x axis.

    Raises:
      ValueError: no panels, no runs, or a panel key found in none of the runs (the message lists the
        keys that exist).
    """
    all_runs: dict[str, list] = {}
    if source is not None:
        all_runs["run"] = _load(source)
    for label, data in (runs or {}).items():
        all_runs[str(label)] = _load(data)
    if not all_runs:
        raise ValueError("plot_curves needs metrics: pass `source` or `runs`")
    if not panels:
        raise ValueError("plot_curves needs at least one panel (title, [metric keys])")
    available = sorted({k for recs in all_runs.values() for rec in recs for k in rec})
    missing = [k for _, keys in panels for k in keys
               if not any(_series(recs, k, x_key)[0] for recs in all_runs.values())]
    if missing:
        raise ValueError(f"plot_curves: metric keys {missing} are in none of the runs; available keys: {available}")

    marks = collapse_step if isinstance(collapse_step, Mapping) else (
        {} if collapse_step is None else {"collapse": collapse_step})
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (panel_title, keys) in zip(axes[0], panels):
        for label, records in all_runs.items():
            for key in keys:
                xs, ys = _series(records, key, x_key)
                if not xs:
                    continue
                name = " ".join(p for p in (label if len(all_runs) > 1 else "", key if len(keys) > 1 else "") if p)
                ax.plot(xs, ys, label=name or key, linewidth=1.5)
        for i, (mark_label, step) in enumerate(marks.items()):
            ax.axvline(step, color=f"C{(i + 7) % 10}", linestyle="--", linewidth=1,
                       label=f"{mark_label} @ {step}" if len(marks) > 1 else f"collapse @ {step}")
        ax.set_title(panel_title)
        ax.set_xlabel(x_key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, out_png)


def save_figure(fig, out_png: str | os.PathLike, dpi: int = 110) -> str:
    """Lays out ``fig``, writes it to ``out_png`` (its folder created; atomically, so a reader never sees half a
    PNG), closes it and returns the path."""
    fig.tight_layout()
    out_png = os.fspath(out_png)
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    tmp = f"{out_png}.tmp.{os.getpid()}"
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        os.replace(tmp, out_png)
    finally:
        plt.close(fig)
    return out_png
