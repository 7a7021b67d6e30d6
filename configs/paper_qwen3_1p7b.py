"""Paper scale: Qwen3-1.7B-Base on DAPO-Math-17k with majority-vote URLVR (no KL by default).

From the paper: 64 prompts x 8 rollouts per step, lr 1e-6, rollout temperature 1.0, max response 7168
tokens, validation at temperature 0.6 / top-p 0.95, no KL term. Our choices (not from the paper) are
marked "ours": prompt budget, validation set, micro-batching, remat and the logprob chunk, which keep the
train step inside one accelerator's memory.

Presets name a target's mesh: ``--config paper_qwen3_1p7b:8x80gb`` (``data:2,fsdp:2,tensor:2``, 8 x 80 GB GPUs)
and ``--config paper_qwen3_1p7b:v5e-64`` (``fsdp:16,tensor:4``); no preset puts every device on fsdp. Plan mode
said, for the config as committed:

    python -m urlvr_jax.plan --config paper_qwen3_1p7b:8x80gb --devices 8 --device-memory 80GB
        # CPU compiler: train step peak 45.8 GiB, rollout 30.2 GiB of 74.5: FITS
    python -m urlvr_jax.plan --config paper_qwen3_1p7b:v5e-64 --topology v5e:8x8
        # TPU compiler: see docs/tpu_decode.md and launch/README.md

(The rollout compiled 86.7 GiB of CPU temporaries and 15.2 GiB on v5e before its refills and shrinks ran per batch
shard: docs/tpu_decode.md.) ``--suggest`` picks ``rollout.slots``, ``model.attention_chunk`` and the micro-batch
for other memory sizes; none of them changes the results beyond float rounding. On v5e-64, fsdp:32,tensor:2
compiled a 24 GiB train step on CPU against 8.7 GiB with tensor:4.

``model.path`` names a preset that the plan mode knows without weights; for training set it to a local
Hugging Face directory holding the downloaded weights: ``model.path=/data/Qwen3-1.7B-Base``.
"""

from urlvr_jax.config_base import get_config as base


MESHES = {"": "", "8x80gb": "data:2,fsdp:2,tensor:2", "v5e-64": "fsdp:16,tensor:4"}  # preset -> mesh


def get_config(preset: str = ""):
    if preset not in MESHES:
        raise ValueError(f"config paper_qwen3_1p7b:{preset}: unknown preset; presets are "
                         f"{', '.join(repr(p) for p in MESHES)}")
    c = base()
    c.name = "paper_qwen3_1p7b"
    c.run_dir = "runs/paper_qwen3_1p7b"
    c.mesh = MESHES[preset]  # "": every device on fsdp
    c.model.update(source="hf", path="Qwen/Qwen3-1.7B-Base", dtype="bfloat16",
                   param_dtype="float32")  # float32 master weights: bf16 would round away 1e-6 updates
    c.tokenizer.update(kind="hf", path="")  # the tokenizer of model.path
    c.data.update(task="", dataset="dapo17k", template="boxed", chat_template="auto",
                  val_dataset="aime24", val_size=30)  # validation set: ours
    c.rollout.update(prompts_per_step=64, n=8, temperature=1.0, top_p=1.0, top_k=0,
                     max_new_tokens=7168, max_prompt_len=1024)  # prompt budget: ours
    c.reward.name = "majority_vote"
    c.algo.update(kl_coef=0.0, report_ref_kl=False,  # no reference copy / forward unless asked for
                  mini_batch_prompts=64, micro_batch_rollouts=16,  # micro-batching: ours (memory only)
                  old_logprobs="auto")  # one update per step: pi_old = stop_gradient(pi), no extra pass
    c.optim.update(lr=1e-6, schedule="constant", warmup_ratio=0.0, weight_decay=0.01, grad_clip=1.0)
    c.train.update(steps=300, checkpoint_every=20, keep_checkpoints=2, remat=True, logprob_chunk=1024)
    c.val.update(every=20, k=8, temperature=0.6, top_p=0.95, max_new_tokens=0)  # 0: rollout.max_new_tokens
    return c
