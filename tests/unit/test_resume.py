"""Exact resume: 2N steps straight equal N steps, SIGKILL, resume; SIGTERM checkpoints and exits 0;
a NaN loss fails the run and keeps the last good checkpoint."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from r1model.events import read_events
from r1model.train.checkpoint import list_checkpoints
from r1model.train.config import validate_run_config
from r1model.train.runner import run

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]
SMALL_MODEL = {
    "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16, "num_hidden_layers": 2,
    "num_attention_heads": 2, "q_lora_rank": 16, "kv_lora_rank": 16, "qk_nope_head_dim": 8,
    "qk_rope_head_dim": 8, "v_head_dim": 8, "num_nextn_predict_layers": 1,
}


def small_config(**changes) -> dict:
    config = {
        "kind": "grpo",
        "model": {"source": "tiny", "overrides": SMALL_MODEL},
        "base": {"steps": 4, "checkpoint_interval": 2},
        "datasets": [{"task": "addition", "difficulty": {"digits": 2}, "eval_size": 4}],
        "template": "mini",
        "rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.5}],
        "seed": 3,
        "deterministic": True,
        "total_steps": 6,
        "checkpoint_interval": 2,
        "supervised": {"batch_size": 8, "warmup_steps": 1},
        "grpo": {"group_size": 4, "prompts_per_step": 2, "max_new_tokens": 12, "learning_rate": 1e-3,
                 "beta": 0.05, "ref_refresh_interval": 3, "num_iterations": 2, "minibatches": 2, "temperature": 1.0},
        "evaluation": {"interval": 3, "temperature": 1.0},
    }
    config.update(changes)
    return config


def _write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def _start(config_path: Path, run_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "r1model", "train", str(config_path), "--run-dir", str(run_dir), "--quiet"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(predicate, proc, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return predicate()
        time.sleep(0.01)
    raise AssertionError("timed out")


def _science(events: list[dict]) -> list[tuple]:
    """What must be identical between runs: metrics less wall-clock ones, evals, traces, checkpoints."""
    out = []
    for e in events:
        if e["type"] == "metric":
            values = {k: v for k, v in e["values"].items() if not k.startswith(("time/", "throughput/")) and "tokens_per_s" not in k}
            out.append(("metric", e.get("phase"), e["step"], json.dumps(values, sort_keys=True)))
        elif e["type"] == "eval":
            out.append(("eval", e["step"], e["benchmark"], e["metric"], e["value"]))
        elif e["type"] == "trace":
            out.append(("trace", e["step"], e["group_id"], e["completion"], e["reward"], e["advantage"]))
        elif e["type"] == "checkpoint":
            out.append(("checkpoint", e["step"], Path(e["path"]).name))
    return out


def test_killed_and_resumed_run_reproduces_the_uninterrupted_run_exactly(tmp_path):
    config = small_config()
    straight = tmp_path / "straight"
    assert run(validate_run_config(config), straight, progress_stream=open(os.devnull, "w"), install_signals=False) == 0

    killed = tmp_path / "killed"
    proc = _start(_write(tmp_path, config), killed)
    _wait_for(lambda: (killed / "checkpoints" / "step-2" / "trainer_state.json").exists(), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert run(validate_run_config(config), killed, progress_stream=open(os.devnull, "w"), install_signals=False) == 0

    a, b = read_events(straight), read_events(killed)
    assert [e["seq"] for e in b] == list(range(len(b)))  # no gaps, no repeats
    assert _science(a) == _science(b)
    grpo_steps = [e["step"] for e in b if e["type"] == "metric" and e.get("phase") == "grpo"]
    assert grpo_steps == [1, 2, 3, 4, 5, 6]
    assert [e["phase"] for e in b if e["type"] == "status"][-1] == "done"
    resuming = [e for e in b if e["type"] == "status" and e["message"].startswith("resuming from")]
    assert len(resuming) == 1 and resuming[0]["step"] == int(Path(resuming[0]["message"].split()[-1]).name.split("-")[1])
    assert resuming[0]["step"] >= 2  # the checkpoint's step, not 0


def test_sigterm_writes_a_checkpoint_and_exits_zero(tmp_path):
    config = small_config(total_steps=200, checkpoint_interval=0, deterministic=False)
    run_dir = tmp_path / "run"
    proc = _start(_write(tmp_path, config), run_dir)
    _wait_for(lambda: any(e["type"] == "metric" and e.get("phase") == "grpo" for e in read_events(run_dir)), proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    events = read_events(run_dir)
    assert events[-1]["type"] == "status" and events[-1]["phase"] == "stopped"
    saved = list_checkpoints(run_dir / "checkpoints")
    assert saved and saved[-1][0] < 200
    assert any(e["type"] == "checkpoint" and e["step"] == saved[-1][0] for e in events)


def test_nan_loss_fails_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    # an absurd learning rate blows the weights up after the first step: the second loss is not finite
    config = small_config(base={"steps": 6, "checkpoint_interval": 1}, deterministic=False)
    config["supervised"] = {**config["supervised"], "learning_rate": 1e30, "max_grad_norm": 1e30, "warmup_steps": 0}
    run_dir = tmp_path / "run"
    code = run(validate_run_config(config), run_dir, progress_stream=open(os.devnull, "w"), install_signals=False)
    events = read_events(run_dir)
    assert code == 1
    status = [e for e in events if e["type"] == "status"][-1]
    assert status["phase"] == "failed" and ("nan" in status["message"].lower() or "inf" in status["message"].lower())
    saved = list_checkpoints(run_dir / "base" / "checkpoints")
    last_metric_step = max(e["step"] for e in events if e["type"] == "metric")
    assert saved and saved[-1][0] == last_metric_step  # the failed step wrote neither metrics nor a checkpoint
    assert status["step"] == max(e["step"] for e in events if "step" in e and (e["type"] != "status" or e["phase"] != "failed"))
    assert status["step"] > 0  # where it failed, not back to 0 (the lab shows a failed run's progress from it)
    assert not list_checkpoints(run_dir / "checkpoints")


def test_moe_max_violation_is_reported_from_the_first_step_after_a_resume(tmp_path):
    """The MoE gates' expert loads live outside the weights; a checkpoint keeps them, so a step whose update
    runs no forward (β = 0, every advantage 0) still reports the load the uninterrupted run reports."""
    config = validate_run_config(small_config(total_steps=8, checkpoint_interval=4,
                                              grpo={**small_config()["grpo"], "beta": 0.0}))
    quiet = {"progress_stream": open(os.devnull, "w"), "install_signals": False}
    assert run(config, tmp_path / "straight", **quiet) == 0
    resumed = tmp_path / "resumed"
    assert run(config, resumed, **quiet) == 0
    shutil.rmtree(resumed / "checkpoints" / "step-8")  # as if killed after the step-4 checkpoint
    assert run(config, resumed, **quiet) == 0

    def violations(run_dir):
        return {e["step"]: e["values"].get("moe/max_violation")
                for e in read_events(run_dir) if e["type"] == "metric" and e.get("phase") == "grpo"}

    after_resume = violations(resumed)
    assert sorted(after_resume) == list(range(1, 9))
    assert all(after_resume[step] is not None for step in range(5, 9))
    assert after_resume == violations(tmp_path / "straight")
