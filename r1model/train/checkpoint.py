"""Checkpoints for exact resume: `checkpoints/step-N/` in HF layout plus the trainer's state.

    step-N/config.json, model.safetensors, tokenizer.json   (the model, loadable by from_pretrained)
    step-N/trainer_state.pt     optimizer, scheduler, RNG states (python, numpy, torch), extra tensors,
                                the model's running state (modeling.running_state: MoE expert loads)
    step-N/trainer_state.json   step, phase, data cursor, event seq — readable without torch

A checkpoint is written under `.tmp-step-N` and renamed when complete, so a crash at any moment leaves
either the previous checkpoints or the new one, never half of one. A write that fails (a full disk)
removes the temporary folder; a full disk fails the run with CheckpointSpaceError, which says where and
about how much space the checkpoint needs.
"""
from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from r1model.events import EventWriteError
from r1model.train import modeling
from r1model.train.context import TrainingFailed

STATE_PT = "trainer_state.pt"
STATE_JSON = "trainer_state.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")
# what a full disk looks like from torch.save ("[enforce fail at inline_container.cc:...] . unexpected pos",
# "PytorchStreamWriter failed writing file ...") and from safetensors ("No space left on device")
_NO_SPACE_SIGNS = ("unexpected pos", "file write failed", "no space left", "storagefull")


class CheckpointSpaceError(TrainingFailed):
    """The checkpoint's volume is full: the message names the folder and the space a checkpoint needs."""


def rng_state() -> dict:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def list_checkpoints(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints of a folder, oldest first (temporary folders are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and (child / STATE_JSON).exists():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1][1] if found else None


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _is_out_of_space(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(exc).lower()
    return any(sign in text for sign in _NO_SPACE_SIGNS)


def checkpoint_bytes(model, optimizer=None, tensors: dict | None = None) -> int:
    """About the bytes one checkpoint takes: the model's tensors, the optimizer state and extra tensors."""

    def size(value) -> int:
        if isinstance(value, torch.Tensor):
            return value.numel() * value.element_size()
        if isinstance(value, dict):
            return sum(size(v) for v in value.values())
        if isinstance(value, (list, tuple)):
            return sum(size(v) for v in value)
        return 0

    return size(model.state_dict()) + size(optimizer.state_dict()["state"] if optimizer is not None else {}) + size(tensors or {})


def temporary_folder(folder: str | os.PathLike, step: int) -> Path:
    """Where checkpoint step-N is written before the rename."""
    return Path(folder) / f".tmp-step-{step}"


def clear_folder(tmp: Path) -> None:
    """An empty temporary folder (a dead attempt's half checkpoint removed)."""
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)


def save_checkpoint(
    folder: str | os.PathLike,
    step: int,
    model,
    tokenizer,
    *,
    optimizer=None,
    scheduler=None,
    state: dict,
    tensors: dict | None = None,
    keep: int = 3,
    events=None,
    prepared: bool = False,
) -> Path:
    """Write checkpoints/step-N atomically and delete all but the last `keep`. `state` must be JSON-ready
    (step, phase, data cursor, ...); `tensors` holds extra torch state (e.g. a reference model). With
    `events`, the checkpoint event is emitted and the writer's next seq stored as `event_seq`. `prepared`:
    the temporary folder already holds other files of this checkpoint (the DeepSpeed ranks' partitions)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step}"
    tmp = temporary_folder(folder, step)
    try:
        if not prepared:
            clear_folder(tmp)
        modeling.save_model(model, tokenizer, tmp)
        torch.save(
            {
                "optimizer": optimizer.state_dict() if optimizer is not None else None,
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "rng": rng_state(),
                "tensors": tensors or {},
                "running": modeling.running_state(model),
            },
            tmp / STATE_PT,
        )
        if events is not None:
            # The checkpoint event is written before the state that records the next seq, so a run resumed
            # from this checkpoint keeps the event, and a crash before the rename below drops it again.
            events.checkpoint(step, str(final.resolve()))
            state = {**state, "event_seq": events.next_seq}
        (tmp / STATE_JSON).write_text(json.dumps({**state, "step": step}, indent=1))
        _fsync_tree(tmp)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)  # never leave half a checkpoint behind
        if _is_out_of_space(exc) and not isinstance(exc, EventWriteError):  # the events file says its own
            needed = checkpoint_bytes(model, optimizer, tensors) / 1e6
            raise CheckpointSpaceError(
                f"no space left on {folder}: checkpoint step {step} needs ~{needed:.1f} MB "
                f"({shutil.disk_usage(folder).free / 1e6:.1f} MB free)"
            ) from exc
        raise
    if final.exists():  # the same step saved again (a resumed run): replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    for _, old in list_checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def restore_training_state(checkpoint: str | os.PathLike, model, optimizer, scheduler) -> tuple[dict, dict]:
    """Resume a loop from `checkpoint`: its optimizer, scheduler and RNG states and the model's running state
    (the model's weights are loaded with it already). Returns (JSON state, torch state)."""
    state, torch_state = load_state(checkpoint)
    if torch_state["optimizer"] is not None:  # None: a DeepSpeed run's, in <checkpoint>/deepspeed (distributed.py)
        optimizer.load_state_dict(torch_state["optimizer"])
    scheduler.load_state_dict(torch_state["scheduler"])
    set_rng_state(torch_state["rng"])
    modeling.load_running_state(model, torch_state.get("running", {}))  # older checkpoints have none
    return state, torch_state


def restore_running_state(checkpoint: str | os.PathLike, model) -> None:
    """Only the model's running state of `checkpoint` (a finished stage's model that the next stage trains)."""
    modeling.load_running_state(model, load_state(checkpoint)[1].get("running", {}))


def load_state(checkpoint: str | os.PathLike) -> tuple[dict, dict]:
    """(JSON state, torch state) of a checkpoint."""
    checkpoint = Path(checkpoint)
    state = json.loads((checkpoint / STATE_JSON).read_text())
    torch_state = torch.load(checkpoint / STATE_PT, map_location="cpu", weights_only=False)
    return state, torch_state
