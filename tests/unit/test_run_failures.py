"""What a run tells the user when it goes wrong, and how its status events count steps per stage: every
failure ends with a one-line `failed` status (where the events file still takes one) and one line on
stderr; a full disk while checkpointing says where and how much; steps never pass their stage's total."""
import errno
import io
import json
import os
import signal

import pytest
import torch

from r1model.events import EVENTS_FILE, read_events
from r1model.train import checkpoint as ckpt
from r1model.train.config import validate_run_config
from r1model.train.data import DataSource
from r1model.train.runner import run

torch.set_num_threads(1)
SMALL_MODEL = {
    "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16, "num_hidden_layers": 2,
    "num_attention_heads": 2, "q_lora_rank": 16, "kv_lora_rank": 16, "qk_nope_head_dim": 8,
    "qk_rope_head_dim": 8, "v_head_dim": 8, "num_nextn_predict_layers": 0,
}
DISK_FULL = "[enforce fail at inline_container.cc:672] . unexpected pos 4480 vs 4374"


def config(**changes):
    data = {
        "kind": "pretrain",
        "model": {"source": "tiny", "overrides": SMALL_MODEL},
        "datasets": [{"task": "addition", "difficulty": {"digits": 1}, "eval_size": 4}],
        "template": "mini",
        "seed": 1,
        "total_steps": 2,
        "checkpoint_interval": 0,
        "supervised": {"batch_size": 4, "warmup_steps": 0},
        "evaluation": {"benchmarks": []},
    }
    data.update(changes)
    return validate_run_config(data)


def _run(run_dir, cfg, **kwargs) -> tuple[int, str]:
    stream = io.StringIO()
    code = run(cfg, run_dir, progress_stream=stream, install_signals=False, **kwargs)
    return code, stream.getvalue()


def _failed(run_dir) -> dict:
    status = [e for e in read_events(run_dir) if e["type"] == "status"][-1]
    assert status["phase"] == "failed"
    return status


def _raise_disk_full(*args, **kwargs):
    raise RuntimeError(DISK_FULL)


def _raise_enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("save", [_raise_disk_full, _raise_enospc])
def test_a_full_disk_while_checkpointing_names_the_folder_and_the_space_needed_and_leaves_no_tmp(tmp_path, monkeypatch, save):
    monkeypatch.setattr(ckpt.torch, "save", save)
    code, stderr = _run(tmp_path / "run", config())
    assert code == 1
    folder = tmp_path / "run" / "checkpoints"
    message = _failed(tmp_path / "run")["message"]
    assert message.startswith(f"no space left on {folder}: checkpoint step 2 needs ~")
    assert " MB" in message and "\n" not in message and "inline_container" not in message
    assert not list(folder.glob(".tmp-step-*")) and not ckpt.list_checkpoints(folder)
    assert stderr.strip().splitlines()[-1] == f"failed: {message}" and "Traceback" not in stderr


def test_the_space_a_checkpoint_needs_counts_parameters_and_optimizer_state():
    model = torch.nn.Linear(100, 10)  # 1010 float32 parameters
    optimizer = torch.optim.AdamW(model.parameters())
    assert ckpt.checkpoint_bytes(model, optimizer) == 1010 * 4
    model(torch.ones(1, 100)).sum().backward()
    optimizer.step()  # two moments per parameter (and a step count each)
    assert ckpt.checkpoint_bytes(model, optimizer) >= 3 * 1010 * 4


def test_an_unwritable_events_file_fails_with_one_line_naming_the_file(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / EVENTS_FILE).mkdir(parents=True)  # not a file: cannot be opened for writing (even as root)
    code, stderr = _run(run_dir, config())
    assert code == 1
    assert stderr.strip().splitlines() == [f"failed: cannot write events to {run_dir / EVENTS_FILE}: Is a directory"]


def test_a_checkpoint_folder_write_error_ends_with_a_one_line_failed_status_and_stderr_line(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoints").write_text("a file where the checkpoints folder goes")
    code, stderr = _run(run_dir, config())
    assert code == 1
    status = _failed(run_dir)
    assert str(run_dir / "checkpoints") in status["message"] and "\n" not in status["message"]
    assert status["stage"] == "main" and status["step"] == 2 and status["total_steps"] == 2
    assert stderr.strip().splitlines()[-1] == f"failed: {status['message']}" and "Traceback" not in stderr
    logged = [e for e in read_events(run_dir) if e["type"] == "log" and e["level"] == "error"]
    assert logged and "Traceback" in logged[-1]["message"]  # the details stay in the run's log


def test_a_run_stopped_in_pretraining_counts_steps_within_each_stage(tmp_path):
    """base.steps 6 > total_steps 3: stopped at base step 5, the status says 5 of the base stage's 6 (not of
    the main job's 3); resumed, it finishes the base stage, then counts the main job from 0 to 3."""
    cfg = config(kind="sft", total_steps=3, base={"steps": 6, "checkpoint_interval": 0})
    original = DataSource.supervised_pairs

    def stop_at_step_5(self, step, *args, **kwargs):
        if step == 5:
            os.kill(os.getpid(), signal.SIGTERM)  # what a cancel does: the loop checkpoints and stops
        return original(self, step, *args, **kwargs)

    run_dir = tmp_path / "run"
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        DataSource.supervised_pairs = stop_at_step_5
        assert run(cfg, run_dir, progress_stream=io.StringIO(), install_signals=True) == 0
    finally:
        DataSource.supervised_pairs = original
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    stopped = read_events(run_dir)[-1]
    assert (stopped["phase"], stopped["stage"], stopped["step"], stopped["total_steps"]) == ("stopped", "base", 5, 6)

    assert _run(run_dir, cfg)[0] == 0
    statuses = [e for e in read_events(run_dir) if e["type"] == "status"]
    assert all(0 <= e["step"] <= e["total_steps"] == e["total"] for e in statuses)
    assert {e["total_steps"] for e in statuses if e["stage"] == "base"} == {6}
    assert {e["total_steps"] for e in statuses if e["stage"] == "main"} == {3}
    stages = [e["stage"] for e in statuses]
    assert stages == sorted(stages)  # "base" … then "main" … (never back)
    resumed = next(e for e in statuses if e["message"].startswith("resuming from"))
    assert (resumed["stage"], resumed["step"], resumed["total_steps"]) == ("base", 5, 6)
    main_start = next(e for e in statuses if e["stage"] == "main")
    assert main_start["step"] == 0
    starts = [e for e in statuses if e["phase"] == "starting"]  # each attempt says the run's plan
    assert len(starts) == 2 and all(e["stages"] == [{"name": "base", "total_steps": 6}, {"name": "main", "total_steps": 3}]
                                    for e in starts)
    assert all("stages" not in e for e in statuses if e["phase"] != "starting")
    assert (statuses[-1]["phase"], statuses[-1]["stage"], statuses[-1]["step"]) == ("done", "main", 3)


def test_the_stage_plan_has_a_base_stage_only_when_one_runs():
    from r1model.train.runner import stage_plan

    assert stage_plan(config(kind="sft", total_steps=3)) == [{"name": "main", "total_steps": 3}]
    assert stage_plan(config(kind="pretrain", total_steps=4, base={"steps": 6})) == [{"name": "main", "total_steps": 4}]
    assert stage_plan(config(kind="sft", total_steps=3, base={"steps": 6})) == [
        {"name": "base", "total_steps": 6}, {"name": "main", "total_steps": 3}]


def test_the_run_logs_how_its_datasets_split_into_training_and_held_out_rows(tmp_path):
    path = tmp_path / "ten.jsonl"
    path.write_text("".join(json.dumps({"problem": f"What is {i}+1?", "answer": str(i + 1)}) + "\n" for i in range(10)))
    cfg = config(datasets=[{"task": None, "path": str(path), "eval_size": 200}], total_steps=1)
    assert _run(tmp_path / "run", cfg)[0] == 0
    split = [e for e in read_events(tmp_path / "run") if e["type"] == "log" and "datasets" in e]
    assert len(split) == 1
    assert split[0]["datasets"] == [{"dataset": str(path), "train_size": 8, "heldout_size": 2}]
    assert split[0]["message"] == f"data split: {path}: 8 training, 2 held-out"


def test_an_events_file_that_fails_mid_run_ends_with_one_line_naming_the_file(tmp_path, monkeypatch):
    import r1model.events as events_module

    real_fsync, calls = events_module.os.fsync, []

    def fsync_until_the_disk_fills(fd):
        calls.append(fd)
        if len(calls) > 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(events_module.os, "fsync", fsync_until_the_disk_fills)
    run_dir = tmp_path / "run"
    code, stderr = _run(run_dir, config())
    assert code == 1
    assert stderr.strip().splitlines()[-1] == f"failed: cannot write events to {run_dir / EVENTS_FILE}: No space left on device"
    assert "Traceback" not in stderr
