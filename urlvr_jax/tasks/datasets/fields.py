"""Which record fields feed which part of an ``Example``, and the ``data.fields`` mapping that renames them.

A *role* is what the loader needs (``question``, ``answer``, ``solution`` for math; ``numbers``, ``target`` for
Countdown). Each role has accepted field names, tried in order; a dotted name reads a nested field
(``reward_model.ground_truth`` is ``row["reward_model"]["ground_truth"]``; a flat key spelled with the dot, as
``pandas.json_normalize`` writes it, works too). ``data.fields`` (``question=Problem,answer=Answer``) puts the
user's names first, before the built-in ones, for the training and the validation dataset alike (a role the
dataset does not have, such as ``numbers`` for MATH-500, is ignored there; an unknown role is an error).
"""

from __future__ import annotations

from typing import Any, Mapping

#: role -> accepted field names, in the order they are tried.
MATH_FIELDS: dict[str, tuple[str, ...]] = {
    "question": ("problem", "Problem", "question", "Question", "prompt"),
    "answer": ("answer", "Answer", "ref_answer", "label", "ground_truth", "reward_model.ground_truth"),
    "solution": ("solution", "Solution"),
}
COUNTDOWN_FIELDS: dict[str, tuple[str, ...]] = {
    "numbers": ("nums", "numbers", "reward_model.ground_truth.numbers"),
    "target": ("target", "reward_model.ground_truth.target"),
}
ROLES = tuple(dict.fromkeys([*MATH_FIELDS, *COUNTDOWN_FIELDS]))
FIELDS_HINT = "map another field name with data.fields=ROLE=NAME, e.g. data.fields=question=Problem,answer=Answer"


class RowError(ValueError):
    """A record lacks a field or has the wrong kind of value (one line, no file or index: the caller adds them)."""


def parse_fields(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"question=Problem,answer=Answer"`` (or a mapping) as ``{role: field name}``; bad text raises
    ``ValueError`` naming ``data.fields`` and the roles."""
    if not spec:
        return {}
    if isinstance(spec, Mapping):
        pairs = [(str(k), str(v)) for k, v in spec.items()]
    else:
        pairs = []
        for part in (p.strip() for p in str(spec).split(",")):
            role, sep, name = part.partition("=")
            if not sep or not role.strip() or not name.strip():
                raise ValueError(f"config data.fields={spec!r}: {part!r} is not ROLE=NAME "
                                 f"(e.g. question=Problem,answer=Answer; roles: {', '.join(ROLES)})")
            pairs.append((role.strip(), name.strip()))
    out = {}
    for role, name in pairs:
        if role not in ROLES:
            raise ValueError(f"config data.fields: unknown role {role!r}; roles: {', '.join(ROLES)}")
        out[role] = name
    return out


def lookup(row: Mapping[str, Any], name: str) -> Any:
    """``row[name]``, or the nested value for a dotted ``name``; None when absent."""
    if name in row:
        return row[name]
    value: Any = row
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


class FieldReader:
    """Reads the roles of ``table`` from records, the names of ``overrides`` first."""

    def __init__(self, table: Mapping[str, tuple[str, ...]], overrides: Mapping[str, str] | None = None):
        overrides = {r: n for r, n in (overrides or {}).items() if r in table}
        self.names = {role: tuple(dict.fromkeys([*([overrides[role]] if role in overrides else []), *names]))
                      for role, names in table.items()}

    def get(self, row: Mapping[str, Any], role: str, required: bool = True) -> Any:
        for name in self.names[role]:
            value = lookup(row, name)
            if value is not None:
                return value
        if not required:
            return None
        keys = ", ".join(map(str, row)) or "none"
        raise RowError(f"no {role} field (accepted names: {', '.join(self.names[role])}; the record has: {keys})")

    def describe(self, roles: tuple[str, ...] | None = None) -> str:
        """``question (problem / Problem / ...), answer (...)``, for error messages and docs."""
        return ", ".join(f"{role} ({' / '.join(self.names[role])})" for role in roles or self.names)
