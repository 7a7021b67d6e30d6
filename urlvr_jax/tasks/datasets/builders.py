"""TensorFlow-Datasets builders (array_record files, no TensorFlow needed) over the local raw files.

Each builder reads ``<source_dir>/<stem>.<ext>`` for its splits (see ``specs``) and writes records with the
text features ``prompt``, ``answer``, ``solution`` (empty when absent) and ``info`` (JSON). Read them back with
``builder.as_data_source(split)``; ``decode_record`` turns a record into an ``Example``. Each split's duplicate
report (``specs.Deduper``) is kept in ``builder.info.metadata["duplicates"]``, so it is shown at every load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import tensorflow_datasets as tfds

from urlvr_jax.tasks.base import Example
from urlvr_jax.tasks.datasets.fields import FIELDS_HINT
from urlvr_jax.tasks.datasets.files import DATA_DIR_HINT, FORMATS_HELP, candidate_paths, find_files, read_rows
from urlvr_jax.tasks.datasets.specs import SPECS, DatasetSpec, Deduper, convert_rows

FILE_FORMAT = "array_record"


def missing_file_error(spec: DatasetSpec, split: str, source_dir: Path) -> FileNotFoundError:
    """The error for a split whose file is absent: where to put it, which formats, which fields."""
    stems = spec.splits[split]
    paths = "\n".join(f"  {p}" for p in candidate_paths(source_dir, stems))
    return FileNotFoundError(
        f"No data file for dataset {spec.name!r} (split {split!r}) in {source_dir}.\n"
        f"Put one of these files there:\n{paths}\n"
        f"({FORMATS_HELP}.)\n"
        f"Each record needs {spec.reader().describe()} ({FIELDS_HINT}).\n"
        f"{DATA_DIR_HINT}"
    )


def split_files(spec: DatasetSpec, source_dir: Path) -> dict[str, list[Path]]:
    """The files found for each split of ``spec`` (splits without a file are left out)."""
    found = {split: find_files(source_dir, stems) for split, stems in spec.splits.items()}
    return {split: paths for split, paths in found.items() if paths}


def encode_example(example: Example) -> dict[str, str]:
    return {"prompt": example.prompt, "answer": example.answer, "solution": example.solution or "",
            "info": json.dumps(example.info, ensure_ascii=False, default=str)}


def decode_record(record: dict[str, Any]) -> Example:
    """An ``Example`` from one ``as_data_source`` record (bytes or str values)."""
    text = {k: (v.decode("utf-8") if isinstance(v, bytes) else str(v)) for k, v in record.items()}
    return Example(prompt=text["prompt"], answer=text["answer"], solution=text.get("solution") or None,
                   info=json.loads(text["info"]))


class LocalFileBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base builder: subclasses set ``SPEC``. Construct with ``source_dir`` (the raw files), ``data_dir`` and
    optionally ``fields`` (``{role: field name}`` tried before the built-in names, see ``fields``)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Local files mapped to prompt / answer / solution / info."}
    SPEC: DatasetSpec
    # No checksums file or package metadata: TFDS's code-path lookup needs the optional importlib_resources.
    code_path = None

    def __init__(self, *, source_dir: str | Path, fields: Mapping[str, str] | None = None, **kwargs):
        self.source_dir = Path(source_dir).expanduser()
        self.fields = dict(fields or {})
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        text = tfds.features.Text()
        return tfds.core.DatasetInfo(
            builder=self, description=self.SPEC.description, disable_shuffling=True,
            features=tfds.features.FeaturesDict({"prompt": text, "answer": text, "solution": text, "info": text}),
            metadata=tfds.core.MetadataDict())

    def _split_generators(self, dl_manager):
        files = split_files(self.SPEC, self.source_dir)
        if not files:
            raise missing_file_error(self.SPEC, next(iter(self.SPEC.splits)), self.source_dir)
        return {split: self._generate_examples(split, paths) for split, paths in files.items()}

    def _generate_examples(self, split: str, paths: list[Path]):
        offset, deduper = 0, Deduper(self.SPEC)
        for path in paths:
            rows = read_rows(path)
            for example in convert_rows(self.SPEC, path, rows, start=offset, fields=self.fields):
                if deduper.keep(example):
                    yield example.info["index"], encode_example(example)
            offset += len(rows)
        self.info.metadata.setdefault("duplicates", {})[split] = deduper.report()


def _builder_class(spec: DatasetSpec) -> type[LocalFileBuilder]:
    class_name = "Urlvr" + "".join(part.capitalize() for part in spec.name.replace("-", "_").split("_"))
    return type(class_name, (LocalFileBuilder,), {"name": f"urlvr_{spec.name}", "SPEC": spec,
                                                   "__module__": __name__}, skip_registration=True)


BUILDERS: dict[str, type[LocalFileBuilder]] = {name: _builder_class(spec) for name, spec in SPECS.items()}
