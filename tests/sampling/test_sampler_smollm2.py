"""Greedy parity with transformers ``generate`` on the real SmolLM2-135M-Instruct weights (slow)."""

import jax
import numpy as np
import pytest

from sampler_fixtures import hf_greedy

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("unroll", [False, True], ids=["scanned", "unrolled_out_major"])
def test_smollm2_greedy_matches_transformers_generate(unroll):
    torch = pytest.importorskip("torch")
    import transformers

    from urlvr_jax.model import hf_io, smollm2
    from urlvr_jax.model.tokenizer import encode_batch, load_tokenizer
    from urlvr_jax.sampling.sampler import Sampler
    from urlvr_jax.sampling.strategies import SamplingConfig

    path = smollm2.hf_dir()
    cfg, params = hf_io.load_hf(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    tokenizer = load_tokenizer(path)
    tokens, mask = encode_batch(tokenizer, ["What is 12 + 30?", "Name a colour.", "The capital of France is"])
    assert not mask.all()  # prompts of different lengths, left-padded
    new = 16
    eos = cfg.eos_token_ids[0]
    sampler = Sampler(cfg, SamplingConfig(max_new_tokens=new, temperature=0.0, stop_token_ids=(eos,),
                                          pad_id=0), unroll_layers=unroll, out_major_rows=8)
    rollout = jax.tree.map(np.asarray, sampler.generate(params, tokens, mask, jax.random.key(0)))
    expected = hf_greedy(model, tokens, mask, new, eos_token_id=eos)
    ours = np.where(rollout.mask, rollout.tokens, 0)
    np.testing.assert_array_equal(ours, expected)  # transformers pads finished rows with pad_token_id=0
