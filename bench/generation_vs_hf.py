"""Generation throughput: our rollout engine vs transformers' generate on the same weights.

    OMP_NUM_THREADS=1 .venv/bin/python bench/generation_vs_hf.py                      # tiny DeepSeek-V3
    OMP_NUM_THREADS=1 .venv/bin/python bench/generation_vs_hf.py --model qwen2-tiny   # dense Qwen2 fixture

--model tiny (default): the tiny preset (random weights) saved as an HF checkpoint and loaded by
DeepseekV3ForCausalLM; ours is BuiltinEngine (absorbed-MLA cache).
--model qwen2-tiny: the test fixture r1model.testing.fixtures.make_tiny_hf_model(…, "qwen2") built into
bench/out/qwen2_tiny (random weights, byte-level BPE tokenizer); ours is HFEngine (r1model/generation/hf_engine.py,
the trainer's engine for any transformers causal LM) on HFCausalLM, the peer the same folder's
Qwen2ForCausalLM.generate. After timing, the engine's sampled-token logprobs are checked against the
teacher-forced logprobs of the same completions (the GRPO update's path) — they must agree to 1e-4.

Both: batch 64 ragged prompts, 128 new tokens each, sampling at temperature 1 (no early stop on either
side, so both produce exactly 64 x 128 tokens), 1 thread, best of 3 interleaved runs each.
Last line: the tokens/s ratio engine / transformers.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import torch  # noqa: E402

torch.set_num_threads(1)

from r1model.generation import SamplingParams  # noqa: E402
from r1model.generation.engine import left_pad  # noqa: E402

from _generation import addition_prompts, hf_sample, load_hf, qwen2_folder  # noqa: E402

BATCH, NEW_TOKENS, REPEATS = 64, 128, 3


def tiny_deepseek():
    """(engine, transformers model, prompts, pad id) for the tiny DeepSeek-V3 preset."""
    from transformers import DeepseekV3ForCausalLM

    from r1model.model import DeepSeekV3, ModelConfig, R1Tokenizer
    from r1model.generation import BuiltinEngine

    torch.manual_seed(0)
    tok = R1Tokenizer.build()
    model = DeepSeekV3(ModelConfig.preset("tiny")).eval()
    prompts = [tok.encode(f"User: {1000 + 37 * i}+{5 * i * i}\nAssistant: ") for i in range(BATCH)]
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder, tokenizer=tok)
        hf = DeepseekV3ForCausalLM.from_pretrained(folder).eval()
    return BuiltinEngine(model, tok), hf, prompts, tok.pad_id, model


def qwen2_tiny(out: Path):
    """(engine, transformers model, prompts, pad id) for the Qwen2 test fixture, both loaded from one folder."""
    from r1model.train import modeling

    folder = qwen2_folder(out, "tiny")
    model, tok = modeling.load_model(folder, torch.device("cpu"))
    model.eval()
    return modeling.make_engine(model, tok), load_hf(folder), addition_prompts(tok, BATCH), tok.pad_id, model


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=("tiny", "qwen2-tiny"), default="tiny")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    engine, hf, prompts, pad_id, model = tiny_deepseek() if args.model == "tiny" else qwen2_tiny(args.out)
    params = SamplingParams(temperature=1.0, max_new_tokens=NEW_TOKENS, seed=0, ignore_eos=True)
    ids, mask = left_pad(prompts, pad_id, "cpu")
    engine.generate(prompts[:4], SamplingParams(max_new_tokens=4, seed=0))  # warm-up
    hf_sample(hf, ids[:4], mask[:4], 4, pad_id)  # warm-up
    ours_s = hf_s = float("inf")
    for _ in range(REPEATS):  # interleaved, best of REPEATS each: the machine is shared
        start = time.perf_counter()
        ours = engine.generate(prompts, params)
        ours_s = min(ours_s, time.perf_counter() - start)
        start = time.perf_counter()
        out = hf_sample(hf, ids, mask, NEW_TOKENS, pad_id)
        hf_s = min(hf_s, time.perf_counter() - start)
    ours_tokens = sum(len(c.token_ids) for c in ours)
    hf_tokens = (out.shape[1] - ids.shape[1]) * BATCH

    if args.model == "qwen2-tiny":  # the engine's logprobs = the teacher-forced ones of the same completions
        from r1model.train import modeling

        with torch.no_grad():
            forced, _ = modeling.completion_logprobs(model, [c.prompt_ids for c in ours],
                                                     [c.token_ids for c in ours], pad_id)
        diff = max(abs(a - b) for c, f in zip(ours, forced) for a, b in zip(c.logprobs, f))
        print(f"engine logprobs vs teacher-forced, max |diff| = {diff:.2e} (limit 1e-4)")
        if diff > 1e-4:
            raise SystemExit("the engine's logprobs do not match the teacher-forced ones")

    ours_tps, hf_tps = ours_tokens / ours_s, hf_tokens / hf_s
    print(f"model {args.model}; engine {type(engine).__name__}: {ours_tokens} tokens in {ours_s:.2f} s "
          f"= {ours_tps:.0f} tokens/s")
    print(f"transformers {__import__('transformers').__version__} {type(hf).__name__}.generate: {hf_tokens} tokens "
          f"in {hf_s:.2f} s = {hf_tps:.0f} tokens/s")
    name = "generation_speedup_vs_hf" + ("" if args.model == "tiny" else "_" + args.model.replace("-", "_"))
    print(f"{name}={ours_tps / hf_tps:.2f}")


if __name__ == "__main__":
    main()
