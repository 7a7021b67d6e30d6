"""The package list (the rest is in pyproject.toml): urlvr_jax's packages, and the repo's configs/ shipped inside the
wheel as ``urlvr_jax.configs``, so ``urlvr train --config tiny_gt`` finds them where no checkout is
(urlvr_jax/utils/config.py looks there first)."""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["urlvr_jax*"]) + ["urlvr_jax.configs"],
      package_dir={"urlvr_jax.configs": "configs"})
