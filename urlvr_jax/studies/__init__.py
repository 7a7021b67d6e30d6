"""The paper's experiments on top of the loop: studies as config tables, the Model Collapse Step tool,
the supervised warm start that makes a partial prior. Names are imported lazily (see docs/api.md)."""

from urlvr_jax._exports import lazy_exports

_EXPORTS = {
    "study_runs": "studies", "build_config": "studies", "run_study": "studies", "write_report": "study_report",
    "make_prior": "warm_start", "WarmStartConfig": "warm_start",
    "rank_correlation": "collapse_step",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
