"""Generation throughput: r1model's BuiltinEngine vs transformers' generate on the same weights.

Tiny preset (random weights) saved as an HF checkpoint and loaded by DeepseekV3ForCausalLM; batch 64
ragged prompts, 128 new tokens each, sampling at temperature 1 (no early stop on either side, so both
produce exactly 64 x 128 tokens), 1 thread, best of 3 interleaved runs each. Last line: the tokens/s ratio engine / transformers.
"""
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)

from transformers import DeepseekV3ForCausalLM  # noqa: E402

from r1model.model import DeepSeekV3, ModelConfig, R1Tokenizer  # noqa: E402
from r1model.rollout import BuiltinEngine, SamplingParams  # noqa: E402
from r1model.rollout.engine import left_pad  # noqa: E402

BATCH, NEW_TOKENS, REPEATS = 64, 128, 3


def main() -> None:
    torch.manual_seed(0)
    tok = R1Tokenizer.build()
    model = DeepSeekV3(ModelConfig.preset("tiny")).eval()
    prompts = [tok.encode(f"User: {1000 + 37 * i}+{5 * i * i}\nAssistant: ") for i in range(BATCH)]
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder, tokenizer=tok)
        hf = DeepseekV3ForCausalLM.from_pretrained(folder).eval()

    engine = BuiltinEngine(model, tok)
    params = SamplingParams(temperature=1.0, max_new_tokens=NEW_TOKENS, seed=0, ignore_eos=True)
    ids, mask = left_pad(prompts, tok.pad_id, "cpu")
    hf.generation_config.eos_token_id = None
    hf.generation_config.pad_token_id = tok.pad_id
    engine.generate(prompts[:4], SamplingParams(max_new_tokens=4, seed=0))  # warm-up
    with torch.inference_mode():
        hf.generate(ids[:4], attention_mask=mask[:4], max_new_tokens=4, do_sample=True)  # warm-up
    ours_s = hf_s = float("inf")
    for _ in range(REPEATS):  # interleaved, best of REPEATS each: the machine is shared
        start = time.perf_counter()
        ours = engine.generate(prompts, params)
        ours_s = min(ours_s, time.perf_counter() - start)
        with torch.inference_mode():
            start = time.perf_counter()
            out = hf.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                              do_sample=True, temperature=1.0, top_p=1.0, top_k=0)
            hf_s = min(hf_s, time.perf_counter() - start)
    ours_tokens = sum(len(c.token_ids) for c in ours)
    hf_tokens = (out.shape[1] - ids.shape[1]) * BATCH

    ours_tps, hf_tps = ours_tokens / ours_s, hf_tokens / hf_s
    print(f"engine: {ours_tokens} tokens in {ours_s:.2f} s = {ours_tps:.0f} tokens/s")
    print(f"transformers {__import__('transformers').__version__} generate: {hf_tokens} tokens in {hf_s:.2f} s "
          f"= {hf_tps:.0f} tokens/s")
    print(f"generation_speedup_vs_hf={ours_tps / hf_tps:.2f}")


if __name__ == "__main__":
    main()
