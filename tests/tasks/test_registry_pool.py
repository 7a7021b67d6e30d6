"""Task registry, fixed pools and streams."""

import itertools

import pytest

from urlvr_jax.tasks import ArithmeticTask, CountdownTask, Example, Task, get_task, task_names
from urlvr_jax.tasks.pool import iterate_batches, make_pool, stream_batches


def test_registry():
    assert {"arithmetic", "countdown"} <= set(task_names())
    task = get_task("arithmetic", digits=2, fmt="boxed")
    assert isinstance(task, ArithmeticTask) and task.digits == 2 and isinstance(task, Task)
    assert isinstance(get_task("countdown"), CountdownTask)
    with pytest.raises(KeyError, match="unknown task 'sudoku'; known tasks: arithmetic, countdown"):
        get_task("sudoku")
    with pytest.raises(TypeError, match="bad options for task 'arithmetic'"):
        get_task("arithmetic", colour="red")


def test_example_record():
    ex = Example("p", "1", None, {"numbers": [1, 2]})
    assert Example.from_dict(ex.to_dict()) == ex
    assert hash(ex) == hash(Example("p", "1", None, {}))  # info is not hashed
    with pytest.raises(AttributeError):
        ex.prompt = "q"


def test_pool_is_unique_and_deterministic():
    task = ArithmeticTask(min_ops=1, max_ops=1)
    pool = make_pool(task, 200, seed=0)
    assert len(pool) == 200 and len({e.prompt for e in pool}) == 200
    assert pool == make_pool(task, 200, seed=0) and pool != make_pool(task, 200, seed=1)


def test_pool_too_large_raises():
    task = ArithmeticTask(min_ops=1, max_ops=1, ops="+")  # only 81 distinct prompts exist
    with pytest.raises(ValueError, match="only 81 distinct prompts"):
        make_pool(task, 100, seed=0, max_rounds=10)


def test_iterate_batches_covers_each_epoch():
    pool = make_pool(ArithmeticTask(), 12, seed=0)
    batches = list(itertools.islice(iterate_batches(pool, 4, seed=0), 6))
    assert all(len(b) == 4 for b in batches)
    first, second = batches[:3], batches[3:]
    for epoch in (first, second):
        assert sorted(e.prompt for b in epoch for e in b) == sorted(e.prompt for e in pool)
    assert [e.prompt for b in first for e in b] != [e.prompt for b in second for e in b]  # reshuffled
    ordered = next(iterate_batches(pool, 5, seed=0, shuffle=False))
    assert ordered == pool[:5]
    with pytest.raises(ValueError, match="empty"):
        next(iterate_batches([], 4, seed=0))


def test_stream_batches_fresh_and_deterministic():
    task = ArithmeticTask(digits=2)
    a = list(itertools.islice(stream_batches(task, 8, seed=0), 3))
    b = list(itertools.islice(stream_batches(task, 8, seed=0), 3))
    assert a == b and a[0] != a[1]
