#!/usr/bin/env bash
# One prepared GPU check (≤ 8 minutes on one H100/H200): FP8 block-scaled _scaled_mm vs the emulation,
# one GRPO step of the `small` preset (tokens/s, MFU), vLLM vs the built-in engine (tokens/s, logprob
# agreement), one 1-GPU DeepSpeed ZeRO-2 step. On a CPU-only machine it runs the CPU-safe parts and says
# what it skipped. Results: $OUT/gpu_check.json and $OUT/summary.txt (OUT defaults to bench/out/gpu_check);
# the last line is name=value pairs. GPU_CHECK_ONLY=fp8,grpo runs only those sections.
set -euo pipefail
cd "$(dirname "$0")/.."
export OUT="${OUT:-bench/out/gpu_check}"
mkdir -p "$OUT"
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader | tee "$OUT/nvidia-smi.txt" || echo "no nvidia-smi: CPU-safe parts only"
timeout "${GPU_CHECK_TIMEOUT_S:-480}" "$PYTHON" bench/gpu_check.py 2>&1 | tee "$OUT/gpu_check.log"
