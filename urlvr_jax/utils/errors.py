"""The one exception the command lines print as a single line instead of a traceback.

It lives apart from ``config`` so that any module can raise it without importing the config machinery (and
without an import cycle through it); ``urlvr_jax.utils.config.UserError`` is the same class."""


class UserError(ValueError):
    """Bad input from the user (a config value, a path, a busy run_dir): the CLI prints its message alone."""
