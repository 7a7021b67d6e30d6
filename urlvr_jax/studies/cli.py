"""Every study through the same two verbs, ``run`` and ``report`` (:data:`USAGE`). A table study
(:data:`urlvr_jax.studies.tables.STUDIES`) is arms of config overrides, run by :mod:`urlvr_jax.studies.runner`; a
module study runs its own experiment (:data:`MODULE_STUDIES`).
"""

from __future__ import annotations

import importlib
import sys

from urlvr_jax.studies.tables import STUDIES

# name -> (what it measures, run entry, report entry): "module:function" in urlvr_jax.studies, imported when used
MODULE_STUDIES = {
    "cpu_default": ("the README's main job: rise-then-fall and the Model Collapse Step, one seed",
                    "cpu_default:main", "cpu_default:report_main"),
    "seeds": ("the CPU default over seeds: mean curves, 95% intervals, the rise/fall claims",
              "seeds:main", "seeds:report_main"),
    "gap_by_kind": ("the majority-vote - ground-truth gap of the seeds split by the prior's kinds",
                    "gap_by_kind:main", "gap_by_kind:report_main"),
    "prior_ranking": ("8 warm-started priors ranked by their Model Collapse Step against their GT-RL gain",
                      "prior_ranking:main", "prior_ranking_report:main"),
    "per_problem": ("per-problem and out-of-distribution views (paper section 5)",
                    "per_problem:main", "per_problem_report:main"),
    "real_model": ("SmolLM2-135M-Instruct on a CPU: majority vote against ground truth, per problem",
                   "real_model:main", "real_model_report:main"),
}
VERBS = ("run", "report")
USAGE = """\
python -m urlvr_jax.studies run NAME [flags]       # train (resumable), then the report of what is finished
python -m urlvr_jax.studies report NAME [flags]    # the findings again, from the finished runs
python -m urlvr_jax.studies run NAME --help        # a study's own flags
python -m urlvr_jax.studies list [NAME] [--scale toy|paper]    # a table study's arms and overrides"""


def usage() -> str:
    lines = [USAGE, "", "table studies (flags: --scale --seeds --only --set --root --out --dry-run):",
             "  " + ", ".join(STUDIES), "", "module studies:"]
    return "\n".join(lines + [f"  {name:<14} {what}" for name, (what, *_) in MODULE_STUDIES.items()])


def _entry(spec: str):
    module, function = spec.split(":")
    return getattr(importlib.import_module(f"urlvr_jax.studies.{module}"), function)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    verb, rest = argv[0], argv[1:]
    from urlvr_jax.studies import runner

    if verb == "list":
        return runner.main(argv)
    names = [*STUDIES, *MODULE_STUDIES]
    if verb not in VERBS:
        print(f"error: unknown verb {verb!r}; give run, report or list (python -m urlvr_jax.studies --help)",
              file=sys.stderr)
        return 2
    if not rest or rest[0].startswith("-"):
        print(f"error: {verb} needs a study: {', '.join(names)}", file=sys.stderr)
        return 2
    name, flags = rest[0], rest[1:]
    if name in MODULE_STUDIES:
        return _entry(MODULE_STUDIES[name][1 + VERBS.index(verb)])(flags)
    if name in STUDIES:
        return runner.main([verb, name, *flags])
    print(f"error: unknown study {name!r}; valid studies: {', '.join(names)}", file=sys.stderr)
    return 2
