"""What each local dataset file looks like and how its records map onto ``Example``.

Every dataset lives in ``<root>/<name>/`` where ``<root>`` is ``$URLVR_DATA_DIR`` (default ``~/urlvr_data``).
A split is read from the first file found among ``<stem>.jsonl``, ``<stem>.json``, ``<stem>.parquet``
(or shards ``<stem>-*.parquet`` / ``<stem>-*.jsonl``) for its stems, in order.

=========  =====  ============================================  ===========================================
name       split  file stems                                    kept in ``info``
=========  =====  ============================================  ===========================================
dapo17k    train  train, dapo17k, dapo-math-17k, dapo_math_17k  data_source
math500    test   test, math500, math-500                       subject, level, unique_id
aime24     test   test, aime24, aime_2024                       id, year, url
aime25     test   test, aime25, aime_2025                       id, year, url
amc23      test   test, amc23                                   id, url
countdown  train  train, countdown, countdown_tasks_3to4        numbers, target
           test   test
=========  =====  ============================================  ===========================================

Fields (``fields.MATH_FIELDS`` / ``fields.COUNTDOWN_FIELDS``; the first present name of a role wins):

* math: question <- ``problem`` / ``Problem`` / ``question`` / ``Question`` / ``prompt`` (text, or chat messages:
  the last ``user`` message); answer <- ``answer`` / ``Answer`` / ``ref_answer`` / ``label`` / ``ground_truth`` /
  ``reward_model.ground_truth``; solution (optional) <- ``solution`` / ``Solution``. This covers HF MATH-500
  (``problem``/``answer``), capitalised copies (``Problem``/``Answer``), ``question``/``ref_answer`` files,
  TTRL JSON (``prompt``/``answer``), verl parquet (chat ``prompt``, ``reward_model.ground_truth``) and DAPO
  copies with the answer in ``label``.
* countdown: numbers <- ``nums`` / ``numbers`` / ``reward_model.ground_truth.numbers``; target <- ``target`` /
  ``reward_model.ground_truth.target`` (TinyZero parquet and verl's Countdown layout). The prompt is always
  rebuilt with ``countdown_question(numbers, target)``; the answer is ``str(target)``.
* Other names: ``data.fields=question=Problem,answer=Answer`` (``load_dataset(..., fields=...)``) tries those
  names first.

Every example's ``info`` also has ``source`` (the dataset name), ``index`` (the record number, counted over the
split's files) and ``answer_type`` (``"math"``, or ``"expression"`` for Countdown).

Prompts: the original BytedTsinghua DAPO-Math-17k wrapper ("Solve the following math problem step by
step. ... Answer:") and verl's suffix "Let's think step by step and output the final answer within
\\boxed{}." are removed, so ``data.template`` adds the instruction once. Numeric answers become text
(``27.0`` -> ``"27"``). The paper's Countdown split (4k train / 1k validation) is ``split="train[:4000]"`` /
``"train[-1000:]"``.

Duplicates (``Deduper``): for dapo17k (whose original file repeats each problem many times) repeated prompts
are dropped and the FIRST record of each prompt, in file order, is kept; the benchmarks keep every record.
When one prompt comes with different answers, a warning gives their count and the first few (record
indices and answers) at every load, whether repeats are dropped or not.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from urlvr_jax.tasks.base import Example
from urlvr_jax.tasks.countdown import countdown_question
from urlvr_jax.tasks.datasets.fields import COUNTDOWN_FIELDS, FIELDS_HINT, MATH_FIELDS, FieldReader, RowError

_DAPO_HEAD = "Solve the following math problem step by step."
_DAPO_TAIL = "\n\nRemember to put your answer on its own line after"
_VERL_TAIL = "Let's think step by step and output the final answer within \\boxed{}."
SHOWN_CONFLICTS = 3


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str
    splits: dict[str, tuple[str, ...]]
    fields: Mapping[str, tuple[str, ...]]
    convert: Callable[[dict[str, Any], int, "DatasetSpec", FieldReader], Example]
    info_fields: tuple[str, ...] = ()
    dedupe: bool = False
    description: str = ""

    def reader(self, overrides: Mapping[str, str] | None = None) -> FieldReader:
        return FieldReader(self.fields, overrides)


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
    raise RowError(f"the question must be text or a list of chat messages with 'content', got {type(value).__name__}")


def strip_dapo_wrapper(text: str) -> str:
    """The bare problem from an original DAPO-Math-17k or verl prompt (other text is returned stripped)."""
    if text.startswith(_DAPO_HEAD) and "\n\n" in text:
        body = text.split("\n\n", 1)[1]
        tail = body.rfind(_DAPO_TAIL)
        text = body[:tail] if tail >= 0 else body
    return text.strip().removesuffix(_VERL_TAIL).strip()


def convert_math(row: dict[str, Any], index: int, spec: DatasetSpec, reader: FieldReader) -> Example:
    prompt = strip_dapo_wrapper(_message_text(reader.get(row, "question")))
    answer = answer_text(reader.get(row, "answer"))
    info = {"source": spec.name, "index": index, "answer_type": "math"}
    info.update({k: row[k] for k in spec.info_fields if row.get(k) is not None})
    solution = reader.get(row, "solution", required=False)
    return Example(prompt=prompt, answer=answer, solution=solution if isinstance(solution, str) else None, info=info)


def convert_countdown(row: dict[str, Any], index: int, spec: DatasetSpec, reader: FieldReader) -> Example:
    nums, target = reader.get(row, "numbers"), reader.get(row, "target")
    try:
        numbers = [int(x) for x in nums]
        target = int(target)
    except (TypeError, ValueError):
        raise RowError(f"the numbers must be a list of integers and the target an integer, got {nums!r} "
                       f"and {target!r}") from None
    info = {"source": spec.name, "index": index, "task": "countdown", "numbers": numbers,
            "target": target, "answer_type": "expression"}
    return Example(prompt=countdown_question(numbers, target), answer=str(target), solution=None, info=info)


def _math(name, stems, info_fields, description, dedupe=False) -> DatasetSpec:
    return DatasetSpec(name, {"test" if not dedupe else "train": stems}, MATH_FIELDS, convert_math, info_fields,
                       dedupe=dedupe, description=description)


SPECS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        _math("dapo17k", ("train", "dapo17k", "dapo-math-17k", "dapo_math_17k"), ("data_source",),
              "DAPO-Math-17k training problems (integer answers).", dedupe=True),
        _math("math500", ("test", "math500", "math-500"), ("subject", "level", "unique_id"),
              "MATH-500 test problems."),
        _math("aime24", ("test", "aime24", "aime_2024"), ("id", "year", "url"), "AIME 2024 (30 problems)."),
        _math("aime25", ("test", "aime25", "aime_2025"), ("id", "year", "url"), "AIME 2025 (30 problems)."),
        _math("amc23", ("test", "amc23"), ("id", "url"), "AMC 2023 (40 problems)."),
        DatasetSpec("countdown", {"train": ("train", "countdown", "countdown_tasks_3to4"), "test": ("test",)},
                    COUNTDOWN_FIELDS, convert_countdown,
                    description="Countdown-Tasks-3to4 (numbers and target)."),
    )
}


def convert_rows(spec: DatasetSpec, path: Path, rows: list[dict[str, Any]], start: int = 0,
                 fields: Mapping[str, str] | None = None) -> Iterable[Example]:
    """The records mapped to examples, lazily; the first bad record raises ``ValueError`` (one line naming the
    file, the record index, the accepted field names and ``data.fields``). ``info["index"]`` is ``start`` + i."""
    reader = spec.reader(fields)
    for i, row in enumerate(rows):
        try:
            yield spec.convert(row, start + i, spec, reader)
        except RowError as err:
            raise ValueError(f"{path}: record {i}: {err}; dataset {spec.name!r} reads {reader.describe()}; "
                             f"{FIELDS_HINT}") from None


class Deduper:
    """Tracks prompts: ``keep(example)`` says whether to write it (False for a repeat when ``spec.dedupe``; the
    first record of a prompt is kept) and records prompts seen with a different answer in ``conflicts``."""

    def __init__(self, spec: DatasetSpec):
        self.spec = spec
        self.first: dict[str, tuple[int, str]] = {}  # prompt -> (index, answer) of its first record
        self.conflicts: list[dict[str, Any]] = []
        self.dropped = 0

    def keep(self, example: Example) -> bool:
        index, answer = example.info["index"], example.answer
        seen = self.first.setdefault(example.prompt, (index, answer))
        if seen[0] == index:
            return True
        if seen[1] != answer:
            self.conflicts.append({"prompt": example.prompt, "first": list(seen), "other": [index, answer]})
        if self.spec.dedupe:
            self.dropped += 1
            return False
        return True

    def report(self, limit: int = SHOWN_CONFLICTS) -> dict[str, Any]:
        """JSON-able: the conflict count, the first ``limit`` conflicts, the dropped-repeat count."""
        return {"conflicts": len(self.conflicts), "first_conflicts": self.conflicts[:limit], "dropped": self.dropped}


def conflict_warning(name: str, report: Mapping[str, Any]) -> str | None:
    """The one-line warning for a ``Deduper.report`` with conflicts (None without)."""
    if not report.get("conflicts"):
        return None
    shown = "; ".join(f"record {c['other'][0]} {c['prompt'][:50]!r}: answer {c['other'][1]!r} vs {c['first'][1]!r} "
                      f"in record {c['first'][0]}" for c in report["first_conflicts"])
    choice = ("only the first record of each prompt is kept" if SPECS[name].dedupe
              else "every record is kept (a benchmark)")
    return (f"dataset {name!r}: {report['conflicts']} record(s) repeat an earlier prompt with a different answer; "
            f"{choice}; first {len(report['first_conflicts'])}: {shown}")


def warn_conflicts(name: str, report: Mapping[str, Any]) -> None:
    message = conflict_warning(name, report)
    if message:
        warnings.warn(message, UserWarning, stacklevel=3)
