"""Scoring a policy on a fixed set of problems: k samples each, then avg@k, pass@k, pass@1 and maj@k.

One implementation for the training loop's validation and for ``python -m urlvr_jax.evaluate``:

* :func:`evaluate_examples` walks the problems in chunks; a caller-supplied ``rollout_batch(examples, start)``
  samples k completions of each problem and returns their :class:`RewardBatch` (group ids 0..len-1 of the
  chunk, rows prompt-major, ``mask`` set so response lengths are tokens);
* :func:`sample_texts` and :func:`reward_batch` are those two steps as the loop does them, and
  :func:`validation_sampler` the sampler of ``config.val`` (temperature, top-p, length).

Metrics (TTRL's): avg@k = mean ground-truth reward of all samples; pass@k = unbiased estimator
1 - C(n-c, k) / C(n, k) per problem, averaged; pass@1 the same with k = 1 (equal to avg@k when every
problem has k samples); maj@k = share of problems whose majority-voted answer grades equal to the gold
answer (``ground_truth`` grading only: for Countdown, different expressions can all be right).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from urlvr_jax.model.config import ModelConfig
from urlvr_jax.model.tokenizer import decode_completions
from urlvr_jax.rewards import metrics as rmetrics
from urlvr_jax.rewards.batch import RewardBatch
from urlvr_jax.rewards.ensemble import majority_labels
from urlvr_jax.rewards.registry import compute_rewards
from urlvr_jax.rl import setup
from urlvr_jax.sampling.sampler import DEFAULT_BUCKETS, Sampler
from urlvr_jax.sampling.strategies import SamplingConfig
from urlvr_jax.tasks import Example
from urlvr_jax.utils import multihost

# What the hosts read of a rollout to decode and grade it.
TEXT_FIELDS = ("tokens", "mask", "lengths", "group_ids")

RolloutBatchFn = Callable[[list[Example], int], RewardBatch]


def evaluate_examples(examples: Sequence[Example], k: int, rollout_batch: RolloutBatchFn, *, chunk: int,
                      gt_reward: str = "ground_truth", on_chunk: Callable[[int], None] | None = None) -> dict:
    """{avg@k, pass@k, pass@1, response_length[, maj@k]} over ``examples`` (keys spelt with a literal ``k``).

    ``rollout_batch(chunk_examples, start)`` returns the graded-to-be batch of ``k`` samples of each example of the
    chunk that starts at ``start``; ``on_chunk(n)`` is told how many problems each finished chunk held.
    """
    if not examples:
        raise ValueError("evaluate_examples: no examples to evaluate")
    if chunk < 1:
        raise ValueError(f"evaluate_examples: chunk={chunk} must be >= 1")
    correct, groups, lengths, label_hits = [], [], [], 0.0
    for start in range(0, len(examples), chunk):
        part = list(examples[start:start + chunk])
        batch = rollout_batch(part, start)
        if batch.batch_size != len(part) * k:
            raise ValueError(f"rollout_batch returned {batch.batch_size} rows for {len(part)} problems x k={k}")
        correct.append(compute_rewards(gt_reward, batch))
        groups.append(np.asarray(batch.group_ids) + start)
        lengths.append(batch.response_lengths())
        if gt_reward == "ground_truth":
            labels = list(majority_labels(batch)[0].values())  # groups in prompt order
            label_hits += rmetrics.label_accuracy(labels, [ex.answer for ex in part],
                                                  [ex.info.get("answer_type") for ex in part]).sum()
        if on_chunk is not None:
            on_chunk(len(part))
    correct, groups = np.concatenate(correct), np.concatenate(groups)
    n, hits = rmetrics.group_counts(correct, groups)
    out = {"avg@k": float(correct.mean()), "pass@k": float(rmetrics.pass_at_k(n, hits, k).mean()),
           "pass@1": float(rmetrics.pass_at_k(n, hits, 1).mean()),
           "response_length": float(np.concatenate(lengths).mean())}
    if gt_reward == "ground_truth":
        out["maj@k"] = float(label_hits / len(examples))
    return out


def sample_texts(config, tokenizer, sampler: Sampler, params, prompts: list[str], key, num_samples: int,
                 fields: Sequence[str] = TEXT_FIELDS):
    """(rollout on the mesh, its ``fields`` as host numpy on every process, the decoded completions)."""
    tokens, mask = setup.encode_prompts(config, tokenizer, prompts)
    rollout = sampler.generate(params, tokens, mask, key, num_samples=num_samples)
    host = multihost.to_host({name: getattr(rollout, name) for name in fields})
    return rollout, host, decode_completions(tokenizer, host["tokens"], host["mask"])


def reward_batch(host: dict, texts: list[str], examples: Sequence[Example], num_samples: int, extract,
                 teacher_answers=None) -> RewardBatch:
    """The RewardBatch of ``num_samples`` decoded completions per example (token statistics from ``host``)."""
    from urlvr_jax.sampling.rollout import STAT_NAMES

    rows = [ex for ex in examples for _ in range(num_samples)]
    stats = {name: host[name] for name in ("mask", *STAT_NAMES) if name in host}
    return RewardBatch.from_texts(texts, host["group_ids"], extract, **stats,
                                  ground_truths=[ex.answer for ex in rows],
                                  task_info=[dict(ex.info) for ex in rows], teacher_answers=teacher_answers)


def prompt_buckets(max_prompt_len: int) -> tuple[int, ...]:
    """The sampler's prompt-length buckets up to ``max_prompt_len``."""
    return tuple(b for b in DEFAULT_BUCKETS if b < max_prompt_len) + (max_prompt_len,)


AUTO_MIN_NEW_TOKENS = 16  # rollout.batching=auto: continuous batching from this many new tokens on
AUTO_SLOTS_SHARE = 8  # rollout.slots=0: one slot per this many rollout rows


def continuous_slots(config) -> int:
    """The decode slots of the run's samplers, or 0 for the static sampler: ``rollout.batching`` (``auto``:
    continuous from AUTO_MIN_NEW_TOKENS new tokens on, or with explicit ``rollout.slots``; static when the config
    asks for rollout chunks, ``rollout.max_rows_per_chunk``, which only the static sampler takes)."""
    r = config.rollout
    mode = r.get("batching", "auto")
    short_or_chunked = r.max_new_tokens < AUTO_MIN_NEW_TOKENS or r.max_rows_per_chunk
    if mode == "static" or (mode == "auto" and not r.slots and short_or_chunked):
        return 0
    return r.slots or max(1, r.prompts_per_step * (r.n_votes or r.n) // AUTO_SLOTS_SHARE)


def make_sampler(config, cfg: ModelConfig, tokenizer, mesh, *, max_new_tokens: int, temperature: float,
                 top_p: float = 1.0, top_k: int = 0) -> Sampler:
    """A sampler of a run's model with the given sampling settings (stop tokens and padding from the tokenizer,
    prompt buckets up to ``rollout.max_prompt_len``, ``rollout.max_rows_per_chunk`` rows at a time, or continuous
    batching over :func:`continuous_slots` decode slots)."""
    sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                              stop_token_ids=setup.stop_token_ids(tokenizer, cfg), pad_id=tokenizer.pad_token_id or 0)
    kwargs = dict(mesh=mesh, buckets=prompt_buckets(config.rollout.max_prompt_len),
                  unroll_layers=config.train.unroll_layers, max_rows_per_chunk=config.rollout.max_rows_per_chunk)
    slots = continuous_slots(config)
    if slots:  # continuous batching: finished rows' slots are refilled with waiting rows
        from urlvr_jax.sampling.continuous import ContinuousSampler

        return ContinuousSampler(cfg, sampling, slots=slots, **kwargs)
    return Sampler(cfg, sampling, **kwargs)


def validation_sampler(config, cfg: ModelConfig, tokenizer, mesh) -> Sampler:
    """The sampler of ``config.val``: temperature, top-p and length (0: ``rollout.max_new_tokens``)."""
    v = config.val
    return make_sampler(config, cfg, tokenizer, mesh, max_new_tokens=v.max_new_tokens or config.rollout.max_new_tokens,
                        temperature=v.temperature, top_p=v.top_p)
