"""The CPU default on multiple-choice arithmetic: each prompt lists 4 candidate values, ``(9|22|17|30)7+5*3=``,
and the answer is the right one's value (``urlvr_jax.tasks.arithmetic``, ``choices``). Everything else, the warm
start included, is the prior ranking's base (``configs/toy_studies``); prompts are longer. Used by the prior
ranking's multiple-choice variant:
``python -m urlvr_jax.studies run prior_ranking --config cpu_default_mc --out runs/prior_ranking_mc``.
"""

from urlvr_jax.utils.config import load_config


def get_config():
    c = load_config("toy_studies")
    c.name = "cpu_default_mc"
    c.run_dir = "runs/cpu_default_mc"
    with c.unlocked():
        c.data.task_options.choices = 4
    c.rollout.max_prompt_len = 32
    return c
