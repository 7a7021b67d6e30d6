"""The toy base of the committed studies and the prior ranking: the CPU default before its redesign of issue 21
(a prior supervised on 70% of the single-operation problems, 40% of the targets spread noise; 30% of the RL
prompts two-operation problems). Majority-vote label accuracy is near one half, so majority voting rises less
than ground-truth RL before it collapses.

``python -m urlvr_jax.studies`` (toy scale) and ``python -m urlvr_jax.studies run prior_ranking`` start
from it, so the pages in ``docs/studies/`` and ``docs/prior_ranking.md`` stay reproducible by their commands;
``configs/cpu_default.py`` says what changed and why.
"""

from urlvr_jax.utils.config import load_config


def get_config():
    c = load_config("cpu_default")
    c.name = "toy_studies"
    c.run_dir = "runs/toy_studies"
    c.warm_start.update(train_fraction=0.7, noise_fraction=0.4)
    c.data.task_options.ops_weights = (0.7, 0.3)
    return c
