"""How the prompt format and the operand range set SmolLM2-135M-Instruct's answer rate and accuracy (the screen
behind ``configs/smollm2_cpu.py``; transformers + torch on the converted model, 2 threads).

    python -m urlvr_jax.model.smollm2      # once
    python benchmarks/smollm2_prompt_screen.py [--kinds add20,add2,add1,mul12] [--formats prefill,plain,fewshot]
        [--problems 24] [--temperature 1.0] [--new-tokens 6]

Formats: ``plain`` ("What is a + b?", the answer = the integer after the response's first "="), ``fewshot`` (two
worked turns answering ``\\boxed{n}``; the answer = the last ``\\boxed{}`` integer), ``prefill`` (the assistant's
turn starts with "a + b =", the answer = the integer the response starts with: arithmetic ``fmt=equation``).
Per kind and format: answer rate and accuracy of ``8`` samples per problem, majority accuracy, greedy accuracy.
"""

import argparse
import random
import re
import time
from collections import Counter

KINDS = {  # name -> (first operand range, second operand range, operator)
    "add1": ((1, 9), (1, 9), "+"), "add20": ((1, 20), (1, 20), "+"), "add21": ((10, 99), (1, 9), "+"),
    "add2": ((10, 99), (1, 99), "+"), "mul11": ((2, 9), (2, 9), "*"), "mul12": ((2, 9), (2, 19), "*"),
    "sub2": ((10, 99), (1, 9), "-"),
}
FEWSHOT = [("3 + 4", 7), ("12 * 3", 36)]


def prompt(tok, q: str, fmt: str) -> str:
    if fmt == "fewshot":
        msgs = []
        for shot, value in FEWSHOT:
            msgs += [{"role": "user", "content": f"What is {shot}? Answer only with \\boxed{{}}."},
                     {"role": "assistant", "content": f"\\boxed{{{value}}}"}]
        msgs.append({"role": "user", "content": f"What is {q}? Answer only with \\boxed{{}}."})
    else:
        msgs = [{"role": "user", "content": f"What is {q}?"}]
    text = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    return text + (f"{q} =" if fmt == "prefill" else "")


def extract(text: str, fmt: str) -> str | None:
    if fmt == "fewshot":
        found = re.findall(r"\\boxed\{(-?\d+)\}", text)
        return found[-1] if found else None
    if fmt == "plain":
        parts = text.split("=")
        text = parts[1] if len(parts) > 1 else ""
    match = re.match(r"\s*(-?\d+)(?![0-9]|[.,][0-9])", text)
    return match.group(1) if match else None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kinds", default="add20,add2,add1,mul12")
    p.add_argument("--formats", default="prefill,plain,fewshot")
    p.add_argument("--problems", type=int, default=24)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--new-tokens", type=int, default=6)
    args = p.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from urlvr_jax.model.smollm2 import hf_dir

    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(hf_dir())
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(hf_dir()).eval()
    for kind in args.kinds.split(","):
        (a0, a1), (b0, b1), op = KINDS[kind]
        rng = random.Random(0)
        items = [(x, y) for x, y in ((rng.randint(a0, a1), rng.randint(b0, b1)) for _ in range(args.problems))]
        items = [(f"{x} {op} {y}", str(eval(f"{x}{op}{y}"))) for x, y in items]  # noqa: S307 - our own digits
        for fmt in args.formats.split(","):
            enc = tok([prompt(tok, q, fmt) for q, _ in items], return_tensors="pt", padding=True)
            t0 = time.time()
            with torch.no_grad():
                out = model.generate(**enc, do_sample=True, temperature=args.temperature, top_p=1.0,
                                     max_new_tokens=args.new_tokens, num_return_sequences=8,
                                     pad_token_id=tok.eos_token_id)
                greedy = model.generate(**enc, do_sample=False, max_new_tokens=args.new_tokens,
                                        pad_token_id=tok.eos_token_id)
            n = enc.input_ids.shape[1]
            samples = [extract(t, fmt) for t in tok.batch_decode(out[:, n:], skip_special_tokens=True)]
            greedy = [extract(t, fmt) for t in tok.batch_decode(greedy[:, n:], skip_special_tokens=True)]
            answered = sum(s is not None for s in samples) / len(samples)
            right = sum(s == items[i // 8][1] for i, s in enumerate(samples)) / len(samples)
            votes = [Counter(s for s in samples[i * 8:(i + 1) * 8] if s).most_common(1) for i in range(len(items))]
            maj = sum(bool(v) and v[0][0] == a for v, (_, a) in zip(votes, items)) / len(items)
            gre = sum(g == a for g, (_, a) in zip(greedy, items)) / len(items)
            print(f"{kind:6s} {fmt:8s} answer rate {answered:.2f}  accuracy {right:.2f}  majority {maj:.2f}  "
                  f"greedy {gre:.2f}  ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
