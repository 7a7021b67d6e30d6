"""Tiny random transformers models built offline with ``from_config``, one per family."""

from __future__ import annotations

import torch
import transformers

TINY = dict(vocab_size=97, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)

FAMILY_CONFIGS = {
    # GQA (4 heads over 2 kv heads), tied embeddings, non-default theta, Llama-3 rope scaling.
    "llama": lambda: transformers.LlamaConfig(
        **TINY, rope_theta=50000.0, tie_word_embeddings=True, rms_norm_eps=1e-5,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
    # q/k/v biases, untied embeddings.
    "qwen2": lambda: transformers.Qwen2Config(**TINY, rope_theta=1e6, tie_word_embeddings=False),
    # per-head q/k norm, explicit head_dim different from hidden/heads, untied.
    "qwen3": lambda: transformers.Qwen3Config(**TINY, head_dim=24, rope_theta=123456.0, tie_word_embeddings=False),
}


def tiny_hf_model(family: str, seed: int = 0, config=None):
    """A float32 transformers model with random weights (biases and norms randomised too); ``config`` replaces
    the family's tiny config."""
    torch.manual_seed(seed)
    config = config or FAMILY_CONFIGS[family]()
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def hf_logits(model, tokens, mask):
    """Logits of a transformers model on a left-padded batch, positions counted from each row's first token."""
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    mask = torch.as_tensor(mask, dtype=torch.long)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        return model(input_ids=tokens, attention_mask=mask, position_ids=positions).logits.float().numpy()
