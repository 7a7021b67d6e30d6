"""What HF import can and cannot model: refusals name the config.json field; Mistral without a sliding window
loads as Llama with transformers' logits; export writes only what it computes."""

import jax.numpy as jnp
import numpy as np
import pytest
import transformers

from hf_fixtures import FAMILY_CONFIGS, TINY, hf_logits, tiny_hf_model
from urlvr_jax.model import hf_io, transformer
from urlvr_jax.model.config import ModelConfig


def _saved(tmp_path, family, config):
    model = tiny_hf_model(family, config=config)
    model.save_pretrained(str(tmp_path))
    return model, str(tmp_path)


def _config(family, **changes):
    config = FAMILY_CONFIGS[family]()
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def _assert_same_logits(model, path, family):
    cfg, params = hf_io.load_hf(path)
    assert cfg.family == family
    rng = np.random.default_rng(0)
    tokens, mask = rng.integers(0, TINY["vocab_size"], (3, 20)), np.ones((3, 20), bool)
    mask[1, :5] = mask[2, :13] = False  # left padding
    ours, _ = transformer.forward(params, jnp.asarray(tokens), token_mask=jnp.asarray(mask), cfg=cfg)
    np.testing.assert_allclose(np.asarray(ours)[mask], hf_logits(model, tokens, mask)[mask], atol=1e-4, rtol=0)
    return cfg, params


QWEN_WINDOW = dict(use_sliding_window=True, sliding_window=8, max_window_layers=1)
REFUSED = [
    ("qwen2", transformers.Qwen2Config(**TINY, **QWEN_WINDOW),
     r"config.json field use_sliding_window=true is not supported: sliding-window attention \(sliding_window=8 < "
     r"max_position_embeddings=256, on layers \[1\]\) is not implemented"),
    ("qwen3", transformers.Qwen3Config(**TINY, head_dim=24, **QWEN_WINDOW),
     r"field use_sliding_window=true .*on layers \[1\]"),
    ("mistral", transformers.MistralConfig(**TINY, sliding_window=8),
     r"config.json field sliding_window=8 is not supported: sliding-window attention .*on layers \[0, 1\]"),
    ("llama", _config("llama", hidden_act="gelu"),
     r"config.json field hidden_act='gelu' is not supported: the llama family computes SwiGLU with silu only"),
    ("qwen2", _config("qwen2", hidden_act="gelu_pytorch_tanh"), r"field hidden_act='gelu_pytorch_tanh'"),
    ("llama", _config("llama", attention_bias=True),
     r"config.json field attention_bias=true is not supported for llama: it adds biases to q/k/v/o_proj"),
    ("qwen3", _config("qwen3", attention_bias=True), r"field attention_bias=true is not supported for qwen3"),
    ("llama", _config("llama", mlp_bias=True),
     r"config.json field mlp_bias=true is not supported for llama: the MLP has no biases"),
]


@pytest.mark.parametrize("family,config,message", REFUSED, ids=[f"{r[0]}-{i}" for i, r in enumerate(REFUSED)])
def test_import_refuses_what_it_cannot_model(tmp_path, family, config, message):
    _, path = _saved(tmp_path, family, config)
    with pytest.raises(ValueError, match=message):
        hf_io.load_hf(path)


@pytest.mark.parametrize("changes", [
    dict(use_sliding_window=True, sliding_window=8, max_window_layers=2),  # no layer at or above 2 of 2
    dict(use_sliding_window=True, sliding_window=256, max_window_layers=0),  # window covers every position
    dict(use_sliding_window=False, sliding_window=8, max_window_layers=0),  # the window is switched off
])
def test_qwen2_windows_that_never_apply_import_with_equal_logits(tmp_path, changes):
    model, path = _saved(tmp_path, "qwen2", transformers.Qwen2Config(**TINY, rope_theta=1e6, **changes))
    _assert_same_logits(model, path, "qwen2")


def test_mistral_without_sliding_window_is_llama_and_exports_as_llama(tmp_path):
    model, path = _saved(tmp_path / "mistral", "mistral",
                         transformers.MistralConfig(**TINY, sliding_window=None, rope_theta=2e5))
    assert model.config.model_type == "mistral" and model.config.sliding_window is None
    cfg, params = _assert_same_logits(model, path, "llama")
    assert (cfg.rope_theta, cfg.tie_embeddings, cfg.attention_bias) == (2e5, False, False)
    out = hf_io.save_hf(params, cfg, str(tmp_path / "exported"))
    again = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(again).__name__ == "LlamaForCausalLM" and again.config.hidden_act == "silu"
    tokens, mask = np.arange(1, 13)[None], np.ones((1, 12), bool)
    np.testing.assert_allclose(hf_logits(again, tokens, mask), hf_logits(model, tokens, mask), atol=1e-5, rtol=0)


def test_export_refuses_configs_without_a_hf_equivalent():
    with pytest.raises(ValueError, match=r"family='llama', attention_bias=True, qk_norm=False\) has no Hugging Face"):
        ModelConfig("llama", 10, 8, 8, 1, 2, 2, 4, attention_bias=True).to_hf()
    with pytest.raises(ValueError, match=r"family='qwen2', attention_bias=False"):
        ModelConfig("qwen2", 10, 8, 8, 1, 2, 2, 4).to_hf()
    assert ModelConfig("qwen3", 10, 8, 8, 1, 2, 2, 4, qk_norm=True).to_hf()["hidden_act"] == "silu"
