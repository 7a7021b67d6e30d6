"""Configs, metric logs and plots, checkpoints, multi-host helpers, the entry points' start and their one-line
``UserError``. Names are imported lazily (see docs/api.md)."""

from urlvr_jax._exports import lazy_exports

_EXPORTS = {
    "load_config": "config", "apply_overrides": "config", "parse_cli": "config", "save_config": "config",
    "UserError": "errors", "read_metrics": "metrics_log", "plot_curves": "plots",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
