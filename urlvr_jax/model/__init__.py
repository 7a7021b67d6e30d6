"""The policy model: a pure-JAX decoder (Llama / Qwen2 / Qwen3 / Mistral layouts) and its Hugging Face I/O.

Names are imported lazily (see docs/api.md for each one's contract).
"""

from urlvr_jax._exports import lazy_exports

_EXPORTS = {
    "ModelConfig": "config", "init_params": "transformer", "forward": "transformer",
    "load_hf": "hf_io", "save_hf": "hf_io",
    "load_tokenizer": "tokenizer", "encode_batch": "tokenizer", "decode_completions": "tokenizer",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
