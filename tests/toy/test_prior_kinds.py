"""prior_kinds: the aligned / misaligned / clueless split of a prior's validation problems."""

from __future__ import annotations

import json

import pytest

from urlvr_jax.toy import prior_kinds as K


def problem(accuracy: float, majority_correct: bool) -> dict:
    return {"accuracy": accuracy, "majority_correct": majority_correct}


def test_kinds_follow_the_majority_and_the_right_answers_mass():
    assert K.kind_of(problem(0.4, True)) == "aligned"
    assert K.kind_of(problem(0.3, False)) == "misaligned"  # ground truth can raise it, the vote cannot
    assert K.kind_of(problem(K.MASS, False)) == "misaligned"
    assert K.kind_of(problem(0.01, False)) == "clueless"


def test_tally_splits_by_group_and_keeps_an_all_group():
    problems = [problem(0.6, True), problem(0.2, False), problem(0.0, False), problem(0.0, False)]
    out = K.tally(problems, ["n_ops=1", "n_ops=1", "n_ops=1", "n_ops=2"])
    assert out["all"]["n"] == 4 and out["all"]["clueless"]["share"] == pytest.approx(0.5)
    assert out["n_ops=1"]["aligned"] == {"share": pytest.approx(1 / 3), "accuracy": pytest.approx(0.6)}
    assert out["n_ops=2"]["aligned"] == {"share": 0.0, "accuracy": None}
    over = K.over_priors({"a": out, "b": out})
    assert over["n_ops=1"]["misaligned"]["share"]["mean"] == pytest.approx(1 / 3)
    assert "| n_ops=2 | 0.00 [0.00, 0.00] | — |" in K.table(over)


def test_cli_measures_a_warm_started_prior(tmp_path, capsys):
    from urlvr_jax.toy.warm_start import make_prior
    from urlvr_jax.utils.config import apply_overrides, load_config

    tiny = ["data.val_size=8", "warm_start.steps=3", "warm_start.pool_size=20"]
    prior = make_prior(apply_overrides(load_config("cpu_default"), tiny), str(tmp_path / "prior"), log=lambda *_: None)
    out = tmp_path / "kinds.json"
    assert K.main(["--priors", prior, "--k", "4", "--out", str(out), *tiny]) == 0
    saved = json.loads(out.read_text())
    assert saved["k"] == 4 and list(saved["priors"]) == [prior]
    counts = saved["priors"][prior]["all"]
    assert counts["n"] == 8 and sum(counts[k]["share"] for k in K.KINDS) == pytest.approx(1.0)
    assert "1 priors, 4 samples per problem" in capsys.readouterr().out


def test_a_missing_prior_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        K.main(["--priors", str(tmp_path / "nowhere")])
    assert f"--priors {tmp_path / 'nowhere'}: no prior there" in capsys.readouterr().err
