"""The common example record, the ``Task`` protocol, the task registry and answer-parsing helpers."""

from __future__ import annotations

import dataclasses
import importlib
import re
from typing import Any, Callable, Protocol, runtime_checkable


@dataclasses.dataclass(frozen=True)
class Example:
    """One problem: the question text, its reference answer, an optional worked solution and metadata.

    ``prompt`` is the bare question (no template applied). ``info`` holds task metadata, e.g.
    ``{"answer_type": "number"}`` or Countdown's ``{"numbers": [...], "target": 24}``; it is JSON-serialisable.
    """

    prompt: str
    answer: str
    solution: str | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Example":
        return cls(data["prompt"], data["answer"], data.get("solution"), dict(data.get("info") or {}))


@runtime_checkable
class Task(Protocol):
    """A procedurally generated task with an exact verifier."""

    name: str

    def generate(self, n: int, seed: int) -> list[Example]:
        """``n`` examples, deterministic in ``seed``; ``generate(k, s)`` is a prefix of ``generate(n, s)``."""
        ...

    def extract_answer(self, response_text: str, example: Example | None = None) -> str | None:
        """The answer string the response commits to, or None if it gives none."""
        ...

    def verify(self, response_text: str, example: Example) -> float:
        """1.0 if the response's answer is exactly right, else 0.0."""
        ...


_REGISTRY: dict[str, Callable[..., Task]] = {}
_BUILTIN_MODULES = ("urlvr_jax.tasks.arithmetic", "urlvr_jax.tasks.countdown")


def register_task(name: str, factory: Callable[..., Task]) -> None:
    """Register a task factory (a class or function taking keyword options) under ``name``."""
    if name in _REGISTRY and _REGISTRY[name] is not factory:
        raise ValueError(f"task {name!r} is already registered")
    _REGISTRY[name] = factory


def task_names() -> list[str]:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    return sorted(_REGISTRY)


def get_task(name: str, **options: Any) -> Task:
    """Build the task ``name`` with keyword ``options`` (e.g. ``get_task("arithmetic", digits=2)``)."""
    names = task_names()
    if name not in _REGISTRY:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(names)}")
    try:
        return _REGISTRY[name](**options)
    except TypeError as err:
        raise TypeError(f"bad options for task {name!r}: {err}") from err


# ----------------------------------------------------------------------------- answer parsing

_INT_LITERAL = re.compile(r"[+-]?[0-9]+")


def parse_int_literal(text: str | None) -> int | None:
    """The integer if ``text`` (stripped) is a plain integer literal such as ``-12``; None otherwise.

    Expressions (``14+33``), decimals (``47.0``) and words are not literals and give None.
    """
    if text is None:
        return None
    text = text.strip()
    return int(text) if _INT_LITERAL.fullmatch(text) else None


def extract_last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces matched; None if absent or unclosed."""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    if not starts:
        return None
    depth = 1
    for i in range(starts[-1], len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[starts[-1]:i]
    return None  # the last box is never closed (e.g. a truncated response)


def extract_last_tag(text: str, tag: str = "answer") -> str | None:
    """The stripped content of the last ``<tag>...</tag>`` pair in ``text``; None if there is none.

    Pairs are those of ``re.findall(r"<tag>(.*?)</tag>")`` (an opener pairs with the next closer, scanning
    resumes after it), found with ``str.find`` in one left-to-right pass: linear time, where the regex is
    quadratic on many unclosed openers.
    """
    opener, closer = f"<{tag}>", f"</{tag}>"
    last, position = None, 0
    while (start := text.find(opener, position)) >= 0:
        end = text.find(closer, start + len(opener))
        if end < 0:
            break  # no closer after this opener, hence none after any later one
        last, position = text[start + len(opener) : end], end + len(closer)
    return last.strip() if last is not None else None
