"""The studies' tables: the runs of each study (labels + overrides) and the study-wide overrides per scale.

See :mod:`urlvr_jax.studies.runner` for what each study measures, the scale mapping, and the runner.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

SCALES = ("toy", "paper")
METHODS = ("self_certainty", "token_entropy", "trajectory_entropy", "probability", "majority_vote")
# The paper's taxonomy of intrinsic rewards (section 3), trained beside ground truth in the ``methods`` study.
FAMILIES: dict[str, tuple[str, ...]] = {
    "certainty": ("self_certainty", "token_entropy", "trajectory_entropy", "probability", "probability_disparity"),
    "ensemble": ("majority_vote", "self_consistency", "semantic_cluster", "srt_threshold", "srt_soft",
                 "co_rewarding_teacher"),
    "ground_truth": ("ground_truth",),
}
# A second toy prior for the methods study: twice the share of supervised targets replaced by the shared default
# answer (a stronger attractor). Same methods, a different prior: does the collapse timing move with the prior?
PRIORS: dict[str, dict[str, Any]] = {"A": {}, "B": {"warm_start.default_fraction": 0.16}}
PRIOR_B_METHODS = ("majority_vote", "self_certainty", "ground_truth")
SEEDS = (0, 1, 2)
KNOBS: dict[str, tuple] = {"temperature": (0.6, 0.8, 1.0, 1.2), "mini_batch": (1, 8, 16, 32, 64),
                           "rollouts": (4, 8, 16, 32), "kl": (0.0, 0.005)}
KNOB_DEFAULTS = {"temperature": 1.0, "mini_batch": 64, "rollouts": 8, "kl": 0.0}
SIZES = (32, 128, 512, 2048, 8192, 16384)
PAPER_BATCH = 64
TOY_BATCH = 32
TOY_DATA_FACTOR = 4  # toy dataset sizes and steps = paper / 4 (same epochs per size)


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of a study: its labels (selectable with ``--only``) and overrides of the scale's base."""

    study: str
    name: str
    labels: dict[str, str]
    overrides: dict[str, Any]


def _fmt(value: Any) -> str:
    return "off" if isinstance(value, float) and value == 0.0 else str(value)


def _knob_overrides(knob: str, value: Any, scale: str) -> dict[str, Any]:
    if knob == "temperature":
        return {"rollout.temperature": float(value)}
    if knob == "mini_batch":
        return {"algo.mini_batch_prompts": value if scale == "paper" else max(1, value * TOY_BATCH // PAPER_BATCH)}
    if knob == "rollouts":
        return {"rollout.n": int(value)}
    return {"algo.kl_coef": float(value), "algo.kl_estimator": "k3"}


def _sweep(scale: str) -> list[Run]:
    runs = []
    for method in METHODS:
        for knob, values in KNOBS.items():
            for value in values:
                name = f"{method}-default" if value == KNOB_DEFAULTS[knob] else f"{method}-{knob}={_fmt(value)}"
                labels = dict(method=method, knob=knob, value=_fmt(value))
                runs.append(Run("sweep", name, labels, {"reward.name": method, **_knob_overrides(knob, value, scale)}))
    return runs


def _dataset_size(scale: str) -> list[Run]:
    """One arm per size; each seed trains on its own pool (toy: make_pool's draw; paper: a slice of DAPO-17k,
    set per seed in :func:`urlvr_jax.studies.runner.build_config`)."""
    data = (lambda size: {}) if scale == "paper" else (lambda size: {"data.pool_size": size // TOY_DATA_FACTOR})
    return [Run("dataset_size", f"size={size}", dict(size=str(size)), data(size)) for size in SIZES]


def _methods(scale: str) -> list[Run]:
    runs = []
    for prior, overrides in PRIORS.items():
        for family, methods in FAMILIES.items():
            for method in methods:
                if prior != "A" and (method not in PRIOR_B_METHODS or scale == "paper"):
                    continue  # paper scale: the prior is the base model (one here)
                name = method if prior == "A" else f"{method}-prior={prior}"
                runs.append(Run("methods", name, dict(method=method, family=family, prior=prior),
                                {"reward.name": method, **overrides}))
    return runs


def _failure_modes(scale: str) -> list[Run]:
    return [Run("failure_modes", method, dict(method=method), {"reward.name": method})
            for method in ("probability", "trajectory_entropy", "token_entropy", "self_certainty", "majority_vote",
                           "ground_truth")]


MIXES = {"majority_vote+trajectory_entropy": "majority_vote:0.5,trajectory_entropy:0.5",
         "majority_vote+self_certainty": "majority_vote:0.5,self_certainty:0.5"}


def _mixed(scale: str) -> list[Run]:
    """Two combinations of an ensemble and a certainty reward; their parts are arms of the ``methods`` study."""
    return [Run("mixed", name, dict(mix=name), {"reward.name": spec}) for name, spec in MIXES.items()]


def _ttt(scale: str) -> list[Run]:
    if scale == "paper":
        test = {"data.dataset": "amc23", "data.split": "", "rollout.prompts_per_step": 40,
                "algo.mini_batch_prompts": 40}
        train = {}
    else:  # validation = the pool (make_pool's first draw uses seed * 1_000_003; see the module docstring)
        test = {"data.pool_size": TOY_BATCH}
        train = {"data.pool_size": 0}
    return [Run("ttt", "test_split", dict(arm="test_split"), test),
            Run("ttt", "train_set", dict(arm="train_set"), train)]


def _countdown(scale: str) -> list[Run]:
    return [Run("countdown", arm, dict(arm=arm), {"reward.name": arm})
            for arm in ("self_verify", "trajectory_entropy", "majority_vote", "countdown")]


# Study-wide overrides per scale (applied before each run's own overrides).
STUDY_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    "methods": {
        "toy": {},  # the toy base as it is: 300 steps, where majority vote collapses
        "paper": {"train.steps": 1000},
    },
    "failure_modes": {
        # room to grow or shrink: the prior answers in ~2.6 tokens (answer + EOS), the toy base allows 4
        "toy": {"rollout.max_new_tokens": 16},
        "paper": {"train.steps": 1000},
    },
    "mixed": {"toy": {}, "paper": {"train.steps": 1000}},  # as ``methods``: its arms are the parts
    "sweep": {
        # 300 steps, the toy base's length (where its majority vote collapses): at 150 no arm crossed 1%
        "toy": {"algo.mini_batch_prompts": TOY_BATCH, "train.steps": 300},
        "paper": {"train.steps": 1000},  # ~4 epochs: where even the most stable setting collapses
    },
    "dataset_size": {
        "toy": {"rollout.prompts_per_step": TOY_BATCH, "algo.mini_batch_prompts": TOY_BATCH,
                "train.steps": 600 // TOY_DATA_FACTOR},
        "paper": {"rollout.prompts_per_step": 32, "algo.mini_batch_prompts": 32, "train.steps": 600,
                  "data.shuffle": True},
    },
    "ttt": {
        "toy": {"algo.mini_batch_prompts": TOY_BATCH, "train.steps": 150, "data.val_size": TOY_BATCH},
        "paper": {"data.val_dataset": "amc23", "data.val_size": 40, "train.steps": 300},  # steps: ours
    },
    "countdown": {
        "toy": {"algo.mini_batch_prompts": TOY_BATCH, "train.steps": 150, "rollout.max_new_tokens": 32,
                "rollout.max_prompt_len": 64, "val.max_new_tokens": 32, "reward.verify_max_new_tokens": 8,
                "reward.verify_temperature": 0.5, "data.val_size": 64},
        "paper": {"data.task": "", "data.dataset": "countdown", "data.split": "train[:4000]",
                  "data.val_dataset": "countdown", "data.val_split": "train[-1000:]", "data.val_size": 0,
                  "data.template": "countdown", "data.chat_template": "false", "val.k": 16,
                  "rollout.max_new_tokens": 1024, "rollout.max_prompt_len": 256,  # ours
                  "reward.verify_temperature": 0.5, "reward.verify_max_new_tokens": 4096, "train.steps": 300},
    },
}

STUDIES: dict[str, Callable[[str], list[Run]]] = {
    "methods": _methods, "failure_modes": _failure_modes, "mixed": _mixed, "sweep": _sweep, "dataset_size": _dataset_size, "ttt": _ttt, "countdown": _countdown}


def study_runs(study: str, scale: str = "toy") -> list[Run]:
    if study not in STUDIES:
        raise ValueError(f"unknown study {study!r}; valid studies: {', '.join(STUDIES)}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid scales: {', '.join(SCALES)}")
    return STUDIES[study](scale)
