"""A tiny random-init model learning compact arithmetic with the ground-truth reward (fast CPU smoke run)."""

from urlvr_jax.config_base import get_config as base


def get_config():
    c = base()
    c.name = "tiny_gt"
    c.run_dir = "runs/tiny_gt"
    c.tokenizer.kind = "char"
    c.tokenizer.add_special_tokens = True
    c.model.update(source="init", hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
                   num_kv_heads=2, head_dim=16)
    c.data.update(task="arithmetic", template="raw", chat_template="false", val_size=32)
    c.data.task_options = dict(fmt="compact", digits=1, min_ops=1, max_ops=1)
    c.rollout.update(prompts_per_step=16, n=4, max_new_tokens=8, max_prompt_len=16)
    c.reward.name = "ground_truth"
    c.algo.mini_batch_prompts = 16
    c.optim.lr = 3e-3
    c.train.update(steps=10, checkpoint_every=5)
    c.val.update(every=5, k=4, temperature=0.6, top_p=0.95)
    return c
