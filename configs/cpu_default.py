"""The CPU default: a tiny transformer warm-started to an imperfect prior, then majority-vote URLVR beside
ground-truth RL on single-digit arithmetic. Shows the paper's rise-then-fall and a Model Collapse Step in
minutes on a 2-core CPU: ``python -m urlvr_jax.studies run cpu_default``.

What makes the phenomenon appear (the theory module's coupled toy was the guide):
* The prior (``urlvr_jax.toy.warm_start``): supervision on every single-operation problem, with 25% of
  targets replaced by other problems' answers (soft, but correct-plurality priors: *aligned* prompts) and 8% by
  one shared default answer "10" (the shared attractor).
* RL streams prompts from a larger space than was supervised: 30% are fresh two-operation problems on which
  the model is clueless (the right answer almost never sampled), so ground truth has nothing to reinforce there
  while the shared default answer tends to win their votes.
* The learning rate warms up over the first 40% of the steps: while it is small, voting sharpens the aligned
  prompts (accuracy rises) just as ground truth does, since on an aligned prompt the two rewards agree; as it
  grows, the default answer spreads through the shared parameters faster than the aligned prompts can resist,
  and majority voting rewards it everywhere (accuracy falls, reward accuracy crosses 1% at the collapse step,
  the majority-vote reward goes to 1).

Why (issue 21): with 70% of the single-operation problems supervised, 40% noise and 30% two-operation prompts
(the setting kept in ``configs/toy_studies.py`` for the studies), the unseen single-operation problems were
*misaligned* (wrong majority, right answer with mass: ground truth can raise it) or clueless, only about half of
the prompts were aligned, and ground truth pulled ahead of majority voting from the first steps (0.127 above it
at the majority-vote peak, 5 seeds). Supervising every single-operation problem with less noise makes nearly
all of them aligned, so the two rewards agree on them while the clueless two-operation prompts still feed the
fall. ``python -m urlvr_jax.toy.prior_kinds`` measures a prior's aligned / misaligned / clueless shares;
``docs/results.md`` has both settings' numbers and every variant tried.
"""

import ml_collections

from urlvr_jax.config_base import get_config as base


def get_config():
    c = base()
    c.name = "cpu_default"
    c.run_dir = "runs/cpu_default"
    c.tokenizer.update(kind="char", add_special_tokens=True)
    c.model.update(source="init", hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
                   num_kv_heads=2, head_dim=16, max_position_embeddings=64)
    c.data.update(task="arithmetic", template="raw", chat_template="false", pool_size=0, val_size=128)
    c.data.task_options = dict(fmt="compact", digits=1, min_ops=1, max_ops=2, show_steps=False,
                              ops_weights=(0.7, 0.3))
    c.rollout.update(prompts_per_step=32, n=8, max_new_tokens=4, max_prompt_len=8, temperature=1.0)
    c.reward.name = "majority_vote"
    c.algo.update(mini_batch_prompts=16, report_ref_kl=True)
    c.optim.update(lr=1.5e-3, warmup_ratio=0.4, weight_decay=0.0)
    c.train.update(steps=300, checkpoint_every=50, keep_checkpoints=1)
    c.val.update(every=10, k=4, temperature=1.0, top_p=1.0)
    c.warm_start = ml_collections.ConfigDict(dict(
        steps=1500, batch_size=64, lr=3e-3, train_fraction=1.0, copies=8, noise_fraction=0.25,
        default_fraction=0.08, default_answer="10",
        seed=0, pool_size=243, task_options=dict(min_ops=1, max_ops=1, ops_weights=None)))
    c.experiment = ml_collections.ConfigDict(dict(arms="majority_vote,ground_truth", gt_steps=0))  # 0: train.steps
    return c
