"""Rollout engines on the same Qwen2 weights, one run: the built-in engine (HFEngine: our GenerationEngine on
the transformers model), transformers' own generate, and vLLM's CPU build through the trainer's integration
(VLLMServerEngine, `sampling.engine: vllm`, `vllm_mode: server`: a server on .venv-vllm's Python in a child
process, token ids in and out over HTTP, n samples of a prompt as one request).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/rollout_engines.py          # sizes tiny and 26m
    OMP_NUM_THREADS=1 .venv/bin/python bench/rollout_engines.py --quick             # tiny, no vLLM, 1 repeat

The same for every engine: one saved folder per size (the Qwen2 test fixture with its BPE tokenizer, random
weights; sizes in bench/_generation.py QWEN2_SIZES), P distinct addition prompts × n samples each, T 1, top-p 1,
top-k 0, exactly max_new_tokens per row (EOS ignored). One thread per engine: torch.set_num_threads(1) in this
process; the vLLM server gets OMP_NUM_THREADS=1 and VLLM_CPU_OMP_THREADS_BIND=nobind (its model runs on one
unpinned OpenMP thread; its API-server and engine-core processes come on top and are counted in its CPU s).

tokens/s = generated tokens / wall seconds of one generate call, best of --repeats (the two in-process engines
interleaved; vLLM after them, alone, so its idle server never runs beside them). CPU s: the CPU time of that
call (vLLM: its server's process tree plus this client). Start-up (load; for vLLM saving the checkpoint and the
server up to /health) is reported apart, not in tokens/s. Without a vLLM Python (env R1LAB_VLLM_PYTHON or
.venv-vllm, `make vllm-venv`) one line says vLLM was skipped and why; the other two are still measured.
Last line: rollout_engines_vllm_over_builtin=<vLLM ÷ built-in tokens/s at the largest size run>, or =skipped.
"""
from __future__ import annotations

import argparse
import json
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

from _generation import (  # noqa: E402
    QWEN2_SIZES, addition_prompts, hf_sample, load_hf, qwen2_folder, tree_cpu_seconds, vllm_python,
)

HEADLINE = "rollout_engines_vllm_over_builtin"


def timed(call):
    """(result, wall s, this process's CPU s) of call()."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - wall, time.process_time() - cpu


class Row:
    """One engine at one size: start-up, then the best repeat's wall and CPU seconds."""

    def __init__(self, engine: str, startup_s: float):
        self.engine, self.startup_s = engine, startup_s
        self.tokens, self.wall_s, self.cpu_s = 0, float("inf"), float("nan")

    def add(self, tokens: int, wall_s: float, cpu_s: float) -> None:
        if wall_s < self.wall_s:
            self.tokens, self.wall_s, self.cpu_s = tokens, wall_s, cpu_s

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s

    def as_dict(self) -> dict:
        return {"engine": self.engine, "startup_s": self.startup_s, "tokens": self.tokens, "wall_s": self.wall_s,
                "cpu_s": self.cpu_s, "tokens_per_s": self.tokens_per_s}


def preload() -> float:
    """Import what loading and the engines import lazily (transformers' model classes, ~10-15 s) so that
    start-up is loading, not importing; returns the seconds spent."""
    started = time.perf_counter()
    import transformers.integrations.deepspeed  # noqa: F401 - from_pretrained imports it on first use
    from transformers import AutoModelForCausalLM  # noqa: F401
    from transformers.models.qwen2 import modeling_qwen2  # noqa: F401

    import r1model.generation.hf_engine  # noqa: F401
    import r1model.generation.vllm_engine  # noqa: F401
    import r1model.train.modeling  # noqa: F401
    return time.perf_counter() - started


def expect_tokens(engine: str, got: int, want: int) -> int:
    if got != want:
        raise SystemExit(f"{engine} generated {got} tokens, expected {want} (rows × max_new_tokens, EOS ignored)")
    return got


def run_size(size: str, args, python: str | None) -> list[Row]:
    """The engines at one size; vLLM only when `python` is given."""
    from r1model.generation.vllm_engine import VLLMServerEngine
    from r1model.train import modeling

    folder = qwen2_folder(args.out, size)
    (model, tok), load_s, _ = timed(lambda: modeling.load_model(folder, torch.device("cpu")))
    model.eval()
    engine, make_s, _ = timed(lambda: modeling.make_engine(model, tok))
    hf, hf_load_s, _ = timed(lambda: load_hf(folder))
    params_n = sum(p.numel() for p in hf.parameters())
    rows = [p for p in addition_prompts(tok, args.prompts) for _ in range(args.n)]
    want = len(rows) * args.max_new_tokens
    print(f"size {size}: Qwen2 {params_n / 1e6:.3f} M params fp32 ({folder}); {args.prompts} prompts × n "
          f"{args.n} = {len(rows)} rows × {args.max_new_tokens} new tokens = {want} tokens per call", flush=True)
    params = SamplingParams(temperature=1.0, max_new_tokens=args.max_new_tokens, seed=0, ignore_eos=True)
    warm = SamplingParams(temperature=1.0, max_new_tokens=4, seed=1, ignore_eos=True)
    ids, mask = left_pad(rows, tok.pad_id, "cpu")

    builtin = Row(f"built-in {type(engine).__name__}", load_s + make_s)
    transformers_row = Row(f"transformers {type(hf).__name__}.generate", hf_load_s)
    engine.generate(rows[:4], warm)
    hf_sample(hf, ids[:4], mask[:4], 4, tok.pad_id)
    for _ in range(args.repeats):  # interleaved: the machine is shared
        out, wall, cpu = timed(lambda: engine.generate(rows, params))
        builtin.add(expect_tokens(builtin.engine, sum(len(c.token_ids) for c in out), want), wall, cpu)
        out, wall, cpu = timed(lambda: hf_sample(hf, ids, mask, args.max_new_tokens, tok.pad_id))
        transformers_row.add(expect_tokens(transformers_row.engine, (out.shape[1] - ids.shape[1]) * len(rows), want),
                             wall, cpu)
    result = [builtin, transformers_row]
    if python is None:
        return result

    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")  # one unpinned thread (OMP_NUM_THREADS=1)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-rollout-vllm-{size}-"))
    vllm = VLLMServerEngine(model, tok, python=python, workdir=workdir, seed=0, dtype="float32")
    try:
        _, start_s, _ = timed(vllm.start)  # on CPU without chunked prefill (vllm_engine.cpu_prefill_settings)
        row = Row("vLLM-cpu server (VLLMServerEngine)", start_s)
        vllm.generate(rows[:4], warm)
        pid = vllm.server.process.pid
        idle = tree_cpu_seconds(pid)
        time.sleep(2.0)
        print(f"  vLLM server idle: {(tree_cpu_seconds(pid) - idle) / 2.0:.2f} CPU-s per s (3 processes: API "
              f"server, engine core, model worker)", flush=True)
        for _ in range(args.repeats):
            server_cpu = tree_cpu_seconds(pid)
            out, wall, cpu = timed(lambda: vllm.generate(rows, params))
            row.add(expect_tokens(row.engine, sum(len(c.token_ids) for c in out), want), wall,
                    cpu + tree_cpu_seconds(pid) - server_cpu)
        result.append(row)
    finally:
        vllm.close()
    print(f"  vLLM server log: {workdir / 'server.log'}")
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="+", choices=sorted(QWEN2_SIZES), default=["tiny", "26m"])
    p.add_argument("--prompts", type=int, default=32, help="distinct addition prompts")
    p.add_argument("--n", type=int, default=4, help="samples per prompt")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3, help="timed calls per engine; the best is kept")
    p.add_argument("--no-vllm", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny only, 8 prompts × n 2 × 16 tokens, 1 repeat, no vLLM")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = p.parse_args(argv)
    for name in ("prompts", "n", "max_new_tokens", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.quick:
        args.sizes, args.prompts, args.n, args.max_new_tokens, args.repeats = ["tiny"], 8, 2, 16, 1
    args.out.mkdir(parents=True, exist_ok=True)

    python, why = (None, "--quick") if args.quick else (None, "--no-vllm") if args.no_vllm else vllm_python()
    print(f"threads: torch {torch.get_num_threads()} in this process (built-in and transformers), "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}" + ("" if python is None else
          f"; vLLM server OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"VLLM_CPU_OMP_THREADS_BIND={os.environ.get('VLLM_CPU_OMP_THREADS_BIND', 'nobind')}, "
          "chunked prefill off (a CPU-only vLLM, vllm_engine.cpu_prefill_settings)"))
    if python is None:
        print(f"vLLM skipped: {why}")
    print(f"imports: {preload():.1f} s (not counted in start-up)", flush=True)
    results, headline = {}, "skipped"
    for size in sorted(args.sizes, key=list(QWEN2_SIZES).index):
        rows = run_size(size, args, python)
        base = rows[0].tokens_per_s
        for row in rows:
            print(f"  {row.engine}: start-up {row.startup_s:.1f} s; {row.tokens} tokens in {row.wall_s:.3f} s "
                  f"(best of {args.repeats}) = {row.tokens_per_s:,.0f} tokens/s, CPU {row.cpu_s:.2f} s "
                  f"({row.tokens / row.cpu_s:,.0f} tokens/CPU-s); × {row.tokens_per_s / base:.2f} vs built-in "
                  f"(× {row.tokens / row.cpu_s / (rows[0].tokens / rows[0].cpu_s):.2f} per CPU-s)",
                  flush=True)
        results[size] = [row.as_dict() for row in rows]
        if python is not None:
            headline = f"{rows[2].tokens_per_s / base:.3f}"
            print(f"{HEADLINE}_{size}={headline}")
    (args.out / "rollout_engines.json").write_text(json.dumps(
        {"sizes": results, "prompts": args.prompts, "n": args.n, "max_new_tokens": args.max_new_tokens,
         "repeats": args.repeats, "vllm": python or f"skipped: {why}", "load_average": os.getloadavg()},
        indent=2) + "\n")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{HEADLINE}={headline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
