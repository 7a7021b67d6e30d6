"""A diagnostic of the CPU default (issue 21): RL prompts are single-operation problems only, validation is the
CPU default's (the same 128 problems, 30% two-operation). With the same priors (``run_dir`` is the CPU
default's, so ``python -m urlvr_jax.studies run gap_by_kind --config cpu_default_single_op_rl`` replays from the
seeds' priors), the majority vote then never trains on the clueless two-operation prompts, and what is left of its
gap to ground truth is what the vote does on the prompts it can get right.
"""

from urlvr_jax.utils.config import load_config


def get_config():
    c = load_config("cpu_default")
    c.name = "cpu_default_single_op_rl"
    with c.unlocked():
        c.data.val_task_options = dict(c.data.task_options)
        c.data.task_options.ops_weights = (1.0, 0.0)
    return c
