"""A stand-in for `python -m r1model` that only writes the run directory's files: events.jsonl in the
trainer's format, atomic checkpoints that store the next seq, truncation on resume, SIGTERM → checkpoint
and exit 0. It starts in milliseconds (no torch), so bench/dispatch_latency.py measures the lab's
dispatch path rather than an import, and worker tests can run many small runs cheaply.

    python bench/dispatch_stub_trainer.py recipe run NAME --run-dir DIR [--quick] [--seed N]
    python bench/dispatch_stub_trainer.py train CONFIG.json --run-dir DIR

Environment: STUB_STEPS (default 6), STUB_STEP_S (0.2), STUB_CKPT_EVERY (2), STUB_TRACES (2 per step),
STUB_EXIT (exit with this code after the first step: a failing trainer).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path


class EventWriter:
    def __init__(self, path: Path, next_seq: int):
        self.path, self.seq = path, next_seq
        self.handle = path.open("ab")

    def emit(self, type_: str, **fields) -> None:
        line = json.dumps({"seq": self.seq, "type": type_, "time": time.time(), **fields})
        self.handle.write(line.encode() + b"\n")
        self.handle.flush()
        self.seq += 1


def resume_point(run_dir: Path) -> tuple[int, int]:
    """(step, next_seq) of the latest complete checkpoint; (0, 0) for a fresh run."""
    best = (0, 0)
    for state in (run_dir / "checkpoints").glob("step-*/trainer_state.json"):
        data = json.loads(state.read_text())
        best = max(best, (data["step"], data["next_seq"]))
    return best


def truncate_events(path: Path, next_seq: int) -> None:
    """Keep the lines with seq < next_seq (and drop a torn last line)."""
    if not path.exists():
        return
    keep = 0
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n") or json.loads(line)["seq"] >= next_seq:
                break
            keep += len(line)
    os.truncate(path, keep)


def checkpoint(run_dir: Path, step: int, writer: EventWriter) -> None:
    final = run_dir / "checkpoints" / f"step-{step}"
    tmp = run_dir / "checkpoints" / f".tmp-step-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "model.safetensors").write_bytes(b"\0" * 4096)
    time.sleep(float(os.environ.get("STUB_CKPT_S", "0.05")))  # a checkpoint write takes time
    # the checkpoint event is part of the state: the next seq counts it
    (tmp / "trainer_state.json").write_text(json.dumps({"step": step, "next_seq": writer.seq + 1}))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    writer.emit("checkpoint", step=step, path=str(final.relative_to(run_dir)))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["recipe", "train"])
    parser.add_argument("rest", nargs="*")
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    steps = int(os.environ.get("STUB_STEPS", "6"))
    step_s = float(os.environ.get("STUB_STEP_S", "0.2"))
    every = int(os.environ.get("STUB_CKPT_EVERY", "2"))
    traces = int(os.environ.get("STUB_TRACES", "2"))
    run_dir = args.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"stub": True, "steps": steps}))
    start_step, next_seq = resume_point(run_dir)
    events = run_dir / "events.jsonl"
    truncate_events(events, next_seq)
    writer = EventWriter(events, next_seq)
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    resumed = f"resuming from {run_dir / 'checkpoints' / f'step-{start_step}'}" if start_step else "starting"
    writer.emit("status", step=0, phase="starting", total_steps=steps, message=resumed)
    for step in range(start_step + 1, steps + 1):
        time.sleep(step_s)
        writer.emit("metric", step=step, values={"loss": 1.0 / step, "rewards/accuracy/mean": step / steps})
        for i in range(traces):
            writer.emit("trace", step=step, group_id=f"{step}-0", prompt_id="p0", prompt="1+1?",
                        completion=f"<think>step {step}</think><answer>2</answer>", answer="2", reward=1.0,
                        correct=True, tokens=7 + i)
        writer.emit("status", step=step, phase="train", total_steps=steps, eta_s=(steps - step) * step_s)
        if os.environ.get("STUB_EXIT"):
            return int(os.environ["STUB_EXIT"])
        if step % every == 0 or stop["flag"]:
            checkpoint(run_dir, step, writer)
        if stop["flag"]:
            writer.emit("status", step=step, phase="stopped", total_steps=steps, message="SIGTERM: checkpointed")
            return 0
    writer.emit("status", step=steps, phase="done", total_steps=steps, eta_s=0.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
