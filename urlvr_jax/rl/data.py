"""Prompt batches as a pure function of (seed, step), so a resumed run sees exactly the same data.

A fixed pool is cycled in epochs, each a fresh permutation drawn from (seed, epoch); a stream generates
each step's prompts from (seed, step). The data position saved with a checkpoint is just the step.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from urlvr_jax.tasks import Example, Task, get_task

_STREAM = 1_000_003  # seed stride between streamed steps


@dataclasses.dataclass(frozen=True)
class PromptSource:
    """``batch(step)`` gives ``batch_size`` examples; from ``pool`` when given, else streamed from ``task``."""

    batch_size: int
    seed: int
    pool: tuple[Example, ...] | None = None
    task: Task | None = None
    shuffle: bool = True

    def __post_init__(self):
        if (self.pool is None) == (self.task is None):
            raise ValueError("PromptSource needs exactly one of pool and task")
        if self.pool is not None and not self.pool:
            raise ValueError("PromptSource: the prompt pool is empty")

    def epoch_order(self, epoch: int) -> np.ndarray:
        n = len(self.pool)
        return np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def batch(self, step: int) -> list[Example]:
        if self.pool is None:
            return self.task.generate(self.batch_size, seed=self.seed * _STREAM + step)
        n = len(self.pool)
        start = step * self.batch_size
        out = []
        for position in range(start, start + self.batch_size):
            epoch, index = divmod(position, n)
            out.append(self.pool[int(self.epoch_order(epoch)[index])])
        return out

    def epoch_of(self, step: int) -> float:
        return float("nan") if self.pool is None else step * self.batch_size / len(self.pool)


def make_task(data_cfg) -> Task | None:
    if not data_cfg.task:
        return None
    return get_task(data_cfg.task, **dict(data_cfg.task_options))


def train_source(data_cfg, batch_size: int, seed: int) -> PromptSource:
    """The training prompts of a ``config.data`` section."""
    task = make_task(data_cfg)
    if data_cfg.dataset:
        from urlvr_jax.tasks.datasets import load_dataset

        pool = load_dataset(data_cfg.dataset, split=data_cfg.split or None, fields=data_cfg.fields)
        return PromptSource(batch_size, seed, pool=tuple(pool), shuffle=data_cfg.shuffle)
    if task is None:
        raise ValueError("config.data: set data.task (e.g. arithmetic) or data.dataset (e.g. dapo17k)")
    if data_cfg.pool_size > 0:
        from urlvr_jax.tasks import make_pool

        return PromptSource(batch_size, seed, pool=tuple(make_pool(task, data_cfg.pool_size, seed)),
                            shuffle=data_cfg.shuffle)
    return PromptSource(batch_size, seed, task=task)


def validation_examples(data_cfg) -> list[Example]:
    """A fixed validation set: a dataset split, or prompts generated with ``val_seed``."""
    if data_cfg.val_dataset:
        from urlvr_jax.tasks.datasets import load_dataset

        examples = load_dataset(data_cfg.val_dataset, split=data_cfg.val_split or None, fields=data_cfg.fields)
        return examples[:data_cfg.val_size] if data_cfg.val_size else examples
    task = make_task(data_cfg)
    if task is None:
        return []
    if len(data_cfg.val_task_options):
        task = get_task(data_cfg.task, **{**dict(data_cfg.task_options), **dict(data_cfg.val_task_options)})
    return task.generate(data_cfg.val_size, seed=data_cfg.val_seed)


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How one source of prompts is posed and graded: the prompt template, the answer extraction applied to a
    completion, and the reward that grades it against the gold answer (``ground_truth`` or ``countdown``)."""

    template: str
    extract: Callable[[str], "str | None"]
    gt_reward: str


def data_protocol(data_cfg, dataset: str | None = None) -> Protocol:
    """The protocol of the training data of ``config.data`` or, given ``dataset``, of that dataset.

    The training data (and its own dataset named again) keeps ``data.template``; another dataset (validation,
    evaluation) gets its own kind's template: Countdown's for Countdown, ``data.template`` (``boxed`` if that is
    Countdown's) for math.
    """
    from urlvr_jax.rewards.answers import extract_answer

    if dataset is None or dataset == data_cfg.dataset:
        task = make_task(data_cfg) if not data_cfg.dataset else None
        if task is not None:
            gt = "countdown" if data_cfg.task == "countdown" else "ground_truth"
            return Protocol(data_cfg.template, lambda text: task.extract_answer(text), gt)
        if data_cfg.dataset == "countdown":
            return Protocol(data_cfg.template, get_task("countdown").extract_answer, "countdown")
        return Protocol(data_cfg.template, extract_answer, "ground_truth")
    if dataset == "countdown":
        return Protocol("countdown", get_task("countdown").extract_answer, "countdown")
    return Protocol(data_cfg.template if data_cfg.template != "countdown" else "boxed", extract_answer, "ground_truth")


def validation_protocol(data_cfg) -> Protocol:
    """The protocol of :func:`validation_examples`: the validation dataset's own, else the training data's."""
    return data_protocol(data_cfg, data_cfg.val_dataset) if data_cfg.val_dataset else data_protocol(data_cfg)
