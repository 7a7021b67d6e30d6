"""Spellings of one answer grade as one answer: spaced vs unspaced LaTeX (property tests), and majority vote
puts equivalent spellings in one cluster."""

import re

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urlvr_jax.rewards import compute_rewards
from urlvr_jax.rewards.answers import normalize_answer
from urlvr_jax.rewards.batch import RewardBatch
from urlvr_jax.rewards.clustering import cluster_answers
from urlvr_jax.rewards.ensemble import majority_labels
from urlvr_jax.rewards.grading import equivalent_many, is_equivalent

CONTROL_WORD_END = re.compile(r"\\[a-zA-Z]+$")
# Commands normalisation deletes on purpose (the rest must survive it).
DROPPED = {"\\left", "\\right", "\\text", "\\mbox", "\\displaystyle"}

atoms = st.one_of(st.integers(-99, 999).map(str), st.sampled_from(["x", "y", "n", "0.5", "\\pi", "\\theta", "\\infty"]))


def _extend(inner):
    return st.one_of(
        st.tuples(inner, inner).map(lambda ab: ["\\frac", "{", *ab[0], "}", "{", *ab[1], "}"]),
        inner.map(lambda a: ["\\sqrt", "{", *a, "}"]),
        st.tuples(inner, st.sampled_from(["+", "-", "\\cdot", "\\times"]), inner).map(lambda t: [*t[0], t[1], *t[2]]),
        st.tuples(st.sampled_from(["\\cot", "\\sin", "\\log", "\\cos"]), inner).map(lambda t: [t[0], *t[1]]),
        inner.map(lambda a: ["\\left(", *a, "\\right)"]),
        st.tuples(inner, inner).map(lambda ab: [*ab[0], "^", "{", *ab[1], "}"]),
    )


expressions = st.recursive(atoms.map(lambda a: [a]), _extend, max_leaves=6)


def _matrix(cells):
    rows = [sum(([*cell, "&"] for cell in row), [])[:-1] for row in cells]
    return ["\\begin{pmatrix}", *sum(([*row, "\\\\"] for row in rows), [])[:-1], "\\end{pmatrix}"]


matrices = st.integers(1, 3).flatmap(
    lambda width: st.lists(st.lists(expressions, min_size=width, max_size=width), min_size=1, max_size=3)).map(_matrix)
intervals = st.tuples(st.sampled_from(["(", "["]), expressions, expressions, st.sampled_from([")", "]"])).map(
    lambda t: [t[0], *t[1], ",", *t[2], t[3]])
sets = st.lists(expressions, min_size=1, max_size=4).map(lambda items: ["\\{", *sum(([*i, ","] for i in items), [])[:-1], "\\}"])
with_units = st.tuples(st.integers(1, 9999).map(str), st.sampled_from(["cm", "inches", "square units"]),
                       st.sampled_from([[], ["^", "2"]])).map(lambda t: [t[0], "\\mbox", "{", t[1], "}", *t[2]])
answers = st.one_of(expressions, matrices, intervals, sets, with_units)
gaps = st.lists(st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\u2009"]), min_size=1, max_size=2).map("".join)


def unspaced(tokens):
    """The tokens with no whitespace, except the one space LaTeX needs after a control word before a letter."""
    text = tokens[0]
    for token in tokens[1:]:
        needs_space = CONTROL_WORD_END.search(text) and token[0].isalpha()
        text += (" " if needs_space else "") + token
    return text


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(answers, st.data())
def test_spaced_and_unspaced_spellings_grade_equal(tokens, data):
    tight = unspaced(tokens)
    spaced = tokens[0] + "".join(data.draw(gaps) + token for token in tokens[1:])
    assert normalize_answer(spaced) == normalize_answer(tight)
    assert equivalent_many([(spaced, tight), (tight, spaced)]) == [True, True]
    # the structure survives: row breaks, and every command the answer uses
    normalized = normalize_answer(tight)
    assert normalized.count("\\\\") == tight.count("\\\\")
    commands = set(re.findall(r"\\[a-zA-Z]+", tight)) - DROPPED
    assert commands <= set(re.findall(r"\\[a-zA-Z]+", normalized))
    for command, letter in re.findall(r"(\\[a-zA-Z]+) ([a-zA-Z])", tight):  # \cot x does not become \cotx
        assert f"{command} {letter}" in normalized


VECTOR = "\\begin{pmatrix} -2 \\\\ -14 \\\\ -7 \\end{pmatrix}"
VECTOR_TIGHT = "\\begin{pmatrix}-2\\\\-14\\\\-7\\end{pmatrix}"
WRONG = "\\begin{pmatrix} 2 \\\\ 14 \\\\ 7 \\end{pmatrix}"


def test_majority_vote_clusters_spellings_of_the_right_vector():
    # 3 identical wrong vectors come first: they win any tie, so the right one must get all 5 of its votes
    group = [WRONG] * 3 + [VECTOR] * 3 + [VECTOR_TIGHT] * 2
    texts = [f"So the answer is $\\boxed{{{answer}}}$." for answer in group]
    batch = RewardBatch.from_texts(texts, [0] * len(texts), ground_truths=[VECTOR] * len(texts))
    assert cluster_answers(batch.answers).tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    labels, ratios = majority_labels(batch)
    assert is_equivalent(labels[0], VECTOR) and ratios[0] == 5 / 8
    assert compute_rewards("majority_vote", batch).tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    assert compute_rewards("majority_vote", batch).tolist() == compute_rewards("ground_truth", batch).tolist()


def test_majority_vote_clusters_unicode_and_latex_spellings():
    group = ["1/3", "1/3", "1/3", "½", "\\frac{1}{2}", "0.5", "\\dfrac12"]
    assert cluster_answers(group).tolist() == [0, 0, 0, 1, 1, 1, 1]
    batch = RewardBatch(texts=group, answers=group, group_ids=np.zeros(len(group)))
    assert compute_rewards("majority_vote", batch).tolist() == [0, 0, 0, 1, 1, 1, 1]
    cot = ["\\tan x", "\\tan x", "\\cot x", "\\cot  x", "\\cot\u00a0x"]
    assert cluster_answers(cot).tolist() == [0, 0, 1, 1, 1]
