"""Evaluation throughput: one built-in test split (addition-test, 500 problems × k = 8, temperature 0.6,
top-p 0.95, 64 new tokens at most) on the `tiny` preset, problems/s end to end (generate + check + cons@k).
Peer, in the same run: the same generation alone (BuiltinEngine.generate on the same prompts), so the
ratio is what checking and voting cost on top of sampling. The machine is shared, so the two alternate
(ours, peer, peer, ours) and each keeps its best time.

A checkpoint can be given (`--checkpoint DIR`, e.g. an aha-mini base); by default a freshly initialised
tiny model is used, which rarely stops early (the worst case: every sample runs to the token limit).

Last line: evaluate_problems_per_s=<value>
"""
import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from r1model.evaluate.benchmarks import load_benchmark  # noqa: E402
from r1model.evaluate.runner import _generate, evaluate  # noqa: E402
from r1model.template import render_prompt  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, choices=[1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    from r1model.model import DeepSeekV3, ModelConfig, R1Tokenizer
    from r1model.generation import BuiltinEngine, SamplingParams

    if args.checkpoint:
        model, tokenizer = DeepSeekV3.from_pretrained(args.checkpoint), R1Tokenizer.load(args.checkpoint)
    else:
        torch.manual_seed(0)
        model, tokenizer = DeepSeekV3(ModelConfig.preset("tiny")), R1Tokenizer.build()
    problems = load_benchmark("addition-test", n=args.n)
    engine = BuiltinEngine(model, tokenizer)
    params = SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=args.max_new_tokens,
                            stop_token_ids=[tokenizer.eos_id], seed=0)
    prompts = [render_prompt(p.problem, "mini") for p in problems for _ in range(args.k)]
    _generate(engine, tokenizer, prompts[:256], params, seed=1)  # warm-up (allocator, kernels) for both

    def run_ours():
        return evaluate(model, tokenizer, problems, k=args.k, max_new_tokens=args.max_new_tokens, template="mini",
                        engine=engine, seed=0)

    def run_peer():
        return _generate(engine, tokenizer, prompts, params, seed=0)

    # the machine is shared: alternate (ours, peer, peer, ours) and keep each one's best time
    ours_times, peer_times = [], []
    for runner, times in ((run_ours, ours_times), (run_peer, peer_times), (run_peer, peer_times),
                          (run_ours, ours_times))[: 4 if args.rounds == 2 else 2]:
        started = time.perf_counter()
        out = runner()
        times.append(time.perf_counter() - started)
        if runner is run_ours:
            result = out
        else:
            completions = out
    ours_s, peer_s = min(ours_times), min(peer_times)

    s = result.summary
    tokens = sum(len(c.token_ids) for c in completions)
    print(f"evaluate: {args.n} problems x k={args.k} in {ours_s:.1f} s = {args.n / ours_s:.2f} problems/s "
          f"(generate {s['generate_seconds']:.1f} s, pass@1 {s['pass@1']:.3f}, mean length {s['mean_length']:.1f})")
    print(f"peer (generation only): {peer_s:.1f} s = {args.n / peer_s:.2f} problems/s, {tokens / peer_s:.0f} tokens/s")
    print(f"ratio evaluate/generation-only throughput: {peer_s / ours_s:.3f}")
    print(f"evaluate_problems_per_s={args.n / ours_s:.2f}")


if __name__ == "__main__":
    main()
