"""Meaning-preserving rewrites of answer text, used by :func:`urlvr_jax.rewards.answers.normalize_answer`.

* :func:`unicode_to_latex`: unicode math read as its LaTeX (``½`` -> ``\\frac{1}{2}``, ``3½`` -> ``\\frac{7}{2}``,
  ``√2`` -> ``\\sqrt{2}``, ``∞`` -> ``\\infty``, ``x²`` -> ``x^{2}``, ``90°`` -> ``90``), zero-width characters
  removed, and NFKC compatibility forms folded (full-width digits and letters, non-breaking and thin spaces);
* :func:`drop_markup`: deletes what never carries meaning: spacing commands (``\\,`` ``\\;`` ``\\!`` ``\\:``
  ``\\ `` but never the row break ``\\\\``), ``$``, ``\\$``, ``%``, ``\\%``, degree marks, ``\\left`` /
  ``\\right`` / ``\\displaystyle`` (as whole control words: ``\\leftarrow`` stays);
* :func:`squeeze_whitespace`: deletes whitespace except one space between a control word and a following
  letter (``\\cot x`` keeps its space, ``\\cotx`` would be another command);
* :func:`strip_trailing_unit`: ``864 \\mbox{ inches}^2`` -> ``864``: a final ``\\text{...}`` / ``\\mbox{...}``
  of words (and an optional ``^2`` / ``^3``) after a quantity is a unit, not part of the value.

All of them are linear in the length of the text.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction

_BRACE = re.compile(r"[{}]")
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻"
_SUBSCRIPTS = "₀₁₂₃₄₅₆₇₈₉₊₋"
_SCRIPT_RUN = re.compile(f"([{_SUPERSCRIPTS}]+)|([{_SUBSCRIPTS}]+)")
# A digit run is consumed whole whether or not a vulgar fraction follows: "\d*" before the character class
# would retry every suffix of a long digit run (quadratic).
_VULGAR = re.compile(r"(-?)(?:(\d+)([\u00bc-\u00be\u2150-\u215e])?|([\u00bc-\u00be\u2150-\u215e]))")
_SQRT = re.compile(r"([√∛∜])(?:\(([^()]*)\)|(\d+(?:\.\d+)?|[a-zA-Z]|\\[a-zA-Z]+))?")
_ROOT_INDEX = {"√": "", "∛": "[3]", "∜": "[4]"}
# Control words get a trailing space, dropped again by squeeze_whitespace unless a letter follows.
_SYMBOLS = {
    "∞": "\\infty ", "π": "\\pi ", "×": "\\times ", "÷": "\\div ", "·": "\\cdot ", "⋅": "\\cdot ",
    "−": "-", "–": "-", "≤": "\\le ", "≥": "\\ge ", "≠": "\\ne ", "∈": "\\in ", "∪": "\\cup ", "∩": "\\cap ",
    "±": "\\pm ", "∓": "\\mp ", "°": "", "θ": "\\theta ", "α": "\\alpha ", "β": "\\beta ", "γ": "\\gamma ",
    "λ": "\\lambda ", "μ": "\\mu ", "σ": "\\sigma ", "φ": "\\phi ", "ω": "\\omega ", "Δ": "\\Delta ",
    "∅": "\\emptyset ", "→": "\\to ", "…": "\\ldots ",
}
_SYMBOL = re.compile("|".join(map(re.escape, _SYMBOLS)))
_DROP = re.compile(
    r"\\\\"  # a row break: kept
    r"|\\[ ,;:!$%]"  # spacing commands, escaped dollars and percents
    r"|\\(?:left|right)(?:\.|(?![a-zA-Z]))|\\(?:displaystyle|degree)(?![a-zA-Z])"
    r"|\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![a-zA-Z])|[$%]"
)
_SQUEEZE = re.compile(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z])|\s+")
_UNIT_OPEN = re.compile(r"\\(?:text|mbox|mathrm|textrm|textnormal|rm)\s*\{")
_UNIT_WORDS = re.compile(r"\s*[a-zA-Z]+(?:[\s.-]+[a-zA-Z]+)*\.?\s*")
_UNIT_POWER = re.compile(r"\s*(?:\^\s*(?:\{\s*[23]\s*\}|[23]))?\s*")
_QUANTITY_END = re.compile(r"(?:[\d})\]]|\\pi|\\infty)\s*$")


def _script(match: re.Match) -> str:
    sup, sub = match.group(1), match.group(2)
    return ("^{" + unicodedata.normalize("NFKC", sup) + "}") if sup else ("_{" + unicodedata.normalize("NFKC", sub) + "}")


def _vulgar(match: re.Match) -> str:
    sign, whole, after_digits, alone = match.groups()
    char = after_digits or alone
    if char is None:
        return match.group(0)  # digits without a fraction
    numerator, denominator = unicodedata.normalize("NFKC", char).split("\u2044")
    value = Fraction(int(numerator or 1), int(denominator)) + int(whole or 0)  # "3½" is the mixed number 7/2
    return f"{sign}\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _sqrt(match: re.Match) -> str:
    index = _ROOT_INDEX[match.group(1)]
    argument = match.group(2) if match.group(2) is not None else match.group(3)
    return f"\\sqrt{index}{{{argument}}}" if argument is not None else f"\\sqrt{index}"


def unicode_to_latex(s: str) -> str:
    """Unicode math symbols as LaTeX, zero-width characters removed, NFKC forms folded (ASCII: unchanged)."""
    if s.isascii():
        return s
    s = s.translate(_ZERO_WIDTH)
    s = _VULGAR.sub(_vulgar, s)
    s = _SCRIPT_RUN.sub(_script, s)
    s = unicodedata.normalize("NFKC", s)  # full-width forms, no-break and thin spaces, "℃" -> "°C"
    s = _SQRT.sub(_sqrt, s)
    return _SYMBOL.sub(lambda m: _SYMBOLS[m.group(0)], s)


def drop_markup(s: str) -> str:
    """``s`` without spacing commands, dollars, percent signs, degree marks, ``\\left`` / ``\\right``."""
    return _DROP.sub(lambda m: m.group(0) if m.group(0) == "\\\\" else "", s)


def squeeze_whitespace(s: str) -> str:
    """``s`` without whitespace, except one space between a control word and a letter (``\\cot x``)."""
    return _SQUEEZE.sub(lambda m: m.group(1) + " " if m.group(1) else "", s)


def matching_brace(text: str, open_index: int, end: int | None = None) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``open_index`` (before ``end``), or None."""
    depth = 0
    for match in _BRACE.finditer(text, open_index, len(text) if end is None else end):
        depth += 1 if match.group(0) == "{" else -1
        if depth == 0:
            return match.start()
    return None


def strip_trailing_unit(s: str) -> str:
    """``s`` without a final unit ``\\text{ words}`` (optionally ``^2`` / ``^3``) that follows a quantity.

    A text group that is the whole answer
    (``\\text{Evelyn}``), sits in the middle (``2 \\text{ and } 3``) or follows a non-quantity
    (``x \\text{ is odd}``) is left alone.
    """
    last = None
    for last in _UNIT_OPEN.finditer(s):
        pass
    if last is None:
        return s
    close = matching_brace(s, last.end() - 1)
    if close is None or not _UNIT_WORDS.fullmatch(s, last.end(), close) or not _UNIT_POWER.fullmatch(s, close + 1):
        return s
    head = s[: last.start()]
    return head.rstrip() if _QUANTITY_END.search(head) else s
