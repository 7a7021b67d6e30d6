"""Every field of a URLVR run, with the paper's defaults where the paper gives them.

Experiment configs in ``configs/`` call ``urlvr_jax.config_base.get_config()`` and change fields; any field can be overridden on the command
line: ``python -m urlvr_jax.train --config NAME rollout.n=16 algo.kl_coef=0.005``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = "base"
    c.seed = 0
    c.run_dir = "runs/base"  # metrics.jsonl, tb/, checkpoints/, plots, config.json
    c.mesh = ""  # "data:2,fsdp:2,tensor:2" | "2,2,2" | "" (every device on fsdp)
    c.plugins = ""  # "mypkg.rewards,path/to/mine.py": modules imported before the run (see urlvr_jax/plugins.py)

    # Policy (and reference) model: the same code, different params.
    c.model = ml_collections.ConfigDict(dict(
        source="init",  # init (random, shapes below) | hf (path: HF dir or .gguf) | smollm2
        path="",
        dtype="float32",  # compute dtype: float32 | bfloat16 (the LM head is always float32)
        param_dtype="float32",
        attention_chunk=0,  # > 0: attention over query chunks (memory O(chunk * length)) for long sequences
        attention="auto",  # no-cache forwards: auto (by platform) | reference (CPU) | splash (TPU) | cudnn (GPU)
        kv_layout="auto",  # KV cache: auto (head_major on CPU, sequence_major on TPU/GPU) | head_major | sequence_major
        # Shapes for source=init (vocab_size 0: the tokenizer's size).
        family="llama", vocab_size=0, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
        num_kv_heads=2, head_dim=16, rope_theta=10000.0, max_position_embeddings=512, tie_embeddings=True,
    ))
    c.tokenizer = ml_collections.ConfigDict(dict(
        kind="hf",  # hf (from model.path or tokenizer.path) | char (the tiny character tokenizer)
        path="",
        add_special_tokens=False,  # True for the char tokenizer (prepends BOS)
    ))

    # Prompts: a synthetic task or a local dataset.
    c.data = ml_collections.ConfigDict(dict(
        task="arithmetic",  # a registered task (arithmetic | countdown) or "" to use data.dataset
        task_options=ml_collections.ConfigDict(dict(fmt="boxed")),
        dataset="",  # dapo17k | math500 | aime24 | aime25 | amc23 | countdown (files under $URLVR_DATA_DIR)
        split="",  # "" = the dataset's default split
        fields="",  # field names of other file layouts, tried first: "question=Problem,answer=Answer" (roles: question,
        # answer, solution; Countdown: numbers, target); for data.dataset and data.val_dataset
        pool_size=0,  # >0: a fixed pool of this many generated prompts, cycled in reshuffled epochs; 0: stream
        shuffle=True,
        template="boxed",  # boxed | countdown | raw
        chat_template="auto",  # auto | true | false
        val_task_options=ml_collections.ConfigDict(),  # overrides of task_options for validation prompts
        val_dataset="",  # a dataset for validation ("" = generated from the task)
        val_split="",
        val_size=64,
        val_seed=10_000,
    ))

    c.rollout = ml_collections.ConfigDict(dict(
        prompts_per_step=64, n=8, n_votes=0,  # n_votes > n: vote on n_votes, train on the first n (TTRL)
        temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=64, max_prompt_len=256,
        max_rows_per_chunk=0,  # > 0: sample at most this many rows at once (bounds the KV cache; plan mode picks it)
        # static: decode a batch until its longest row stops; continuous: decode slots refilled as rows stop
        # (sampling.continuous.ContinuousSampler); auto: continuous from 16 new tokens on, where it measured faster
        # (benchmarks/lengths_bench.py), static below (the CPU toy's 4-token answers: no gain, a longer compile)
        batching="auto",
        slots=0,  # continuous decode slots; 0: an eighth of the rollout rows (the fastest share measured on CPU)
    ))
    c.reward = ml_collections.ConfigDict(dict(
        name="majority_vote",  # any registered reward, or "a:0.5,b:0.5" for a weighted sum
        options=ml_collections.ConfigDict(),  # {reward name: {option: value}}
        teacher_ema=0.01,  # co_rewarding_teacher: teacher <- a * policy + (1 - a) * teacher after each step
        verify_temperature=0.5, verify_max_new_tokens=64,  # self_verify rollouts (never trained on)
    ))
    c.algo = ml_collections.ConfigDict(dict(
        advantage="grpo", std_eps=1e-6,
        policy_loss="vanilla", eps_low=0.2, eps_high=0.2, dual_clip_c=0.0,  # 0: no dual clip
        loss_agg_mode="token-mean", kl_coef=0.0, kl_estimator="k3", entropy_coef=0.0,
        ppo_epochs=1, mini_batch_prompts=64, micro_batch_rollouts=0,  # 0: no micro-batching
        old_logprobs="auto",  # auto (current if one update per batch, else recompute) | recompute | sampler
        report_ref_kl=True,  # run the reference forward for the KL metric even when kl_coef == 0
        # a peer's objective: "" (the fields below as set) | verl | trl: sets std_eps, kl_ratio, count_empty_rows and
        # normalize_per_micro_batch (urlvr_jax/rl/conventions.py; key=value overrides of those fields win)
        conventions="",
        kl_ratio=False,  # KL term times the importance ratio (TRL use_bias_correction_kl)
        count_empty_rows=False,  # seq-mean losses divide by every row, empty ones too (TRL)
        normalize_per_micro_batch=False,  # each micro-batch's loss normalised alone, then averaged (TRL bnpo)
    ))
    c.optim = ml_collections.ConfigDict(dict(
        lr=1e-6, schedule="constant", warmup_ratio=0.0, weight_decay=0.01, grad_clip=1.0, b1=0.9, b2=0.999,
    ))
    c.train = ml_collections.ConfigDict(dict(
        steps=100, checkpoint_every=10, keep_checkpoints=3, max_nonfinite_steps=3, remat=False,
        # an update that leaves the params' global L2 norm above this (or any param / optimizer value non-finite)
        # is rolled back and counted in train/rolled_back_updates (0: no norm bound)
        max_param_norm=1e6,
        logprob_chunk=0, export_hf=False, progress=True,
        # where metrics go, comma-separated: jsonl (run_dir/metrics.jsonl, always written) | tensorboard (run_dir/tb)
        # | wandb (Weights & Biases: pip install 'urlvr_jax[wandb]'; WANDB_PROJECT, WANDB_MODE=offline, WANDB_DIR)
        loggers="tensorboard,jsonl",
        # unroll the layer loop in the train step and the samplers' decode (per-layer weights and KV caches):
        # faster on CPU at small sizes (benchmarks/grpo_bench.py --no-unroll compares); compile time grows with depth
        unroll_layers=False,
        # run each prompt once for its rollout.n rollouts in the update's forward and log-prob passes (the result
        # equals one forward per rollout; false: one per rollout, for comparison)
        share_prompt=True,
        collapse_threshold=0.01, stop_at_collapse=False,  # Model Collapse Step: reward accuracy < threshold
        # float32 matmuls (all of them in a float32 model; the LM head in bfloat16 ones), set for the whole process
        # at start-up: highest (full float32: as on CPU, as transformers) | high (3 bfloat16 passes on TPU, TF32 on GPU)
        # | tensorfloat32 | bfloat16 | default
        # (the backend's: TF32 on recent GPUs, one bfloat16 pass on TPU, full float32 on CPU)
        matmul_precision="highest",
    ))
    c.val = ml_collections.ConfigDict(dict(every=20, k=8, temperature=0.6, top_p=0.95, max_new_tokens=0))
    return c
