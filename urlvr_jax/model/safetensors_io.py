"""Lazy reading and plain writing of safetensors files with numpy (bfloat16 through ml_dtypes).

Reading parses only the JSON header; tensors are memory-mapped views, so shapes can be checked before
any data is touched and only the slices a device needs are read.
"""

from __future__ import annotations

import json
import os
import struct

import ml_dtypes
import numpy as np

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


class SafetensorsFile:
    """Header of one .safetensors file; ``tensor(name)`` returns a read-only memory-mapped array."""

    def __init__(self, path: str):
        self.path = path
        try:
            with open(path, "rb") as f:
                (size,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(size))
        except (OSError, struct.error, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not a readable safetensors file ({e})") from e
        self._offset = 8 + size
        header.pop("__metadata__", None)
        self.entries = header
        for name, entry in header.items():
            if entry["dtype"] not in _DTYPES:
                raise ValueError(f"{path}: tensor {name} has unsupported dtype {entry['dtype']}")

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.entries[name]["shape"])

    def tensor(self, name: str) -> np.ndarray:
        entry = self.entries[name]
        start, end = entry["data_offsets"]
        dtype = np.dtype(_DTYPES[entry["dtype"]])
        count = (end - start) // dtype.itemsize
        data = np.memmap(self.path, dtype=dtype, mode="r", offset=self._offset + start, shape=(count,))
        return data.reshape(entry["shape"])


def open_checkpoint(directory: str) -> dict[str, SafetensorsFile]:
    """Maps every tensor name to its file, for a single file or a sharded ``*.index.json`` checkpoint."""
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f).get("weight_map")
        if not isinstance(weight_map, dict):
            raise ValueError(f"{index}: has no 'weight_map' object")
        files = {}
        for fname in sorted(set(weight_map.values())):
            path = os.path.join(directory, fname)
            if not os.path.exists(path):
                raise FileNotFoundError(f"{index} lists {fname}, which is missing from {directory}")
            files[fname] = SafetensorsFile(path)
        located = {}
        for name, fname in weight_map.items():
            if name not in files[fname].entries:
                raise ValueError(f"{index} says tensor {name} is in {fname}, but that file does not hold it")
            located[name] = files[fname]
        return located
    paths = sorted(p for p in os.listdir(directory) if p.endswith(".safetensors"))
    if not paths:
        raise FileNotFoundError(f"{directory}: no *.safetensors file (and no model.safetensors.index.json)")
    located = {}
    for p in paths:
        st = SafetensorsFile(os.path.join(directory, p))
        located.update({name: st for name in st.entries})
    return located


def save_file(tensors: dict[str, np.ndarray], path: str, metadata: dict[str, str] | None = None) -> None:
    """Writes numpy arrays (float32, bfloat16, ...) as one safetensors file, atomically."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        blob = array.tobytes()
        header[name] = {"dtype": _NAMES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    header["__metadata__"] = metadata or {"format": "pt"}
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)
