"""The base config: every field of a run with the paper's defaults (defined in ``urlvr_jax.config_base``)."""

from urlvr_jax.config_base import get_config  # noqa: F401
