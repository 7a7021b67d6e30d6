"""Hand-written (gold, prediction, verdict) rows over MATH-500-style answers, graded as ``answer_type="math"``.

Each verdict is the mathematical truth for a benchmark grader (a unit, a degree sign, a ``$`` or a percent
sign around the right value is right; a rounded value of an exact answer is wrong), not the grader's output.
"""

import pytest

from urlvr_jax.rewards.answers import normalize_answer
from urlvr_jax.rewards.grading import equivalent_many

VEC = "\\begin{pmatrix} -2 \\\\ -14 \\\\ -7 \\end{pmatrix}"
MAT = "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"

ROWS = [
    # fractions
    ("\\frac{3}{4}", "0.75", True),
    ("\\frac{3}{4}", "3/4", True),
    ("\\frac{3}{4}", "\\dfrac{3}{4}", True),
    ("\\frac{3}{4}", "\\frac{6}{8}", True),
    ("\\frac{3}{4}", "\\frac{4}{3}", False),
    ("\\frac{1}{2}", "½", True),
    ("-\\frac{1}{3}", "\\frac{-1}{3}", True),
    ("\\frac{1}{3}", "0.33", False),
    ("\\frac{7}{2}", "3½", True),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", True),
    ("\\frac{9}{4}", "2.25", True),
    # matrices and vectors
    (VEC, "\\begin{pmatrix}-2\\\\-14\\\\-7\\end{pmatrix}", True),
    (VEC, "\\begin{pmatrix} -2 \\\\ 14 \\\\ -7 \\end{pmatrix}", False),
    (VEC, "\\begin{pmatrix} -2 & -14 & -7 \\end{pmatrix}", False),  # a row, not a column
    (MAT, "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True),
    (MAT, "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}", False),  # the transpose
    ("\\begin{pmatrix} 1/2 \\\\ 3 \\end{pmatrix}", "\\begin{pmatrix} \\frac{1}{2} \\\\ 3 \\end{pmatrix}", True),
    # intervals
    ("[-2, 7)", "[-2,7)", True),
    ("(-\\infty, 3]", "(-∞, 3]", True),
    ("(-\\infty, 3]", "(-\\infty, 3)", False),
    ("(-\\infty,-2)\\cup(2,\\infty)", "(-\\infty, -2) \\cup (2, \\infty)", True),
    ("[2, 5]", "(2, 5)", False),
    # sets and tuples
    ("\\{1,2,3\\}", "\\{3, 2, 1\\}", True),
    ("\\{1,2,3\\}", "\\{1,2,4\\}", False),
    ("(3, -1)", "(3,-1)", True),
    ("(3, -1)", "(-1, 3)", False),
    # degrees
    ("90^\\circ", "90", True),
    ("90^\\circ", "90°", True),
    ("30", "30^{\\circ}", True),
    ("45^\\circ", "135^\\circ", False),
    # units, dollars, percents
    ("864 \\mbox{ inches}^2", "864", True),
    ("864 \\mbox{ inches}^2", "864 \\text{ square inches}", True),
    ("864 \\mbox{ inches}^2", "846", False),
    ("10\\text{ cm}", "10", True),
    ("10\\text{ cm}", "12 \\text{ cm}", False),
    ("\\$18.90", "18.90", True),
    ("\\$18.90", "18.9", True),
    ("6", "6\\text{ dollars}", True),
    ("5\\%", "5", True),
    # pi
    ("2\\pi", "2π", True),
    ("\\frac{\\pi}{4}", "\\pi/4", True),
    ("\\frac{\\pi}{4}", "0.25\\pi", True),
    ("2\\pi", "6.28", False),
    ("\\pi", "3.14159", False),
    # roots
    ("2\\sqrt{2}", "\\sqrt{8}", True),
    ("3\\sqrt{13}", "3√13", True),
    ("\\sqrt{2}", "√2", True),
    ("\\sqrt{2}", "2^{1/2}", True),
    ("11\\sqrt2", "11\\sqrt{2}", True),
    ("2\\sqrt{3}", "3\\sqrt{2}", False),
    ("\\frac{\\sqrt{5}}{5}", "\\frac{1}{\\sqrt{5}}", True),
    ("2", "\\sqrt{4}", True),
    # text answers
    ("\\text{Evelyn}", "Evelyn", True),
    ("\\text{(C)}", "(C)", True),
    ("\\text{Evelyn}", "\\text{Sarah}", False),
    ("\\text{odd}", "\\text{even}", False),
    # negative numbers
    ("-5", "-5", True),
    ("-5", "5", False),
    ("-\\frac{1}{2}", "-0.5", True),
    ("-2", "−2", True),  # a unicode minus sign
    # thousands separators and other number spellings
    ("10,080", "10080", True),
    ("1000000", "1{,}000{,}000", True),
    ("1,000", "1.000", False),
    ("12,345", "12345.0", True),
    ("4", "4.0", True),
    ("123", "１２３", True),  # full-width digits
    ("90", "9\u200b0", True),  # a zero-width space
    # expressions and trigonometry
    ("x^2+2x+1", "(x+1)^2", True),
    ("3x+2", "2+3x", True),
    ("y = 2x+3", "2x+3", True),
    ("1+2i", "2i+1", True),
    ("\\cot x", "\\cot  x", True),
    ("\\cot x", "\\cot\u00a0x", True),  # a non-breaking space
    ("\\cot x", "\\tan x", False),
    ("\\infty", "∞", True),
    ("\\frac{1}{2}", "\\boxed{\\frac{1}{2}}", True),
]


def test_the_table_is_large_and_mixed():
    assert len(ROWS) >= 60
    assert sum(verdict for *_, verdict in ROWS) < len(ROWS) - 15  # wrong answers too


def test_grading_table():
    verdicts = equivalent_many([(pred, gold) for gold, pred, _ in ROWS], ["math"] * len(ROWS))
    wrong = [(gold, pred, expected) for (gold, pred, expected), got in zip(ROWS, verdicts) if got is not expected]
    assert wrong == []


@pytest.mark.parametrize("answer, normalized", [
    (VEC, "\\begin{pmatrix}-2\\\\-14\\\\-7\\end{pmatrix}"),  # row breaks stay row breaks
    ("\\begin{bmatrix} a \\\\ b \\end{bmatrix}", "\\begin{bmatrix}a\\\\b\\end{bmatrix}"),
    ("\\cot x", "\\cot x"),  # not "\\cotx"
    ("\\sin \\theta", "\\sin\\theta"),
    ("\\leftarrow", "\\leftarrow"),  # \\left is dropped only as a whole word
    ("\\left( 1, 2 \\right]", "(1,2]"),
    ("864 \\mbox{ inches}^2", "864"),
    ("2 \\text{ and } 3", "2and3"),  # a text group in the middle is no unit
    ("x \\text{ is odd}", "xisodd"),  # nor one after a non-quantity
    ("½", "\\frac{1}{2}"),
    ("-3¾", "-\\frac{15}{4}"),  # a mixed number
    ("√(x+1)", "\\sqrt{x+1}"),
    ("πr²", "\\pi r^{2}"),
    ("[−2, ∞)", "[-2,\\infty)"),
    ("90°", "90"),
])
def test_normalize_keeps_latex_structure(answer, normalized):
    assert normalize_answer(answer) == normalized
    assert normalize_answer(normalized) == normalized
