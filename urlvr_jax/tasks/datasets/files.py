"""Finding and reading the raw data files a user places locally (JSON, JSON Lines or Parquet)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

EXTENSIONS = (".jsonl", ".json", ".parquet")
DATA_DIR_ENV = "URLVR_DATA_DIR"
DATA_DIR_HINT = (f"To read datasets from another folder, set the environment variable {DATA_DIR_ENV}=/path/to/data "
                 f"(the folder that holds one sub-folder per dataset), e.g. {DATA_DIR_ENV}=~/data python -m "
                 "urlvr_jax.train ... data.dataset=math500.")

FORMATS_HELP = ("accepted formats: .jsonl (one JSON object per line), .json (a list of objects, or "
                "JSON Lines) and .parquet; Hugging Face shards named <stem>-*.parquet / <stem>-*.jsonl also work")


def candidate_paths(directory: Path, stems: Sequence[str]) -> list[Path]:
    """The exact file paths tried, in order (shards not included)."""
    return [directory / f"{stem}{ext}" for stem in stems for ext in EXTENSIONS]


def find_files(directory: Path, stems: Sequence[str]) -> list[Path] | None:
    """The first match: one ``<stem><ext>`` file, or all ``<stem>-*<ext>`` shards sorted; None if nothing."""
    for stem in stems:
        for ext in EXTENSIONS:
            path = directory / f"{stem}{ext}"
            if path.is_file():
                return [path]
            shards = sorted(p for p in directory.glob(f"{stem}-*{ext}") if p.is_file())
            if shards:
                return shards
    return None


def fingerprint(paths: Iterable[Path], extra: str = "") -> str:
    """A short content hash of the files (and ``extra``), to key the prepared dataset."""
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        digest.update(path.name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _read_jsonl(path: Path, text: str) -> list[dict[str, Any]]:
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: line {line_no} is not valid JSON ({err.msg})") from None
    return rows


def _read_json(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":  # JSON Lines saved with a .json name
            return _read_jsonl(path, text)
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if isinstance(data, dict) and data and all(isinstance(v, (list, dict)) for v in data.values()):
        columns = {k: (v if isinstance(v, list) else list(v.values())) for k, v in data.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) == 1:  # column-oriented (pandas ``to_json()``) layout
            n = lengths.pop()
            return [{k: v[i] for k, v in columns.items()} for i in range(n)]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
    return data


def read_rows(path: Path) -> list[dict[str, Any]]:
    """All rows of one file as dicts; raises ``ValueError`` naming the file on malformed content."""
    if path.suffix == ".jsonl":
        rows = _read_jsonl(path, path.read_text(encoding="utf-8"))
    elif path.suffix == ".json":
        rows = _read_json(path)
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    else:
        raise ValueError(f"{path}: unsupported file type; {FORMATS_HELP}")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"{path}: row {i} is a {type(row).__name__}, expected an object with named fields")
    return rows
