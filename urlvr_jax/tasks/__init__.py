"""Tasks and data: synthetic verifiable tasks, local benchmark datasets, prompt templates, the char tokenizer.

* ``Example``, ``Task``, ``get_task(name, **options)``, ``task_names()``: the common record and the task registry
  (``arithmetic``, ``countdown``).
* ``make_pool`` / ``iterate_batches`` / ``stream_batches``: fixed pools and streams of generated examples.
* ``format_prompt``: templates (boxed math, Countdown, raw) with or without the tokenizer's chat template.
* ``make_char_tokenizer``: the tiny character-level tokenizer (imports ``transformers``).
* ``load_dataset`` / ``load_source``: DAPO-17k, MATH-500, AIME24/25, AMC23, Countdown from local files
  (``urlvr_jax.tasks.datasets``, imports ``tensorflow_datasets`` on first use).
"""

from urlvr_jax.tasks.arithmetic import ArithmeticTask
from urlvr_jax.tasks.base import (
    Example,
    Task,
    extract_last_boxed,
    extract_last_tag,
    get_task,
    parse_int_literal,
    register_task,
    task_names,
)
from urlvr_jax.tasks.countdown import CountdownTask, countdown_question
from urlvr_jax.tasks.pool import iterate_batches, make_pool, stream_batches
from urlvr_jax.tasks.templates import BOXED_INSTRUCTION, format_prompt, plain_prompt, user_message

_LAZY = {"make_char_tokenizer": "urlvr_jax.tasks.char_tokenizer",
         "load_dataset": "urlvr_jax.tasks.datasets", "load_source": "urlvr_jax.tasks.datasets"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'urlvr_jax.tasks' has no attribute {name!r}")


__all__ = [
    "ArithmeticTask", "BOXED_INSTRUCTION", "CountdownTask", "Example", "Task", "countdown_question",
    "extract_last_boxed", "extract_last_tag", "format_prompt", "get_task", "iterate_batches", "load_dataset",
    "load_source", "make_char_tokenizer", "make_pool", "parse_int_literal", "plain_prompt", "register_task",
    "stream_batches", "task_names", "user_message",
]
