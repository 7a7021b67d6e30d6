"""What each local dataset file looks like and how its rows map onto ``Example``.

Every dataset lives in ``<root>/<name>/`` where ``<root>`` is ``$URLVR_DATA_DIR`` (default ``~/urlvr_data``).
A split is read from the first file found among ``<stem>.jsonl``, ``<stem>.json``, ``<stem>.parquet``
(or shards ``<stem>-*.parquet`` / ``<stem>-*.jsonl``) for its stems, in order.

=========  =====  ============================================  ======================================
name       split  file stems                                    fields -> Example
=========  =====  ============================================  ======================================
dapo17k    train  train, dapo17k, dapo-math-17k, dapo_math_17k  prompt <- ``prompt`` (text or chat
                                                                messages); answer <- ``answer`` or
                                                                ``reward_model.ground_truth``;
                                                                info: data_source
math500    test   test, math500, math-500                       prompt <- ``problem``; answer <-
                                                                ``answer``; solution <- ``solution``;
                                                                info: subject, level, unique_id
aime24     test   test, aime24, aime_2024                       prompt <- ``problem`` / ``question`` /
                                                                ``prompt``; answer <- ``answer``;
                                                                info: id, year, url
aime25     test   test, aime25, aime_2025                       as aime24
amc23      test   test, amc23                                   as aime24 (``question`` usually);
                                                                info: id, url
countdown  train  train, countdown, countdown_tasks_3to4        prompt <- ``countdown_question(nums,
           test   test                                          target)``; answer <- str(``target``);
                                                                info: numbers, target
=========  =====  ============================================  ======================================

Every example's ``info`` also has ``source`` (the dataset name), ``index`` (the row number) and
``answer_type`` (``"math"``, or ``"expression"`` for Countdown).

Notes. Any question field may be a string or a list of chat messages (the last ``user`` message is used),
as in the TTRL / verl parquet files (``prompt`` = messages, ``reward_model.ground_truth`` = answer); the
TTRL ``train.json`` copy of DAPO has plain ``prompt`` / ``answer``. The original BytedTsinghua
DAPO-Math-17k prompt wraps each problem in an "Answer:"-line instruction; that wrapper is removed, and
repeated problems are dropped (that file repeats each problem many times), leaving ~17k rows.
Numeric answers become text (``27.0`` -> ``"27"``). The paper's Countdown split (4k train / 1k
validation) is ``split="train[:4000]"`` / ``"train[-1000:]"``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from urlvr_jax.tasks.base import Example
from urlvr_jax.tasks.countdown import countdown_question

PROMPT_FIELDS = ("problem", "question", "prompt")

_DAPO_HEAD = "Solve the following math problem step by step."
_DAPO_TAIL = "\n\nRemember to put your answer on its own line after"


class RowError(ValueError):
    """A row lacks a field or has the wrong kind of value."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str
    splits: dict[str, tuple[str, ...]]
    fields_help: str
    convert: Callable[[dict[str, Any], int, "DatasetSpec"], Example]
    info_fields: tuple[str, ...] = ()
    dedupe: bool = False
    description: str = ""


def answer_text(value: Any) -> str:
    """A reference answer as text: integral floats lose their ``.0``; strings are stripped."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return answer_text(value[0])
    return str(value).strip()


def _message_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(m, dict) for m in value):
        users = [m for m in value if m.get("role") == "user"] or list(value)
        content = users[-1].get("content")
        if isinstance(content, str):
            return content
    raise RowError(f"expected text or a list of chat messages with 'content', got {type(value).__name__}")


def strip_dapo_wrapper(text: str) -> str:
    """The bare problem from an original DAPO-Math-17k prompt (text without the wrapper is returned as is)."""
    if text.startswith(_DAPO_HEAD) and "\n\n" in text:
        body = text.split("\n\n", 1)[1]
        tail = body.rfind(_DAPO_TAIL)
        return (body[:tail] if tail >= 0 else body).strip()
    return text.strip()


def _get_answer(row: dict[str, Any]) -> Any:
    if row.get("answer") is not None:
        return row["answer"]
    reward_model = row.get("reward_model")
    if isinstance(reward_model, dict) and reward_model.get("ground_truth") is not None:
        return reward_model["ground_truth"]
    raise RowError("missing field 'answer' (or 'reward_model.ground_truth')")


def convert_math(row: dict[str, Any], index: int, spec: DatasetSpec) -> Example:
    field = next((f for f in PROMPT_FIELDS if row.get(f) is not None), None)
    if field is None:
        raise RowError(f"missing a question field (one of {', '.join(PROMPT_FIELDS)})")
    prompt = strip_dapo_wrapper(_message_text(row[field]))
    info = {"source": spec.name, "index": index, "answer_type": "math"}
    info.update({k: row[k] for k in spec.info_fields if row.get(k) is not None})
    solution = row.get("solution") if isinstance(row.get("solution"), str) else None
    return Example(prompt=prompt, answer=answer_text(_get_answer(row)), solution=solution, info=info)


def convert_countdown(row: dict[str, Any], index: int, spec: DatasetSpec) -> Example:
    for key in ("nums", "target"):
        if row.get(key) is None:
            raise RowError(f"missing field {key!r}")
    try:
        numbers = [int(x) for x in row["nums"]]
        target = int(row["target"])
    except (TypeError, ValueError):
        raise RowError("'nums' must be a list of integers and 'target' an integer") from None
    info = {"source": spec.name, "index": index, "task": "countdown", "numbers": numbers,
            "target": target, "answer_type": "expression"}
    return Example(prompt=countdown_question(numbers, target), answer=str(target), solution=None, info=info)


_MATH_HELP = "a question field (problem / question / prompt) and 'answer'"

SPECS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("dapo17k", {"train": ("train", "dapo17k", "dapo-math-17k", "dapo_math_17k")},
                    "'prompt' (text or chat messages) and 'answer' (or 'reward_model.ground_truth')",
                    convert_math, ("data_source",), dedupe=True,
                    description="DAPO-Math-17k training problems (integer answers)."),
        DatasetSpec("math500", {"test": ("test", "math500", "math-500")},
                    "'problem', 'answer' (optional: solution, subject, level, unique_id)",
                    convert_math, ("subject", "level", "unique_id"), description="MATH-500 test problems."),
        DatasetSpec("aime24", {"test": ("test", "aime24", "aime_2024")}, _MATH_HELP,
                    convert_math, ("id", "year", "url"), description="AIME 2024 (30 problems)."),
        DatasetSpec("aime25", {"test": ("test", "aime25", "aime_2025")}, _MATH_HELP,
                    convert_math, ("id", "year", "url"), description="AIME 2025 (30 problems)."),
        DatasetSpec("amc23", {"test": ("test", "amc23")}, _MATH_HELP,
                    convert_math, ("id", "url"), description="AMC 2023 (40 problems)."),
        DatasetSpec("countdown", {"train": ("train", "countdown", "countdown_tasks_3to4"), "test": ("test",)},
                    "'nums' (list of integers) and 'target' (integer)", convert_countdown,
                    description="Countdown-Tasks-3to4 (numbers and target)."),
    )
}


def convert_rows(spec: DatasetSpec, path: Path, rows: list[dict[str, Any]],
                 seen: set[str] | None = None, start: int = 0) -> list[Example]:
    """All rows mapped to examples; the first bad row raises ``ValueError`` naming file, row and fields.

    ``info["index"]`` is ``start`` + the row number. With ``spec.dedupe``, prompts already in ``seen``
    (updated in place) are dropped.
    """
    examples, seen = [], (set() if seen is None else seen)
    for i, row in enumerate(rows):
        try:
            example = spec.convert(row, start + i, spec)
        except RowError as err:
            raise ValueError(f"{path}: row {i}: {err}; dataset {spec.name!r} needs {spec.fields_help}") from None
        if spec.dedupe:
            if example.prompt in seen:
                continue
            seen.add(example.prompt)
        examples.append(example)
    return examples
