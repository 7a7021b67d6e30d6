"""Executable checks of the paper's theory on toy policies (exact KL iteration, policy-gradient flow, sampled
GRPO, the coupled toy). ``python -m urlvr_jax.theory.report`` prints every check; names are imported lazily."""

from urlvr_jax._exports import lazy_exports

_EXPORTS = {
    "Row": "checks", "all_checks": "checks", "check_theorem1": "checks", "check_unified": "checks",
    "check_sharpening": "checks", "check_sampled_sharpening": "checks", "check_alignment": "checks",
    "check_coupling": "checks", "format_table": "report",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
