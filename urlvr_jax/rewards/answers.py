"""Final-answer extraction and normalisation for math-style responses.

Extraction order (as in the Qwen2.5-Math parser used by TTRL, simplified):

1. the content of the last complete ``\\boxed{...}`` / ``\\fbox{...}`` (brace matching, any depth);
2. the text after the last "final answer is" / "the answer is" up to the end of that sentence;
3. the last number literal in the text (integers, decimals, ``a/b``, thousands separators).

Every function here is linear in the input length, pure Python, and never raises on ``str`` input.
A result of ``None`` means "no answer". :func:`normalize_answer` maps spellings that differ only in
formatting (``$``, ``\\left``, ``\\dfrac``, spacing, a trailing unit ``\\text{ cm}``, ``x = ``, ``1,000``,
a trailing period, unicode forms such as ``½`` or ``√2``) to one string, and never changes the LaTeX
structure: row breaks ``\\\\`` stay, ``\\cot x`` keeps its space (see :mod:`~urlvr_jax.rewards.latex_text`).
Real equivalence (``1/2`` vs ``0.5``) is :mod:`urlvr_jax.rewards.grading`'s job.
"""

from __future__ import annotations

import itertools
import re
from fractions import Fraction

from urlvr_jax.rewards.latex_text import (
    drop_markup,
    matching_brace,
    squeeze_whitespace,
    strip_trailing_unit,
    unicode_to_latex,
)

# Integers longer than this are never converted with int() (CPython refuses > 4300 digits by default).
MAX_NUMBER_DIGITS = 1000
MAX_NORMALIZE_PASSES = 8

_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOX_BARE = re.compile(r"\\boxed\s+([^\s${}]+)")
_ANSWER_IS = re.compile(r"(?:final answer|the answer)\s+is\s*:?\s*", re.IGNORECASE)
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_INT_OR_DEC = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_SLASH_FRAC = re.compile(r"(-?\d+)/(\d+)")
_TEX_FRAC = re.compile(r"(-?)\\frac\{(-?\d+)\}\{(\d+)\}")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_TEXT_OPEN = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{")
_TEXT_TOKEN = re.compile(_TEXT_OPEN.pattern + r"|[{}]")
_ASSIGN = re.compile(r"^(?:[a-zA-Z]\s*=\s*)+(?=\S)")
# A multiple-choice letter A-J in a normalised answer (no whitespace): "B", "(B)", "B)", "B.", "B:text",
# "(B)text", "optionB", "answer:(b)".
_CHOICE = re.compile(r"(?:option|choice|answer)?:?(?:\(([A-J])\)|([A-J])(?=[).:]|$)).*", re.IGNORECASE | re.DOTALL)
_LATEX_THOUSANDS = re.compile(r"(?<=\d)\{,\}(?=\d{3})")  # 1{,}000


def extract_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (or ``\\fbox{...}``, ``\\boxed 5``); None if none.

    Openers are tried from the last one backwards; the first that closes wins (for nested boxes
    that is the innermost, as in TTRL), so a truncated trailing ``\\boxed{`` falls back to an earlier
    complete box. An unclosed opener bounds the scan of earlier ones (they cannot close past it),
    so the total work is linear in the text length.
    """
    search_end = len(text)
    for match in reversed(list(_BOX_OPEN.finditer(text))):
        brace = match.end() - 1
        close = matching_brace(text, brace, search_end)
        if close is not None:
            return text[brace + 1 : close]
        search_end = brace
    bare = list(_BOX_BARE.finditer(text))
    return bare[-1].group(1) if bare else None


def _after_answer_is(text: str) -> str | None:
    """The phrase after the last 'the answer is' / 'final answer is', up to the sentence end."""
    matches = list(_ANSWER_IS.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :].split("\n", 1)[0]
    rest = re.split(r"\.(?:\s|$)", rest, maxsplit=1)[0]
    return rest.strip()[:200] or None


def last_number(text: str) -> str | None:
    """The last number literal in ``text`` (``-3``, ``1,000``, ``2.5``, ``3/4``); None if none."""
    last = None
    for last in _NUMBER.finditer(text):
        pass
    return last.group(0) if last is not None else None


def _unwrap_text(s: str) -> str:
    """Replaces ``\\text{abc}`` and friends by ``abc``, at any depth, in one linear pass."""
    if not _TEXT_OPEN.search(s):
        return s
    out: list[str] = []
    dropped: list[bool] = []  # per open brace: was it the brace of a wrapper?
    last = 0
    for match in _TEXT_TOKEN.finditer(s):
        token = match.group(0)
        out.append(s[last : match.start()])
        last = match.end()
        if token == "{":
            dropped.append(False)
        elif token != "}":
            dropped.append(True)
            continue
        elif dropped and dropped.pop():
            continue
        out.append(token)
    out.append(s[last:])
    return "".join(out)


def _outer_brace_layers(s: str) -> int:
    """How many ``{...}`` layers wrap the whole of ``s`` (linear time, any depth)."""
    m = min(len(s) - len(s.lstrip("{")), len(s) - len(s.rstrip("}")), len(s) // 2)
    if m == 0:
        return 0
    n = len(s)
    depth = list(itertools.accumulate(1 if c == "{" else -1 if c == "}" else 0 for c in s))
    min_inside = [0] * (m + 1)  # min depth over positions k-1 .. n-k-1 (after each char)
    running = min(depth[m - 1 : n - m])
    for k in range(m, 0, -1):
        running = min(running, depth[k - 1], depth[n - k - 1])
        min_inside[k] = running
    layers = 0
    while layers < m and min_inside[layers + 1] >= layers + 1 and depth[n - layers - 2] == layers + 1:
        layers += 1
    return layers


def _normalize_once(s: str) -> str:
    s = unicode_to_latex(s).strip()
    if s.startswith(("\\boxed", "\\fbox")) and s.endswith("}"):
        inner = extract_boxed(s)
        s = s if inner is None else inner  # a box wrapped around the whole answer
    s = strip_trailing_unit(drop_markup(s))
    s = _unwrap_text(s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = squeeze_whitespace(_LATEX_THOUSANDS.sub(",", s))
    s = _ASSIGN.sub("", s)
    s = s.rstrip(".")
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    layers = _outer_brace_layers(s)
    return s[layers : len(s) - layers]


def normalize_answer(answer: str | None) -> str | None:
    """Canonical spelling of an extracted answer; None for None or for an empty result.

    The rules are applied until nothing changes (at most ``MAX_NORMALIZE_PASSES`` times), so that
    normalising twice gives the same string for every realistic answer.
    """
    if answer is None:
        return None
    s = answer
    for _ in range(MAX_NORMALIZE_PASSES):
        new = _normalize_once(s)
        if new == s:
            break
        s = new
    return s or None


def extract_answer(text: str) -> str | None:
    """The normalised final answer of a response (boxed, then 'the answer is', then last number)."""
    for candidate in (extract_boxed(text), _after_answer_is(text)):
        if candidate is not None:
            normalized = normalize_answer(candidate)
            if normalized is not None:
                return normalized
    return normalize_answer(last_number(text))


def choice_letter(answer: str | None) -> str | None:
    """The upper-case letter A-J of a multiple-choice answer (``B``, ``(b)``, ``B)``, ``B. 42``,
    ``\\text{B}``, ``option B``), or None when the answer is not a single choice letter."""
    normalized = normalize_answer(answer)
    match = _CHOICE.fullmatch(normalized) if normalized else None
    return (match.group(1) or match.group(2)).upper() if match else None


def is_number_literal(answer: str | None) -> bool:
    """True for an integer, decimal, ``a/b`` or ``\\frac{a}{b}`` literal, optionally negative.

    An expression such as ``14+33`` or ``2^{10}`` is not a literal (the reward-hacking guard).
    """
    if not answer:
        return False
    return bool(
        _INT_OR_DEC.fullmatch(answer) or _SLASH_FRAC.fullmatch(answer) or _TEX_FRAC.fullmatch(answer)
    )


def _digits_ok(*parts: str) -> bool:
    return sum(len(p) for p in parts) <= MAX_NUMBER_DIGITS


def parse_number(answer: str | None) -> Fraction | None:
    """The exact value of a number literal (see :func:`is_number_literal`); None otherwise.

    Literals with more than ``MAX_NUMBER_DIGITS`` digits and zero denominators give None.
    """
    if not answer or not _digits_ok(answer):
        return None
    try:
        if _INT_OR_DEC.fullmatch(answer):
            return Fraction(answer)
        match = _SLASH_FRAC.fullmatch(answer)
        if match:
            return Fraction(int(match.group(1)), int(match.group(2)))
        match = _TEX_FRAC.fullmatch(answer)
        if match:
            value = Fraction(int(match.group(2)), int(match.group(3)))
            return -value if match.group(1) else value
    except (ValueError, ZeroDivisionError):
        return None
    return None
