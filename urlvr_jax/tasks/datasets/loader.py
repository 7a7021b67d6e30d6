"""Loading the local datasets: build (once per file content) with TFDS, then read by random access."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator, Mapping, Sequence, overload

from urlvr_jax.tasks.base import Example
from urlvr_jax.tasks.datasets.builders import (
    BUILDERS,
    FILE_FORMAT,
    LocalFileBuilder,
    decode_record,
    missing_file_error,
    split_files,
)
from urlvr_jax.tasks.datasets.fields import parse_fields
from urlvr_jax.tasks.datasets.files import DATA_DIR_ENV, fingerprint
from urlvr_jax.tasks.datasets.specs import SPECS, warn_conflicts

DEFAULT_DATA_DIR = "~/urlvr_data"


def data_root(data_dir: str | Path | None = None) -> Path:
    """``data_dir``, else ``$URLVR_DATA_DIR``, else ``~/urlvr_data``."""
    return Path(data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()


def dataset_names() -> list[str]:
    return list(SPECS)


def _spec(name: str):
    if name not in SPECS:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(SPECS)}")
    return SPECS[name]


def prepare_builder(name: str, data_dir: str | Path | None = None, source_dir: str | Path | None = None,
                    tfds_dir: str | Path | None = None, required_split: str | None = None,
                    fields: str | Mapping[str, str] | None = None) -> LocalFileBuilder:
    """The prepared TFDS builder of dataset ``name``.

    Raw files come from ``source_dir`` (default ``<data root>/<name>``); the array_record files go to
    ``tfds_dir`` (default ``<data root>/_tfds``) under a key that changes with the raw files' content and
    ``fields``, so editing a file triggers a rebuild. ``required_split`` must have a file, else
    ``FileNotFoundError``. ``fields`` (``"question=Problem,answer=Answer"`` or a dict) maps field names (see
    ``fields``). Prompts repeated with different answers are warned about (``specs.Deduper``) at every call.
    """
    fields = parse_fields(fields)
    spec = _spec(name)
    root = data_root(data_dir)
    source = (Path(source_dir).expanduser() if source_dir else root / name).absolute()
    files = split_files(spec, source)
    if required_split is not None and required_split not in files:
        raise missing_file_error(spec, required_split, source)
    if not files:
        raise missing_file_error(spec, next(iter(spec.splits)), source)
    key = fingerprint([p for paths in files.values() for p in paths],
                      extra=f"{sorted(files)}:{BUILDERS[name].VERSION}:{sorted(fields.items())}")
    out = Path(tfds_dir).expanduser() if tfds_dir else root / "_tfds"
    builder = BUILDERS[name](source_dir=source, data_dir=str(out / f"{name}-{key}"), file_format=FILE_FORMAT,
                             fields=fields)
    builder.download_and_prepare(file_format=FILE_FORMAT)
    for split in files if required_split is None else [required_split]:
        warn_conflicts(name, builder.info.metadata.get("duplicates", {}).get(split, {}))
    return builder


class ExampleSource(Sequence[Example]):
    """Random access to the examples of one split (records decoded on access)."""

    def __init__(self, data_source: Sequence[dict]):
        self._source = data_source

    def __len__(self) -> int:
        return len(self._source)

    @overload
    def __getitem__(self, index: int) -> Example: ...

    @overload
    def __getitem__(self, index: slice) -> list[Example]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} examples")
        return decode_record(self._source[index])

    def __iter__(self) -> Iterator[Example]:
        return (self[i] for i in range(len(self)))


def load_source(name: str, split: str | None = None, data_dir: str | Path | None = None,
                **builder_options) -> ExampleSource:
    """Random-access examples of ``split`` (default: the dataset's first split; TFDS slices like
    ``"train[:4000]"`` work). ``builder_options`` (``fields``, ``tfds_dir``, ``source_dir``) go to
    ``prepare_builder``."""
    spec = _spec(name)
    split = split or next(iter(spec.splits))
    base = re.match(r"[A-Za-z_]+", split)
    if base is None or base.group(0) not in spec.splits:
        raise ValueError(f"dataset {name!r} has splits {list(spec.splits)}, got split {split!r}")
    builder = prepare_builder(name, data_dir, required_split=base.group(0), **builder_options)
    return ExampleSource(builder.as_data_source(split=split))


def load_dataset(name: str, split: str | None = None, data_dir: str | Path | None = None,
                 **builder_options) -> list[Example]:
    """All examples of ``split`` as a list (see ``load_source``)."""
    return list(load_source(name, split, data_dir, **builder_options))
