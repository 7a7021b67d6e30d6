"""The paper's studies, run and reported through two verbs: ``python -m urlvr_jax.studies run|report NAME``
(:mod:`~urlvr_jax.studies.cli`; ``--help`` lists the studies).

The machinery, once: :mod:`~urlvr_jax.studies.runner` (a table study's arms as configs, trained seed by seed),
:mod:`~urlvr_jax.studies.tables` (each table study's arms and study-wide overrides), :mod:`~urlvr_jax.studies.report`
(a table study's page, JSON and figure), :mod:`~urlvr_jax.studies.stats` (intervals over seeds, ``--seeds``).
The module studies, each defining its arms and its findings: :mod:`~urlvr_jax.studies.cpu_default` (the README's
main job), :mod:`~urlvr_jax.studies.seeds` (it over seeds), :mod:`~urlvr_jax.studies.gap_by_kind`,
:mod:`~urlvr_jax.studies.prior_ranking` (findings: ``prior_ranking_report``),
:mod:`~urlvr_jax.studies.per_problem` (findings: ``per_problem_report``) and, on a real pretrained model,
:mod:`~urlvr_jax.studies.real_model` (findings: ``real_model_report``). Names are imported lazily (docs/api.md).
"""

from urlvr_jax._exports import lazy_exports

_EXPORTS = {"study_runs": "tables", "build_config": "runner", "run_study": "runner", "write_report": "report"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
