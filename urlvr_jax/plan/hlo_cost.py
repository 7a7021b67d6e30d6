"""FLOPs and HBM bytes of a compiled program, read from its HLO with every loop body counted by its trip count.

XLA's ``cost_analysis()`` counts a while loop's body once: the layer scan's one layer, the decode loop's one step,
the micro-batch scan's one micro-batch (checked on the TPU compiler: a scan of 16 matmuls reports the FLOPs of one).
This walks the compiled, SPMD-partitioned module (per device) instead, with XLA's own accounting per instruction
(a fusion reads its operands and writes its output once; a parameter only sliced in a fusion reads the slice; a
dynamic-update-slice or scatter writes its update in place; arrays padded to their TPU tiles), and multiplies each
while body by its trip count: the bound of a counter loop (``i < N``, a scan) read from its condition, and
``dynamic_trips`` for a loop that stops on a data condition (the decode loops: the caller passes the steps of the
worst case, every row to its limit).

Pallas kernels are custom calls XLA counts as free; splash attention's are counted from their operand shapes
(``q [B, H, Sq, Dh]``, ``k [B, K, Sk, Dh]``; ``[H, S, Dh]`` for one row): ``4 B H Sq Sk Dh`` times the causal share
of the score matrix (``1 - Sq / 2 Sk``: a half when queries and keys are the same positions) for the forward kernel,
1.5 times that for the dq kernel and 2 for the dkv kernel (recomputed scores and probabilities; 2.5 for a fused
backward kernel).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re

_BYTES = {"pred": 1, "s8": 1, "u8": 1, "f8e4m3fn": 1, "f8e5m2": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2,
          "s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16, "s4": 0.5, "u4": 0.5}
_ARRAY = re.compile(r"\b([a-z]\w*)\[([\d,]*)\]")
_LAID_OUT = re.compile(r"\b([a-z]\w*)\[([\d,]*)\](?:\{([^}]*)\})?")
_HEADER = re.compile(r"^(?:ENTRY )?%(\S+) .*\{$")
_FREE = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast", "after-all", "partition-id", "replica-id",
         "opt-barrier", "copy-done", "all-gather-done", "all-reduce-done", "collective-permute-done", "async-done"}
_NO_ACCESS = ("AllocateBuffer", "AsyncCollectiveDone")  # custom calls that reserve memory / wait, not read it
_SLICING = {"dynamic-slice", "slice", "gather"}
_IN_PLACE = {"dynamic-update-slice": 1, "scatter": 2}  # ops that update operand 0 in place: their update operand
_SPLASH_SHARE = {"fwd": 1.0, "dq": 1.5, "dkv": 2.0}


@dataclasses.dataclass
class Cost:
    """Per-device FLOPs (XLA's dots and convolutions), Pallas kernel FLOPs (from shapes) and HBM bytes."""

    flops: float = 0.0
    kernel_flops: float = 0.0
    bytes: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.flops + other.flops, self.kernel_flops + other.kernel_flops, self.bytes + other.bytes)

    def __mul__(self, k: float) -> Cost:
        return Cost(self.flops * k, self.kernel_flops * k, self.bytes * k)

    @property
    def total_flops(self) -> float:
        return self.flops + self.kernel_flops


@dataclasses.dataclass
class _Instr:
    name: str
    type: str
    op: str
    operands: list[str]
    args: str  # the text between the opcode's parentheses: a constant's value, a parameter's index
    attrs: str


def _arrays(type_text: str) -> list[tuple[str, tuple[int, ...]]]:
    return [(d, tuple(int(x) for x in dims.split(",") if x)) for d, dims in _ARRAY.findall(type_text) if d in _BYTES]


def _nbytes(type_text: str) -> float:
    """Bytes of the arrays in an HLO type, each padded to its layout's tile (``{1,0:T(8,128)}``) as stored."""
    total = 0.0
    for d, dims, layout in _LAID_OUT.findall(type_text):
        if d not in _BYTES:
            continue
        shape = [int(x) for x in dims.split(",") if x]
        order = [int(x) for x in layout.split(":")[0].split(",") if x] if layout else []
        tile = re.search(r"T\(([\d,]+)\)", layout)
        if tile and len(order) == len(shape):
            for axis, size in zip(order, (int(t) for t in reversed(tile.group(1).split(",")))):
                shape[axis] = -(-shape[axis] // size) * size
        total += _BYTES[d] * math.prod(shape)
    return total


def _balanced(text: str, start: int) -> int:
    """Index just past the bracket group opening at ``text[start]``."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, "{": 1, ")": -1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i + 1
    return len(text)


def _parse_instr(line: str) -> _Instr | None:
    body = line.strip().removeprefix("ROOT ")
    if not body.startswith("%") or " = " not in body:
        return None
    name, rest = body[1:].split(" = ", 1)
    end = _balanced(rest, 0) if rest.startswith("(") else rest.index(" ")
    type_text, rest = rest[:end], rest[end:].lstrip()
    match = re.match(r"([\w-]+)\(", rest)
    if not match:
        return None
    close = _balanced(rest, match.end() - 1)
    args = rest[match.end():close - 1]
    return _Instr(name, type_text, match.group(1), re.findall(r"%([\w.\-]+)", args), args, rest[close:])


def parse_module(text: str) -> tuple[dict[str, list[_Instr]], str]:
    """({computation name: its instructions}, the entry computation's name) of an HLO module's text."""
    comps, entry, lines = {}, None, None
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            lines = comps.setdefault(header.group(1), [])
            entry = header.group(1) if line.startswith("ENTRY") else entry
        elif line == "}":
            lines = None
        elif lines is not None:
            if line.startswith(("  %", "  ROOT %")) or not lines:
                lines.append(line)
            else:  # a multi-line attribute (a backend config) continues the instruction
                lines[-1] += "\n" + line
    parsed = {name: [_parse_instr(line) for line in lines] for name, lines in comps.items()}
    return {name: [i for i in instrs if i is not None] for name, instrs in parsed.items()}, entry


def _attr(attrs: str, key: str) -> list[str]:
    match = re.search(rf"\b{key}=\{{?([^}},]+(?:, ?%[^}},]+)*)\}}?", attrs)
    return re.findall(r"%?([\w.\-]+)", match.group(1)) if match else []


class _Module:
    def __init__(self, text: str, dynamic_trips: int):
        self.comps, self.entry = parse_module(text)
        self.types = {c: {i.name: i.type for i in instrs} for c, instrs in self.comps.items()}
        self.dynamic_trips = dynamic_trips
        dynamic = [i for i in self.comps[self.entry] if i.op == "while" and self.trip_count(_while_cond(i)) is None]
        self.main_loop = max(dynamic, key=lambda i: _nbytes(i.type)).name if dynamic else None

    def trip_count(self, cond: str) -> int | None:
        """``N`` of a condition ``param[0] < N`` (a counter loop from 0), None for a data-dependent condition."""
        instrs = {i.name: i for i in self.comps[cond]}
        root = self.comps[cond][-1]
        if root.op == "compare" and "direction=LT" in root.attrs and len(root.operands) == 2:
            counter, bound = (instrs.get(n) for n in root.operands)
            if counter is not None and counter.op == "get-tuple-element" and "index=0" in counter.attrs \
                    and bound is not None and bound.op == "constant":
                return int(bound.args)
        return None

    @functools.cache
    def cost(self, comp: str) -> Cost:
        total = Cost()
        for instr in self.comps[comp]:
            total = total + self.instr_cost(comp, instr)
        return total

    def instr_cost(self, comp: str, instr: _Instr) -> Cost:
        op = instr.op
        if op in _FREE:
            return Cost()
        if op == "while":
            body, cond = _attr(instr.attrs, "body")[0], _while_cond(instr)
            trips = self.trip_count(cond)
            if trips is None:  # the decode loop runs the worst case's steps; others (drain, refill) once
                trips = self.dynamic_trips if instr.name == self.main_loop else 1
            return (self.cost(body) + self.cost(cond)) * trips
        if op == "conditional":
            branches = _attr(instr.attrs, "branch_computations") or (
                _attr(instr.attrs, "true_computation") + _attr(instr.attrs, "false_computation"))
            return max((self.cost(b) for b in branches), key=lambda c: c.total_flops + c.bytes, default=Cost())
        if op in ("call", "async-start"):
            called = _attr(instr.attrs, "to_apply") or _attr(instr.attrs, "calls")
            return self.cost(called[0]) if called else Cost()
        operand_types = [self.types[comp].get(n, "") for n in instr.operands]
        if op == "fusion":
            fused = _attr(instr.attrs, "calls")[0]
            return Cost(self.fused_flops(fused), 0.0, self.fusion_bytes(fused, instr, operand_types))
        return Cost(_op_flops(instr, operand_types), _kernel_flops(instr, operand_types),
                    _io_bytes(instr, operand_types))

    @functools.cache
    def fused_flops(self, comp: str) -> float:
        total = 0.0
        for instr in self.comps[comp]:
            if instr.op == "fusion":
                total += self.fused_flops(_attr(instr.attrs, "calls")[0])
            else:
                total += _op_flops(instr, [self.types[comp].get(n, "") for n in instr.operands])
        return total

    @functools.cache
    def users(self, comp: str) -> dict[str, list[_Instr]]:
        out: dict[str, list[_Instr]] = {}
        for i in self.comps[comp]:
            for n in i.operands:
                out.setdefault(n, []).append(i)
        return out

    def read_bytes(self, comp: str, name: str, full: float) -> float:
        """Bytes of value ``name`` that ``comp`` reads: its slices when only sliced (through bitcasts and nested
        fusions), nothing when only updated in place, else all of it (``full``)."""
        read = 0.0
        for use in self.users(comp).get(name, []):
            if use.op in _SLICING and use.operands[0] == name:
                read += _nbytes(use.type)
            elif use.op in _IN_PLACE and use.operands[0] == name:
                continue  # the buffer updated in place: only the update is written
            elif use.op == "bitcast":
                read += self.read_bytes(comp, use.name, full)
            elif use.op == "fusion":
                fused = _attr(use.attrs, "calls")[0]
                params = self.params(fused)
                read += sum(self.read_bytes(fused, params[k], full) for k, n in enumerate(use.operands)
                            if n == name and k in params)
            else:
                return full
        return min(read, full)

    @functools.cache
    def params(self, comp: str) -> dict[int, str]:
        return {int(i.args): i.name for i in self.comps[comp] if i.op == "parameter"}

    def fusion_bytes(self, fused: str, instr: _Instr, operand_types: list[str]) -> float:
        """Operands read (see :meth:`read_bytes`) + output written (only the updates of in-place updates)."""
        params = self.params(fused)
        read = sum(self.read_bytes(fused, params[k], _nbytes(t)) if k in params else _nbytes(t)
                   for k, t in enumerate(operand_types))
        instrs, types = self.comps[fused], self.types[fused]
        by_name = {i.name: i for i in instrs}

        def written(name: str) -> float:  # an output through bitcasts: its update when updated in place
            out = by_name.get(name)
            while out is not None and out.op == "bitcast" and out.operands:
                out = by_name.get(out.operands[0])
            if out is not None and out.op in _IN_PLACE:
                return _nbytes(types.get(out.operands[_IN_PLACE[out.op]], ""))
            return _nbytes(types.get(name, ""))

        root = instrs[-1]
        return read + (sum(written(n) for n in root.operands) if root.op == "tuple" else written(root.name))


def _while_cond(instr: _Instr) -> str:
    return _attr(instr.attrs, "condition")[0]


def _kernel_flops(instr: _Instr, operand_types: list[str]) -> float:
    """Splash attention's FLOPs from its q and k operand shapes (see the module docstring); 0 for other calls."""
    kind = re.search(r"splash_\w*?_(fwd|dq|dkv)", instr.name)
    if instr.op != "custom-call" or not kind:
        return 0.0
    tensors = [shape if len(shape) == 4 else (1, *shape) for t in operand_types for d, shape in _arrays(t)
               if d.startswith(("f", "bf")) and len(shape) in (3, 4)]  # [B, H, S, Dh], or [H, S, Dh] of one row
    if len(tensors) < 2:
        return 0.0
    (b, h, sq, dh), (_, _, sk, _) = tensors[:2]
    fused = kind.group(1) == "dkv" and '\\"use_fused_bwd_kernel\\": true' in instr.attrs
    share = 2.5 if fused else _SPLASH_SHARE[kind.group(1)]
    return 4.0 * b * h * sq * sk * dh * (1 - sq / (2 * sk) if sq <= sk else 0.5) * share


def _io_bytes(instr: _Instr, operand_types: list[str]) -> float:
    if instr.op == "custom-call" and any(f'custom_call_target="{t}"' in instr.attrs for t in _NO_ACCESS):
        return 0.0
    if instr.op in _SLICING:
        return 2 * _nbytes(instr.type)
    if instr.op in _IN_PLACE:  # reads the update (and indices), writes it in place
        return sum(_nbytes(t) for t in operand_types[1:]) + _nbytes(operand_types[_IN_PLACE[instr.op]]) \
            if len(operand_types) > _IN_PLACE[instr.op] else 0.0
    return sum(_nbytes(t) for t in operand_types) + _nbytes(instr.type)


def _op_flops(instr: _Instr, operand_types: list[str]) -> float:
    """XLA's count for a dot (2 x output x contracted size) or a convolution (2 x the valid kernel taps)."""
    if instr.op not in ("dot", "convolution") or not operand_types:
        return 0.0
    out = math.prod(_arrays(instr.type)[0][1])
    lhs = _arrays(operand_types[0])[0][1]
    if instr.op == "dot":
        dims = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", instr.attrs)
        return 2.0 * out * math.prod(lhs[int(d)] for d in dims.group(1).split(",") if d) if dims else 2.0 * out
    return 2.0 * out * _conv_taps(instr, lhs, _arrays(operand_types[1])[0][1])


def _conv_taps(instr: _Instr, lhs: tuple, rhs: tuple) -> float:
    """Multiply-adds per output element of a convolution: input features x kernel taps that fall inside the input
    (XLA writes batched dots as convolutions whose padded window meets the input at one tap)."""
    labels = re.search(r"dim_labels=(\w+)_(\w+)->(\w+)", instr.attrs)
    lhs_l, rhs_l, out_l = labels.groups()
    window = re.search(r"window=\{([^}]*)\}", instr.attrs)
    spec = dict(re.findall(r"(\w+)=([\dx_]+)", window.group(1))) if window else {}
    spatial = [c for c in rhs_l if c.isdigit()]
    sizes = [int(x) for x in spec["size"].split("x")] if "size" in spec else [1] * len(spatial)
    pads = [tuple(int(p) for p in x.split("_")) for x in spec["pad"].split("x")] if "pad" in spec else [(0, 0)] * len(
        sizes)
    strides = [int(x) for x in spec["stride"].split("x")] if "stride" in spec else [1] * len(sizes)
    taps = float(rhs[rhs_l.index("i")])
    out_shape = _arrays(instr.type)[0][1]
    for d, c in enumerate(spatial):
        n_in, n_out, k, (lo, _hi) = lhs[lhs_l.index(c)], out_shape[out_l.index(c)], sizes[d], pads[d]
        valid = sum(max(0, min(k, n_in + lo - o * strides[d]) - max(0, lo - o * strides[d])) for o in range(n_out)) \
            if n_out <= 1 << 16 else n_out * min(k, n_in)
        taps *= valid / max(n_out, 1)
    return taps


def program_cost(hlo_text: str, dynamic_trips: int = 1) -> Cost:
    """Per-device :class:`Cost` of a compiled module's text (``Compiled.as_text()``), loop bodies times their trips."""
    module = _Module(hlo_text, dynamic_trips)
    return module.cost(module.entry)
