"""Every command the docs tell a user to run names something that exists: each ``python -m urlvr_jax...`` module,
each ``urlvr COMMAND``, each study of ``studies run|report NAME``, each ``--config NAME`` and each script path. A
module moved or a study renamed without its docs fails here (the layout of issue 33 moved most of them)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from urlvr_jax import cli
from urlvr_jax.studies.cli import MODULE_STUDIES
from urlvr_jax.studies.tables import STUDIES
from urlvr_jax.utils.config import available_configs

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "launch" / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
MODULE = re.compile(r"python3? -m (urlvr_jax[\w.]*)")
URLVR = re.compile(r"(?<![\w./-])urlvr (\w[\w-]*)")
STUDY = re.compile(r"-m urlvr_jax\.studies (?:run|report) (\w+)")
CONFIG = re.compile(r"--config ([\w./-]+?)(?::[\w.,-]+)?(?=[\s`|)\\]|$)")
SCRIPT = re.compile(r"python3? ((?:benchmarks|launch|notebooks|tests)/[\w/.-]+\.py)")


def documented(pattern: re.Pattern) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in DOCS:
        for match in pattern.finditer(path.read_text()):  # (all of the page: prose quotes commands too)
            found.setdefault(match.group(1), set()).add(path.relative_to(REPO).as_posix())
    return found


def test_the_docs_give_commands():
    assert len(documented(MODULE)) >= 10 and documented(STUDY) and documented(CONFIG)  # the patterns still match


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # (a parent package that is gone)
        return False


def test_every_documented_module_exists():
    moved = {"docs/api.md"}  # its table of the commands that moved gives the old paths beside the new ones
    missing = {m: pages for m, pages in documented(MODULE).items()
               if not module_exists(m) and not (m.startswith("urlvr_jax.experiments") and pages <= moved)}
    assert not missing, missing


def test_every_documented_urlvr_command_exists():
    unknown = {c: pages for c, pages in documented(URLVR).items() if c not in cli.COMMANDS and not c.isupper()}
    assert not unknown, unknown


def test_every_documented_study_exists():
    unknown = {s: pages for s, pages in documented(STUDY).items() if s not in {*STUDIES, *MODULE_STUDIES} and not s.isupper()}
    assert not unknown, unknown


def test_every_documented_config_exists():
    names = set(available_configs())

    def exists(config: str) -> bool:  # a name in configs/, a path to a file, or a placeholder (NAME)
        return config in names or (REPO / config).is_file() or config.isupper()

    unknown = {c: pages for c, pages in documented(CONFIG).items() if not exists(c)}
    assert not unknown, unknown


def test_every_documented_script_exists():
    missing = {s: pages for s, pages in documented(SCRIPT).items() if not (REPO / s).is_file()}
    assert not missing, missing
