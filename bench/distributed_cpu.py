"""GRPO step time of 2 ranks (DeepSpeed ZeRO-0, gloo, DS_ACCELERATOR=cpu) against 1 process, tiny model, CPU.

    .venv/bin/python bench/distributed_cpu.py [--steps 4]

Each run includes start-up (process group, DeepSpeed engine); the steps' wall time is read from the metric
events (time/step). Prints name=value lines, grpo_step_2ranks_vs_1rank last (< 1 = 2 ranks faster per step).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = {"hidden_size": 64, "intermediate_size": 128, "moe_intermediate_size": 32, "num_hidden_layers": 2,
         "num_attention_heads": 2, "q_lora_rank": 32, "kv_lora_rank": 32, "qk_nope_head_dim": 16,
         "qk_rope_head_dim": 8, "v_head_dim": 16, "num_nextn_predict_layers": 0}


def step_time(tmp: Path, ranks: int, steps: int) -> float:
    config = {"kind": "grpo", "model": {"source": "tiny", "overrides": MODEL}, "template": "mini", "seed": 0,
              "datasets": [{"task": "addition", "difficulty": {"digits": 2}, "eval_size": 4}],
              "total_steps": steps, "checkpoint_interval": 0, "evaluation": {"benchmarks": []},
              "grpo": {"group_size": 8, "prompts_per_step": 8, "beta": 0.0, "learning_rate": 1e-3},
              "sampling": {"max_new_tokens": 24},
              "distributed": {"backend": "deepspeed", "nproc_per_node": ranks} if ranks > 1 else {}}
    path, run_dir = tmp / f"c{ranks}.json", tmp / f"r{ranks}"
    path.write_text(json.dumps(config))
    launch = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)] if ranks > 1 else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, *launch, "-m", "r1model", "train", str(path), "--run-dir", str(run_dir), "--quiet"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    times = [json.loads(line)["values"]["time/step"] for line in (run_dir / "events.jsonl").open()
             if json.loads(line)["type"] == "metric"]
    return sum(times[1:]) / max(1, len(times) - 1)  # the first step warms up


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = step_time(Path(tmp), 1, args.steps)
        two = step_time(Path(tmp), 2, args.steps)
    print(f"grpo_step_1rank_s={one:.4f}")
    print(f"grpo_step_2ranks_s={two:.4f}")
    print(f"grpo_step_2ranks_vs_1rank={two / one:.3f}")


if __name__ == "__main__":
    main()
