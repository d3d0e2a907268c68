"""What every trainer loop shares: the run's config, directory, event stream, device, stop flag and
progress display."""
from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from r1model.events import EventWriter
from r1model.train.config import RunConfig
from r1model.train.distributed import Distributed


class StopRequested:
    """Set by SIGTERM/SIGINT; loops check it between steps, checkpoint and return."""

    def __init__(self):
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None

    def install(self) -> None:
        def handler(signum, frame):
            self.signal = signum

        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, handler)
            except ValueError:  # not the main thread (tests calling run() from a worker thread)
                pass


class TrainingFailed(RuntimeError):
    """The run cannot go on (NaN/inf loss, ...); the last good checkpoint is kept."""


class Progress:
    """A one-line progress bar on a terminal, plain lines (every `every` steps) otherwise."""

    def __init__(self, stream=None, every: int = 10):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = every
        self.started = time.monotonic()
        self.start_step = 0

    def begin(self, phase: str, start_step: int, total: int) -> None:
        self.phase, self.total, self.start_step = phase, total, start_step
        self.started = time.monotonic()

    def eta(self, step: int) -> float | None:
        done = step - self.start_step
        if done <= 0:
            return None
        return (time.monotonic() - self.started) / done * (self.total - step)

    def update(self, step: int, values: dict[str, float]) -> None:
        shown = "  ".join(f"{k}={v:.4g}" for k, v in list(values.items())[:4] if isinstance(v, (int, float)))
        eta = self.eta(step)
        eta_text = f"eta {eta:5.0f}s" if eta is not None else ""
        if self.tty:
            width = 24
            filled = int(width * step / max(1, self.total))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{self.phase:8s} [{bar}] {step}/{self.total} {eta_text} {shown}\033[K")
            if step >= self.total:
                self.stream.write("\n")
            self.stream.flush()
        elif step % self.every == 0 or step >= self.total or step == self.start_step + 1:
            self.stream.write(f"{self.phase} step {step}/{self.total} {eta_text} {shown}\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()


@dataclass
class RunContext:
    config: RunConfig
    run_dir: Path
    events: EventWriter
    device: torch.device
    stop: StopRequested = field(default_factory=StopRequested)
    progress: Progress = field(default_factory=Progress)
    dist: Distributed = field(default_factory=Distributed)  # this process's rank of a data-parallel run
    stage: str = "main"  # "base" while the base pretraining runs before the main job, then "main"
    stage_total: int = field(init=False)  # the current stage's steps (the main job's until enter_stage)

    def __post_init__(self) -> None:
        self.stage_total = self.config.total_steps

    def enter_stage(self, stage: str, total: int, step: int = 0) -> None:
        """From now on status events count `step` of `total` in `stage` (the runner calls this)."""
        self.stage, self.stage_total = stage, total
        self.events.last_step = step  # what a failed/stopped status reports until the stage writes a step

    def status(self, phase: str, step: int | None = None, eta_s: float | None = None, message: str = "",
               stages: list[dict] | None = None) -> int:
        """A status event of the current stage: `step` (default: the stage's last step written) of the
        stage's total, never past it; `stages`: the run's plan (the "starting" status)."""
        step = self.events.last_step if step is None else step
        return self.events.status(phase, min(step, self.stage_total), self.stage_total, eta_s=eta_s,
                                  message=message, stage=self.stage, stages=stages)

    def should_stop(self) -> bool:
        """A stop signal on any rank (every rank checks at the same step, so all checkpoint together)."""
        return self.dist.any(bool(self.stop))

    def status_every(self, total: int) -> int:
        """Status events on a fixed step grid (deterministic event streams), about 50 per phase."""
        return max(1, total // 50)

    def autocast(self):
        precision = self.config.precision
        if precision in ("fp32", "fp8"):  # fp8: the model's own FP8 GEMMs (modeling.gemm_precision), no autocast
            return torch.autocast(self.device.type, enabled=False)
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)
