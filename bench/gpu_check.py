"""One prepared GPU check (bench/gpu_check.sh): each section guarded, CPU-safe parts run anywhere.

Sections (results: $OUT/gpu_check.json, $OUT/summary.txt; last stdout line: name=value pairs):
  fp8        FP8 block-scaled GEMM: torch._scaled_mm with 1×128 activation / 128×128 weight scales
             (Hopper) vs the emulation in r1model.model.fp8 (relative error to bf16/fp32 and time);
             on CPU only the emulation's error and speed.
  grpo       One GRPO step of the `small` preset on the GPU (tokens/s from the trainer's metric, an
             approximate MFU = 2·params·tokens/s / peak); on CPU a `tiny` step shows the path only.
  vllm       vLLM vs the built-in (transformers) engine on the same weights: tokens/s of each and the
             mean / max |Δ logprob| of vLLM's sampled tokens against the trainer's; needs vllm + CUDA.
  zero2      One DeepSpeed ZeRO-2 step (1 rank); on GPU with the `small` preset, on CPU `tiny` over gloo.
Each section says ok / skipped (and why) / error; nothing stops the others. ~8 minutes on one H100/H200.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense, SXM


def _cuda() -> bool:
    return torch.cuda.is_available()


def _timed(fn, repeat: int = 10) -> float:
    fn()
    if _cuda():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    if _cuda():
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeat


def check_fp8() -> dict:
    from r1model.model import fp8

    device = torch.device("cuda" if _cuda() else "cpu")
    m, k, n = (4096, 4096, 4096) if device.type == "cuda" else (256, 512, 384)
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(m, k, generator=gen).to(device)
    w = (torch.randn(n, k, generator=gen) * 0.02).to(device)
    exact = x @ w.t()
    emulated = fp8.fake_quant_tiles(x) @ fp8.fake_quant_blocks(w).t()
    out = {"shape": [m, k, n], "device": device.type,
           "emulation_rel_err": float((emulated - exact).norm() / exact.norm()),
           "emulation_ms": 1000 * _timed(lambda: fp8.fake_quant_tiles(x) @ fp8.fake_quant_blocks(w).t(), 3)}
    if device.type != "cuda":
        out["skipped"] = "torch._scaled_mm: no CUDA device"
        return out
    if torch.cuda.get_device_capability() < (9, 0) or not hasattr(torch, "_scaled_mm"):
        out["skipped"] = f"torch._scaled_mm blockwise: needs sm_90 (have {torch.cuda.get_device_capability()})"
        return out
    qa, sa = fp8.quantize_tiles(x)
    qw, sw = fp8.quantize_blocks(w)
    sa, swt = sa.contiguous(), sw.t().contiguous()

    def kernel():
        return torch._scaled_mm(qa, qw.t(), scale_a=sa, scale_b=swt, out_dtype=torch.bfloat16)

    try:
        real = kernel().float()
    except (RuntimeError, TypeError, NotImplementedError) as exc:
        out["skipped"] = f"torch._scaled_mm rejected blockwise scales: {exc}"[:300]
        return out
    xb, wb = x.bfloat16(), w.bfloat16()
    out.update(
        scaled_mm_vs_emulation_rel_err=float((real - emulated).norm() / emulated.norm()),
        scaled_mm_vs_fp32_rel_err=float((real - exact).norm() / exact.norm()),
        scaled_mm_ms=1000 * _timed(kernel),
        quantize_ms=1000 * _timed(lambda: (fp8.quantize_tiles(x), fp8.quantize_blocks(w))),
        bf16_ms=1000 * _timed(lambda: xb @ wb.t()),
    )
    out["scaled_mm_tflops"] = 2 * m * k * n / out["scaled_mm_ms"] / 1e9
    out["bf16_tflops"] = 2 * m * k * n / out["bf16_ms"] / 1e9
    return out


def _train(config: dict, tmp: Path, name: str, timeout: int = 420) -> dict:
    """Run `python -m r1model train` on `config`; the last metric event's values and the wall time."""
    path, run_dir = tmp / f"{name}.json", tmp / name
    path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "r1model", "train", str(path), "--run-dir", str(run_dir), "--quiet"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"trainer exited {proc.returncode}: {proc.stderr[-1500:]}")
    from r1model.events import read_events

    metrics = [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "metric"]
    return {"wall_s": wall, "values": metrics[-1]["values"] if metrics else {}}


def _grpo_config(preset: str, steps: int = 1, **changes) -> dict:
    data = {
        "kind": "grpo", "name": "gpu-check", "model": {"source": preset},
        "datasets": [{"task": "addition", "difficulty": {"digits": 2}, "eval_size": 4}],
        "template": "mini", "seed": 0, "total_steps": steps, "checkpoint_interval": 0,
        "grpo": {"group_size": 8 if preset != "tiny" else 2, "prompts_per_step": 16 if preset != "tiny" else 2,
                 "beta": 0.0},
        "sampling": {"max_new_tokens": 128 if preset != "tiny" else 8},
        "evaluation": {"interval": 0, "at_start": False, "benchmarks": []},
    }
    data.update(changes)
    return data


def _peak_tflops() -> float | None:
    if not _cuda():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def check_grpo(tmp: Path) -> dict:
    preset = "small" if _cuda() else "tiny"
    result = _train(_grpo_config(preset), tmp, "grpo")
    values = result["values"]
    out = {"preset": preset, "device": "cuda" if _cuda() else "cpu", "wall_s": result["wall_s"],
           "tokens_per_s": values.get("throughput/tokens_per_s"),
           "step_time_s": next((v for k, v in values.items() if k.startswith("time/") and "step" in k), None)}
    if not _cuda():
        out["note"] = "CPU: the tiny preset, to show the path; the small preset's tokens/s and MFU need a GPU"
        return out
    from r1model.model.config import ModelConfig
    from r1model.model.deepseek_v3 import DeepSeekV3

    with torch.device("meta"):
        params = sum(p.numel() for p in DeepSeekV3(ModelConfig.preset(preset)).parameters())
    peak = _peak_tflops()
    out["params"] = params  # all experts: the active parameters per token are fewer, so this MFU is an upper bound
    if peak and out["tokens_per_s"]:
        out["mfu_approx"] = 2 * params * out["tokens_per_s"] / (peak * 1e12)
    return out


def check_vllm(tmp: Path) -> dict:
    if not _cuda():
        return {"skipped": "vllm: no CUDA device (bench/vllm_cpu.py measures the CPU build)"}
    if importlib.util.find_spec("vllm") is None:
        return {"skipped": "vllm is not importable (pip install -e .[gpu])"}
    from r1model.generation.engine import SamplingParams
    from r1model.generation.hf_engine import HFEngine
    from r1model.generation.logprob_check import logprob_diff
    from r1model.generation.vllm_engine import make_vllm_engine
    from r1model.testing.fixtures import make_tiny_hf_model
    from r1model.train import modeling

    model, tokenizer = modeling.load_model(make_tiny_hf_model(tmp / "qwen", "qwen2"), torch.device("cuda"))
    prompts = [tokenizer.encode(t) for t in ("The quick brown fox", "def f(x):", "system user", "lazy dog")]
    rows = [p for p in prompts for _ in range(16)]
    params = SamplingParams(temperature=1.0, max_new_tokens=128, seed=1, stop_token_ids=(tokenizer.eos_id,))

    def rate(engine):
        engine.generate(rows, params)
        t0 = time.perf_counter()
        done = engine.generate(rows, params)
        return done, sum(len(c.token_ids) for c in done) / (time.perf_counter() - t0)

    builtin_done, builtin_rate = rate(HFEngine(model, tokenizer))
    engine = make_vllm_engine(model, tokenizer, mode="colocate", workdir=tmp / "vllm", seed=0)
    try:
        if hasattr(engine, "start"):
            engine.start()
        done, vllm_rate = rate(engine)
    finally:
        engine.close()
    with torch.no_grad():
        ours = modeling.completion_logprobs(model, [c.prompt_ids for c in done], [c.token_ids for c in done],
                                            tokenizer.pad_id)[0]
    mean, worst = logprob_diff([c.logprobs for c in done], ours)
    return {"builtin_tokens_per_s": builtin_rate, "vllm_tokens_per_s": vllm_rate,
            "logprob_diff_mean": mean, "logprob_diff_max": worst, "completions": len(rows)}


def check_zero2(tmp: Path) -> dict:
    if importlib.util.find_spec("deepspeed") is None:
        return {"skipped": "deepspeed is not importable"}
    preset = "small" if _cuda() else "tiny"
    config = _grpo_config(preset, distributed={"backend": "deepspeed", "zero_stage": 2, "nproc_per_node": 1,
                                               "bf16": _cuda()})
    result = _train(config, tmp, "zero2")
    return {"preset": preset, "device": "cuda" if _cuda() else "cpu", "wall_s": result["wall_s"],
            "tokens_per_s": result["values"].get("throughput/tokens_per_s"),
            "loss": next((v for k, v in result["values"].items() if k.endswith("loss")), None)}


def main() -> int:
    out_dir = Path(os.environ.get("OUT") or ROOT / "bench" / "out" / "gpu_check")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    only = set(filter(None, os.environ.get("GPU_CHECK_ONLY", "").split(",")))
    device = torch.cuda.get_device_name() if _cuda() else "cpu"
    results: dict = {"device": device, "torch": torch.__version__, "sections": {}}
    sections = {"fp8": check_fp8, "grpo": lambda: check_grpo(tmp), "vllm": lambda: check_vllm(tmp),
                "zero2": lambda: check_zero2(tmp)}
    for name, fn in sections.items():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        try:
            res = fn()
            res["status"] = "skipped" if "skipped" in res else "ok"
        except Exception as exc:  # noqa: BLE001 - one section's failure is its result
            res = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:1500],
                   "traceback": traceback.format_exc()[-3000:]}
        res["section_s"] = round(time.perf_counter() - t0, 2)
        results["sections"][name] = res
        print(f"[{name}] {res['status']} ({res['section_s']}s): "
              + json.dumps({k: v for k, v in res.items() if k not in ("traceback", "status", "section_s")},
                           default=str), flush=True)
        (out_dir / "gpu_check.json").write_text(json.dumps(results, indent=1, default=str))
    lines = [f"gpu_check on {device} (torch {torch.__version__})"]
    for name, res in results["sections"].items():
        lines.append(f"{name}: {res['status']}" + (f" — {res.get('skipped') or res.get('error', '')}"[:300]
                                                   if res["status"] != "ok" else ""))
    (out_dir / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    flat = {"device": device.replace(" ", "_")}
    for name, res in results["sections"].items():
        flat[f"{name}_status"] = res["status"]
        for key, value in res.items():
            if isinstance(value, float):
                flat[f"{name}_{key}"] = f"{value:.4g}"
    print(" ".join(f"{k}={v}" for k, v in flat.items()))
    return 1 if any(r["status"] == "error" for r in results["sections"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
