"""The URLVR loop: prompts → N rollouts each → rewards → advantages → GRPO updates, with validation,
per-step URLVR metrics, Model Collapse Step detection, JSONL/TensorBoard logs, plots and orbax checkpoints.

Everything a step does is a function of (config, params, step), so a run killed at any point and resumed
from its last checkpoint continues bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from urlvr_jax import evaluation, sharding as shd
from urlvr_jax.model.attention_kernels import traced_under
from urlvr_jax.rewards import metrics as rmetrics
from urlvr_jax.rewards.batch import select_first_m
from urlvr_jax.rewards.ensemble import ema_update, teacher_answers_from_texts
from urlvr_jax.rewards.registry import compute_rewards, get_reward
from urlvr_jax.rl import setup
from urlvr_jax.rl.advantages import compute_advantages
from urlvr_jax.rl.data import data_protocol, train_source, validation_examples, validation_protocol
from urlvr_jax.rl.train_step import (TrainBatch, init_train_state, jit_train_step,
                                     state_shardings)
from urlvr_jax.sampling.logprobs import completion_logprobs
from urlvr_jax.evaluation import TEXT_FIELDS
from urlvr_jax.sampling.rollout import STAT_NAMES
from urlvr_jax.sampling.sampler import Sampler
from urlvr_jax.utils import multihost
from urlvr_jax.utils.checkpoint import CheckpointManager
from urlvr_jax.utils.config import save_config, validate_config
from urlvr_jax.utils.goodput import Goodput, lost_steps
from urlvr_jax.utils.preemption import Preempted, PreemptionWatch
from urlvr_jax.utils.run_lock import hold as hold_run_dir
from urlvr_jax.utils.run_storage import RunStorage
from urlvr_jax.utils.metrics_log import MetricsLogger, parse_loggers, read_metrics
from urlvr_jax.utils.plots import plot_curves

# What the hosts read of a training rollout (gathered from every process): decoding, rewards, metrics.
REWARD_FIELDS = TEXT_FIELDS + STAT_NAMES
PROGRESS_KEYS = ("train/proxy_reward", "train/ground_truth_reward", "train/reward_accuracy", "val/avg@k")


@dataclasses.dataclass
class RunResult:
    run_dir: str
    steps: int
    collapse_step: int | None
    rollout_tokens: int
    last_metrics: dict
    params: object = None


def parse_reward_spec(spec: str) -> str | dict[str, float]:
    """``"majority_vote"`` or ``"majority_vote:0.5,format:0.5"`` (every name checked against the registry)."""
    parts = [p.strip() for p in str(spec).split(",") if p.strip()]
    if not parts:
        raise ValueError("config reward.name is empty")
    weights = {}
    for part in parts:
        name, _, weight = part.partition(":")
        get_reward(name)  # unknown name -> ValueError listing the known ones
        weights[name] = float(weight) if weight else 1.0
    return next(iter(weights)) if len(weights) == 1 and not parts[0].count(":") else weights


class URLVRRun:
    """The parts of one run, built from a config; :meth:`train` runs it."""

    def __init__(self, config):
        self.config = c = config
        self.goodput = Goodput()  # the session's clock starts here: building the model counts as "other"
        validate_config(c)  # out-of-range values fail here, naming their key
        setup.set_matmul_precision(c)  # train.matmul_precision, before anything is compiled
        self.n, self.n_votes = c.rollout.n, c.rollout.n_votes or c.rollout.n
        setup.batching(c)  # bad batching fails here, before anything expensive is built
        self.old_source = setup.old_logprobs_source(c)
        self.mesh = shd.make_mesh(c.mesh or None)
        self.rng = jax.random.key(c.seed)
        self.tokenizer = setup.build_tokenizer(c)
        self.cfg, params = setup.build_model(c, self.tokenizer, self.mesh, jax.random.fold_in(self.rng, 1))
        self.reward_spec = parse_reward_spec(c.reward.name)
        self.reward_names = [self.reward_spec] if isinstance(self.reward_spec, str) else list(self.reward_spec)
        self.protocol, self.val_protocol = data_protocol(c.data), validation_protocol(c.data)
        self.extract, self.gt_reward = self.protocol.extract, self.protocol.gt_reward
        self.source = train_source(c.data, c.rollout.prompts_per_step, c.seed)
        self.val_examples = validation_examples(c.data)
        sampler = functools.partial(evaluation.make_sampler, c, self.cfg, self.tokenizer, self.mesh)
        r = c.rollout
        self.sampler = sampler(max_new_tokens=r.max_new_tokens, temperature=r.temperature, top_k=r.top_k, top_p=r.top_p)
        self.val_sampler = evaluation.validation_sampler(c, self.cfg, self.tokenizer, self.mesh)
        self.verify_sampler = sampler(max_new_tokens=c.reward.verify_max_new_tokens,
                                      temperature=c.reward.verify_temperature)
        a = c.algo
        self.needs_ref = bool(a.kl_coef) or a.report_ref_kl
        self.step_cfg, self.optimizer = setup.step_and_optimizer(c)
        copy = lambda tree: jax.tree.map(jnp.copy, tree)  # the train state is donated; keep separate buffers
        self.ref_params = copy(params) if self.needs_ref else None
        self.teacher = copy(params) if "co_rewarding_teacher" in self.reward_names else None
        state = init_train_state(params, self.optimizer, jax.random.fold_in(self.rng, 2))
        self.state = multihost.place(state, state_shardings(state, self.mesh, self.cfg))  # as the step returns it
        self._step_fn = None
        self._logprobs = jax.jit(traced_under(lambda p, pt, pm, t, m: completion_logprobs(  # kernels: on the mesh
            p, pt, pm, t, m, cfg=self.cfg, temperature=c.rollout.temperature,
            chunk_size=c.train.logprob_chunk or None, prompt_group=setup.prompt_group(c)), self.mesh))

    # ------------------------------------------------------------------ one step

    def _generate_texts(self, sampler: Sampler, params, prompts: list[str], key, num_samples: int,
                        fields=TEXT_FIELDS):
        """(rollout on the mesh, its ``fields`` as host numpy on every process, the decoded texts)."""
        return evaluation.sample_texts(self.config, self.tokenizer, sampler, params, prompts, key, num_samples, fields)

    def _reward_options(self, step: int) -> dict:
        opts = {name: dict(self.config.reward.options.get(name, {})) for name in self.reward_names}
        if "random" in opts:
            opts["random"].setdefault("seed", self.config.seed * 100_003 + step)
        if "self_verify" in opts:
            key = jax.random.fold_in(self.rng, 3_000_000 + step)
            texts = lambda prompts: self._generate_texts(
                self.verify_sampler, self.state.params,
                setup.prompt_texts(self.config, self.tokenizer, prompts, template="raw"), key, 1)[2]
            opts["self_verify"].setdefault("generate_fn", texts)
        return {k: v for k, v in opts.items() if v}

    def rollout_step(self, step: int) -> dict:
        c, t0 = self.config, time.perf_counter()
        examples = self.source.batch(step - 1)
        prompts = setup.prompt_texts(c, self.tokenizer, examples)
        key = jax.random.fold_in(self.state.rng, step)
        rollout, host, texts = self._generate_texts(self.sampler, self.state.params, prompts, key, self.n_votes,
                                                    REWARD_FIELDS)
        teacher_answers = None
        if self.teacher is not None:
            _, t_host, t_texts = self._generate_texts(self.sampler, self.teacher, prompts,
                                                      jax.random.fold_in(key, 1), self.n_votes)
            teacher_answers = teacher_answers_from_texts(t_texts, t_host["group_ids"], self.extract)
        t1 = time.perf_counter()
        batch = evaluation.reward_batch(host, texts, examples, self.n_votes, self.extract, teacher_answers)
        proxy = compute_rewards(self.reward_spec, batch, self._reward_options(step))
        gt = compute_rewards(self.gt_reward, batch)
        metrics = rmetrics.urlvr_metrics(batch, proxy, gt, n_votes=None,
                                         votes=self.gt_reward == "ground_truth")
        metrics = {k.replace(f"@{self.n_votes}", "@n"): v for k, v in metrics.items()}
        metrics["repetition"] = rmetrics.repetition_rate(host["tokens"], host["lengths"])
        # Every process graded the same texts, but grading has timeouts: process 0's grades are the run's.
        proxy, metrics = multihost.agree((np.asarray(proxy, np.float32), metrics))
        t2 = time.perf_counter()
        keep = select_first_m(host["group_ids"], self.n) if self.n_votes > self.n else np.arange(len(texts))
        metrics.update(self._update(rollout.take(keep), host["group_ids"][keep], proxy[keep]))
        if self.teacher is not None:
            self.teacher = ema_update(self.teacher, self.state.params, c.reward.teacher_ema)
        metrics.update(rollout_time=t1 - t0, reward_time=t2 - t1, update_time=time.perf_counter() - t2,
                       generated_tokens=float(host["lengths"].sum()))
        return metrics

    def _update(self, rollout, group_ids: np.ndarray, rewards: np.ndarray) -> dict:
        a = self.config.algo
        opts = {"std_eps": a.std_eps} if a.advantage in ("grpo", "batch_std") else {}
        advantages = np.asarray(compute_advantages(a.advantage, jnp.asarray(rewards), jnp.asarray(group_ids),
                                                   self.config.rollout.prompts_per_step, **opts))
        args = (rollout.prompt_tokens, rollout.prompt_mask, rollout.tokens, rollout.mask)
        old = self._logprobs(self.state.params, *args) if self.old_source == "recompute" else rollout.logprobs
        ref = self._logprobs(self.ref_params, *args) if self.needs_ref else jnp.zeros_like(rollout.logprobs)
        batch = TrainBatch(prompt_tokens=rollout.prompt_tokens, prompt_mask=rollout.prompt_mask, tokens=rollout.tokens,
                           mask=rollout.mask, advantages=advantages.astype(np.float32), old_logprobs=old,
                           ref_logprobs=ref, sampler_logprobs=rollout.logprobs)
        if self._step_fn is None:
            self._step_fn = jit_train_step(self.cfg, self.step_cfg, self.optimizer, self.mesh, self.state, batch)
        batch = multihost.place(batch, shd.tree_batch_shardings(batch, self.mesh))
        self.state, metrics = self._step_fn(self.state, batch)
        out = {k: float(v) for k, v in multihost.to_host(metrics).items()}
        out["advantage_abs"] = float(np.abs(advantages).mean())
        return out

    # ------------------------------------------------------------------ validation

    def validate(self, step: int) -> dict:
        """avg@k, pass@k, pass@1, response length and maj@k on the validation set (``config.val``)."""
        if not self.val_examples:
            return {}
        c, k, protocol = self.config, self.config.val.k, self.val_protocol
        key = jax.random.fold_in(self.rng, 2_000_000 + step)

        def rollout_batch(examples, start):
            prompts = setup.prompt_texts(c, self.tokenizer, examples, template=protocol.template)
            _, host, texts = self._generate_texts(self.val_sampler, self.state.params, prompts,
                                                  jax.random.fold_in(key, start), k)
            return evaluation.reward_batch(host, texts, examples, k, protocol.extract)

        scores = evaluation.evaluate_examples(self.val_examples, k, rollout_batch, chunk=c.rollout.prompts_per_step,
                                              gt_reward=protocol.gt_reward)
        return multihost.agree(scores)  # graded on every process; process 0's grades are the run's

    # ------------------------------------------------------------------ the run

    def train(self) -> RunResult:
        storage = RunStorage(self.config.run_dir)  # run_dir: a local or shared path, or a gs:// URL
        # One run per run_dir (a second one is refused); SIGTERM / SIGINT stop it at a step boundary with a checkpoint.
        with hold_run_dir(storage.local_dir), PreemptionWatch() as watch:
            return self._train(storage, watch)

    def _train(self, storage: RunStorage, watch: PreemptionWatch) -> RunResult:
        c, clock = self.config, self.goodput
        multihost.primary_only(storage.download)  # a URL run_dir's logs, so a resumed run continues them
        run_dir = storage.local_dir  # where process 0 writes config, metrics, TensorBoard, plots, export
        multihost.primary_only(lambda: save_config(c, os.path.join(run_dir, "config.json")))
        ckpt = CheckpointManager(storage.checkpoint_dir(), keep=c.train.keep_checkpoints,
                                 save_every=c.train.checkpoint_every)
        start, info = 0, {"collapse_step": None, "rollout_tokens": 0, "nonfinite_streak": 0}
        with clock.phase("restore"):
            restored = ckpt.restore_latest(self._checkpoint_state())
        if restored is not None:
            state, data_state = restored
            self.state, self.teacher = state["train"], state.get("teacher")
            start = int(data_state["step"])
            info.update({k: data_state[k] for k in info if k in data_state})
        lost = lost_steps(run_dir, start) if multihost.is_primary() else None  # logged after it by a killed run
        clock.resumed(restored[1].get("goodput") if restored else None, lost)
        loggers = parse_loggers(c.train.loggers)
        logger = multihost.primary_only(lambda: MetricsLogger(
            run_dir, use_tensorboard="tensorboard" in loggers, wandb_config=c.to_dict() if "wandb" in loggers else None,
            progress_total=c.train.steps, progress_keys=PROGRESS_KEYS, resume_step=start if restored else -1,
            show_progress=c.train.progress))
        metrics, step, preempted = {}, start, False
        try:
            if start == 0:
                logger.log(0, self._timed_validate(0), prefix="val")
            for step in range(start + 1, c.train.steps + 1):
                with clock.phase("step"):
                    metrics = self.rollout_step(step)
                info["rollout_tokens"] += int(metrics["generated_tokens"])
                metrics["rollout_tokens"] = float(info["rollout_tokens"])
                if info["collapse_step"] is None and metrics.get("reward_accuracy", 1.0) < c.train.collapse_threshold:
                    info["collapse_step"] = step
                logger.log(step, metrics, prefix="train")
                self._check_finite(step, metrics, info)  # after logging, so a failing step's metrics are kept
                if c.val.every and step % c.val.every == 0 or step == c.train.steps:
                    logger.log(step, self._timed_validate(step), prefix="val")
                preempted = watch.reached(step)  # the same step on every process
                last = step == c.train.steps or preempted
                if ckpt.should_save(step, force=last):
                    logger.flush()  # the logs up to this step are on disk before its checkpoint
                with clock.phase("checkpoint"):  # (the write itself overlaps the next step)
                    saved = ckpt.save(step, self._checkpoint_state(), dict(info, step=step, goodput=clock.totals()),
                                      force=last)
                if saved:
                    multihost.primary_only(storage.upload)
                if preempted or c.train.stop_at_collapse and info["collapse_step"] is not None:
                    break
            with clock.phase("checkpoint"):
                ckpt.wait()
            summary, line = clock.report()
            logger.log(step, summary, prefix="goodput")
            multihost.primary_only(lambda: print(line, flush=True))
        finally:
            logger.close()
            ckpt.close()
        if preempted:
            multihost.primary_only(storage.upload)
            raise Preempted(step, ckpt.step_dir(step))
        self._finish(run_dir, info)
        multihost.primary_only(storage.upload)
        return RunResult(c.run_dir, step, info["collapse_step"], info["rollout_tokens"], metrics, self.state.params)

    def _timed_validate(self, step: int) -> dict:
        with self.goodput.phase("validation"):
            return self.validate(step)

    def _checkpoint_state(self) -> dict:
        state = {"train": self.state}
        if self.teacher is not None:
            state["teacher"] = self.teacher
        return state

    def _check_finite(self, step: int, metrics: dict, info: dict) -> None:
        bad = metrics.get("rolled_back_updates", 0) > 0 or not np.isfinite(metrics.get("loss", 0.0))
        if not bad:
            info["nonfinite_streak"] = 0
            return
        info["nonfinite_streak"] += 1
        cause = "" if np.isfinite(metrics.get("proxy_reward", 0.0)) else " (the proxy reward itself is not finite)"
        what = ("non-finite loss or gradient" if metrics.get("nonfinite_updates", 1) > 0 else
                f"non-finite params or optimizer state, or params above train.max_param_norm="
                f"{self.config.train.max_param_norm:g},")
        warnings.warn(f"step {step}: {what} in {int(metrics.get('rolled_back_updates', 1))} "
                      f"update(s){cause}; those updates were rolled back", RuntimeWarning)
        if info["nonfinite_streak"] > self.config.train.max_nonfinite_steps:
            raise FloatingPointError(
                f"step {step}: {what.rstrip(',')} for {info['nonfinite_streak']} steps in a row "
                f"(train.max_nonfinite_steps={self.config.train.max_nonfinite_steps}); stopping. The metrics up "
                f"to this step are in {self.config.run_dir}/metrics.jsonl and the last good checkpoint is kept.")

    def _finish(self, run_dir: str, info: dict) -> None:
        params = multihost.to_host(self.state.params) if self.config.train.export_hf else None  # collective
        if multihost.is_primary():
            self._write_outputs(run_dir, info, params)

    def _write_outputs(self, run_dir: str, info: dict, params) -> None:
        """Plots and the HF export (process 0 only)."""
        panels = [("rewards", ["train/proxy_reward", "train/ground_truth_reward"]),
                  ("reward accuracy", ["train/reward_accuracy"]),
                  ("validation", ["val/avg@k", "val/pass@k"]),
                  ("entropy", ["train/entropy_mean"]), ("response length", ["train/response_length"]),
                  ("repetition (4-grams)", ["train/repetition"]), ("distinct answers", ["train/distinct_answers"])]
        records = read_metrics(os.path.join(run_dir, "metrics.jsonl"))
        logged = {key for record in records for key in record}
        panels = [(title, keys) for title, keys in panels if any(k in logged for k in keys)]  # e.g. no labels
        try:
            plot_curves(records, os.path.join(run_dir, "curves.png"), panels,
                        collapse_step=info["collapse_step"], title=self.config.name)
        except ValueError as e:  # a run too short to have every curve
            warnings.warn(f"plot skipped: {e}")
        if self.config.train.export_hf:
            setup.export_run(run_dir, self.cfg, params, self.tokenizer)


def train(config) -> RunResult:
    return URLVRRun(config).train()
