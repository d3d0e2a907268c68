"""How a worker node supervises runs, read once from the environment (lab/env.py parses each variable).

| variable | default | meaning |
| --- | --- | --- |
| WORKER_HEARTBEAT_S | 5 | seconds between heartbeats of the worker and of its run (lab settings) |
| WORKER_STALE_S | 30 | a heartbeat older than this marks a run as abandoned (lab settings) |
| WORKER_POLL_MS | 500 | how often the supervisor reads new events and checks for a cancel |
| WORKER_CANCEL_GRACE_S | 30 | after SIGTERM, how long the trainer may take to checkpoint before SIGKILL |
| WORKER_RECONCILE_S | 15 | a worker idle this long resends queued runs not dispatched for this long |
| LAB_TRAINER_CMD | `<python> -m r1model` | the trainer's command prefix (e.g. `nice -n 5 python -m r1model`) |
| LAB_TRAINER_THREADS | cores of the node | OMP_NUM_THREADS given to the trainer |
"""
from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass

from django.conf import settings

from lab.env import EnvError, env_int, env_str


@dataclass(frozen=True)
class WorkerConfig:
    heartbeat_s: float
    stale_s: float
    poll_s: float
    cancel_grace_s: float
    reconcile_s: float
    trainer_cmd: tuple[str, ...]
    trainer_threads: int

    @classmethod
    def from_env(cls) -> "WorkerConfig":
        cmd = tuple(shlex.split(env_str("LAB_TRAINER_CMD", f"{shlex.quote(sys.executable)} -m r1model")))
        if not cmd:
            raise EnvError("LAB_TRAINER_CMD: empty command")
        values = {
            "WORKER_POLL_MS": env_int("WORKER_POLL_MS", 500),
            "WORKER_CANCEL_GRACE_S": env_int("WORKER_CANCEL_GRACE_S", 30),
            "WORKER_RECONCILE_S": env_int("WORKER_RECONCILE_S", 15),
            "LAB_TRAINER_THREADS": env_int("LAB_TRAINER_THREADS", len(os.sched_getaffinity(0))),
        }
        for name, value in values.items():
            if value < (0 if name == "WORKER_CANCEL_GRACE_S" else 1):
                raise EnvError(f"{name}: must be positive, got {value}")
        return cls(
            heartbeat_s=float(settings.WORKER_HEARTBEAT_S),
            stale_s=float(settings.WORKER_STALE_S),
            poll_s=values["WORKER_POLL_MS"] / 1000,
            cancel_grace_s=float(values["WORKER_CANCEL_GRACE_S"]),
            reconcile_s=float(values["WORKER_RECONCILE_S"]),
            trainer_cmd=cmd,
            trainer_threads=values["LAB_TRAINER_THREADS"],
        )
