"""Write (and with --execute, run and save with outputs) notebooks/api_tour.ipynb: the functional API end to end.

    python notebooks/make_api_tour.py --execute
"""

from __future__ import annotations

import argparse

from nbtools import execute, notebook, write

NAME = "api_tour.ipynb"

CELLS = [
    ("md", """
# A tour of the functional API

Every piece of the URLVR loop is a function you can call on its own: the model forward, the sampler, the rewards,
the advantages, the GRPO loss and the train step. This notebook composes them by hand for one GRPO step of a tiny
random model on 1-digit arithmetic, then registers a reward of its own and trains with it through a config, as
`python -m urlvr_jax.train` would. Everything runs on a CPU in under a minute; the page
[docs/api.md](../docs/api.md) lists each function's contract.
"""),
    ("code", """
import tempfile, warnings
from collections import Counter

warnings.filterwarnings("ignore", message="IProgress not found")  # (tqdm in a notebook without ipywidgets)

import jax, jax.numpy as jnp, numpy as np, optax

from urlvr_jax.model import ModelConfig, init_params, encode_batch, decode_completions
from urlvr_jax.sampling import Sampler, SamplingConfig, completion_stats
from urlvr_jax.rewards import RewardBatch, get_reward, register_reward, self_certainty_score, normalize_answer
from urlvr_jax.rl import compute_advantages, GRPOLossConfig, grpo_loss_terms, finalize, make_optimizer, train
from urlvr_jax.tasks import get_task, make_pool, make_char_tokenizer
from urlvr_jax.utils import load_config, apply_overrides, read_metrics
"""),
    ("md", """
## 1. A tiny model and N rollouts per prompt

The character tokenizer and a 2-layer Llama-style model from a random init (scaled up, so that its next-token
distributions are peaked and rollouts of one prompt sometimes agree). `Sampler.generate` samples `N`
completions of each left-padded prompt (one jitted prefill + decode loop) and returns a `Rollout`: tokens and mask
`[B, T]` with `B = prompts x N`, the prompt each row answers (`group_ids`), and per-token statistics of the sampling
distribution (`logprobs`, `entropy`, `self_certainty`, `margin`), which the certainty rewards read.
"""),
    ("code", """
tok = make_char_tokenizer()
cfg = ModelConfig(family="llama", vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_layers=2,
                  num_heads=2, num_kv_heads=1, head_dim=16, max_position_embeddings=64, tie_embeddings=True)
params = init_params(cfg, jax.random.key(0), scale=1.0)

P, N = 4, 8  # prompts, rollouts per prompt
examples = make_pool(get_task("arithmetic", fmt="compact", digits=1, min_ops=1, max_ops=1), P, seed=0)
prompt_tokens, prompt_mask = encode_batch(tok, [ex.prompt for ex in examples], add_special_tokens=True)
sampler = Sampler(cfg, SamplingConfig(max_new_tokens=4, temperature=1.0, pad_id=tok.pad_token_id,
                                      stop_token_ids=(tok.eos_token_id,)))
rollout = sampler.generate(params, prompt_tokens, prompt_mask, jax.random.key(1), num_samples=N)
texts = decode_completions(tok, np.asarray(rollout.tokens), np.asarray(rollout.mask))
print({name: x.shape for name, x in rollout.stats().items()}, "group_ids", rollout.group_ids[:10])
print(examples[0].prompt, "->", texts[:N])
"""),
    ("md", """
## 2. Rewards by hand: certainty and majority vote

The self-certainty reward is the mean over a completion's tokens of `KL(U || pi_t) + log V`
(`self_certainty_score`, jitted). Majority vote extracts each completion's answer, takes the most common answer of
its prompt's group as the pseudo-label and rewards agreement; the registered `majority_vote` does the same with
equivalence-aware grading, on a `RewardBatch` built from the rollout.
"""),
    ("code", """
certainty = np.asarray(self_certainty_score(rollout.self_certainty, rollout.mask))  # [B]

answers = [normalize_answer(t.strip()) or None for t in texts]  # compact arithmetic: the answer is the text
groups = np.asarray(rollout.group_ids)
by_hand = np.zeros(len(texts), np.float32)
for g in np.unique(groups):
    rows = np.flatnonzero(groups == g)
    votes = Counter(answers[i] for i in rows if answers[i] is not None)
    label = votes.most_common(1)[0][0] if votes else None
    by_hand[rows] = [label is not None and answers[i] == label for i in rows]

batch = RewardBatch.from_rollout(rollout, texts, extract_fn=lambda t: t.strip() or None)
registered = get_reward("majority_vote")(batch)
print("self-certainty", certainty.round(2)[:N])
print("majority vote by hand ", by_hand.astype(int))
print("majority_vote (graded)", registered.astype(int))
"""),
    ("md", """
## 3. Group advantages, the GRPO loss and its gradient, one optimizer step

`compute_advantages("grpo", r, group_ids, num_groups)` gives `(r - mean_g) / (std_g + eps)`; the loss recomputes
the completions' log-probs under the current params (`completion_stats`), and `grpo_loss_terms` returns every term as
a `(sum, denominator)` pair (additive over micro-batches); `finalize` divides. With `old_logprobs=None` the ratio is
`stop_gradient`-ed to 1 (one update per rollout batch), so the gradient is the advantage-weighted score function:
one AdamW step raises the log-probability of the completions with a positive advantage and lowers the others.
"""),
    ("code", """
advantages = compute_advantages("grpo", jnp.asarray(by_hand), rollout.group_ids, P)
loss_cfg = GRPOLossConfig(loss_agg_mode="token-mean")

@jax.jit
def logprobs(p):  # [B, T] log-probs of the sampled tokens under params p
    return completion_stats(p, rollout.prompt_tokens, rollout.prompt_mask, rollout.tokens, rollout.mask,
                            cfg=cfg)["logprobs"]

def loss_fn(p):
    return finalize(grpo_loss_terms(logprobs(p), None, advantages, rollout.mask, loss_cfg))["loss"]

loss, grads = jax.jit(jax.value_and_grad(loss_fn))(params)
optimizer = make_optimizer(1e-3, total_steps=1, grad_clip=1.0)
updates, opt_state = optimizer.update(grads, optimizer.init(params), params)
new_params = optax.apply_updates(params, updates)
change = np.asarray((logprobs(new_params) - logprobs(params)).sum(axis=1))  # [B] sequence log-prob change
adv = np.asarray(advantages)
print(f"advantages {adv.round(2)[:N]}")
print(f"loss {float(loss):+.4f}, |grad| {float(optax.global_norm(grads)):.3f}; after one step, sequence log-prob "
      f"change {change[adv > 0].mean():+.3f} where A > 0, {change[adv < 0].mean():+.3f} where A < 0")
"""),
    ("md", """
## 4. A reward of your own, trained through a config

A reward is `fn(batch: RewardBatch, **options) -> [B] float32`. Registered under a name, it is a valid
`reward.name`: here majority vote minus a penalty per generated token. Saved in a module (`mypkg/rewards.py`), the
same registration works from the command line with
`python -m urlvr_jax.train --config tiny_gt --plugin mypkg.rewards reward.name=short_majority`.
"""),
    ("code", """
@register_reward("short_majority", kind="ensemble", replace=True)
def short_majority(batch, alpha=0.02):
    \"\"\"Majority vote minus alpha per response token.\"\"\"
    return get_reward("majority_vote")(batch) - alpha * batch.mask.sum(axis=1).astype(np.float32)

run_dir = tempfile.mkdtemp()
warnings.filterwarnings("ignore", message="plot skipped")  # data.val_size=0: no validation curves to plot
config = apply_overrides(load_config("tiny_gt"), [
    "reward.name=short_majority", "train.steps=3", "rollout.prompts_per_step=8", "algo.mini_batch_prompts=8",
    "rollout.max_new_tokens=4", "data.val_size=0", "algo.report_ref_kl=false", "train.progress=false",
    f"run_dir={run_dir}"])
result = train(config)
for r in read_metrics(run_dir):
    if "train/proxy_reward" in r:
        print(f"step {r['step']}: short_majority {r['train/proxy_reward']:+.3f}, "
              f"ground truth {r['train/ground_truth_reward']:.3f}, response length {r['train/response_length']:.2f}")
"""),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--execute", action="store_true", help="run it and save it with its outputs")
    args = parser.parse_args()
    nb = notebook(CELLS)
    print(write(execute(nb, quick=False) if args.execute else nb, NAME))


if __name__ == "__main__":
    main()
