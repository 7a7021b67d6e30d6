"""Fixed prompt pools and example streams for the synthetic tasks.

* ``make_pool(task, size, seed)``: ``size`` distinct examples (by prompt), deterministic in ``seed``;
  the small-data experiments train on such a fixed pool for many epochs.
* ``iterate_batches(examples, batch_size, seed)``: endless batches over a fixed pool, reshuffled each epoch.
* ``stream_batches(task, batch_size, seed)``: endless batches of freshly generated examples (a very large pool).
"""

from __future__ import annotations

import itertools
import random
from typing import Iterator, Sequence

from urlvr_jax.tasks.base import Example, Task


def make_pool(task: Task, size: int, seed: int, max_rounds: int = 50) -> list[Example]:
    """``size`` examples with distinct prompts; raises if the task cannot produce that many."""
    if size < 0:
        raise ValueError(f"pool size must be >= 0, got {size}")
    pool: dict[str, Example] = {}
    for round_ in range(max_rounds):
        chunk = max(size - len(pool), 16) * 2
        for example in task.generate(chunk, seed=seed * 1_000_003 + round_):
            pool.setdefault(example.prompt, example)
            if len(pool) == size:
                return list(pool.values())
    raise ValueError(f"task {task.name!r} gave only {len(pool)} distinct prompts (asked for {size}); "
                     "raise its difficulty (e.g. digits or number of operations)")


def iterate_batches(examples: Sequence[Example], batch_size: int, seed: int,
                    shuffle: bool = True) -> Iterator[list[Example]]:
    """Endless batches over ``examples``; each epoch is a fresh permutation (or the given order)."""
    if not examples:
        raise ValueError("cannot iterate over an empty example list")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rng = random.Random(seed)

    def indices() -> Iterator[int]:
        for _ in itertools.count():
            order = list(range(len(examples)))
            if shuffle:
                rng.shuffle(order)
            yield from order

    stream = indices()
    while True:
        yield [examples[i] for i in itertools.islice(stream, batch_size)]


def stream_batches(task: Task, batch_size: int, seed: int) -> Iterator[list[Example]]:
    """Endless batches of new examples; batch ``i`` is ``task.generate(batch_size, seed=f(seed, i))``."""
    for step in itertools.count():
        yield task.generate(batch_size, seed=(seed * 1_000_003 + step) ^ 0x5EED)
