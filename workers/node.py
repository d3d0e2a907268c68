"""This worker node in the lab: what it can run, that it is alive, and the repairs it does while idle.

Celery's worker signals register the Worker row (queues and capabilities: cores, memory, GPUs from
nvidia-smi) and start one heartbeat thread. Every WORKER_HEARTBEAT_S the thread stamps the row (and its
capabilities: the GPUs a run may claim) and runs the reaper and the reconciler (workers/reaper.py) — no
celery beat needed, any number of workers.

GPUs: capabilities["gpus"] is their count, capabilities["gpu_list"] each one as
{"index", "name", "memory_mb"}. WORKER_GPUS replaces what nvidia-smi says (a node without a GPU can then
be tested as a GPU node; a GPU node can lend only some of its GPUs): a count ("2": GPUs 0..1 named
"declared") or a JSON list of {"index", "name", "memory_mb"}; "0" announces none.
"""
from __future__ import annotations

import logging
import os
import platform
import shutil
import json
import subprocess
import threading

from celery import signals
from django.db import Error as DatabaseError
from django.db import connection
from django.utils import timezone

from lab.models import Worker
from workers.config import WorkerConfig
from workers.reaper import note_unplaceable_runs, reap_stale_runs, requeue_orphans, resend_lost_runs

logger = logging.getLogger(__name__)


def declared_gpus(value: str) -> list[dict]:
    """WORKER_GPUS: "N" (N GPUs named "declared") or a JSON list of {"index", "name", "memory_mb"}."""
    value = value.strip()
    if value.isdigit():
        return [{"index": i, "name": "declared", "memory_mb": 0} for i in range(int(value))]
    try:
        items = json.loads(value)
        return [{"index": int(g["index"]), "name": str(g.get("name", "declared")), "memory_mb": int(g.get("memory_mb", 0))}
                for g in items]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"WORKER_GPUS: expected a count or a JSON list of {{index, name, memory_mb}}, got {value!r}") from exc


def gpu_inventory() -> list[dict]:
    """The node's GPUs: {"index", "name", "memory_mb"} each, from WORKER_GPUS if set, else nvidia-smi
    (only those CUDA_VISIBLE_DEVICES shows); none without nvidia-smi."""
    if os.environ.get("WORKER_GPUS", "").strip():
        return declared_gpus(os.environ["WORKER_GPUS"])
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    try:
        out = subprocess.run(
            [binary, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("nvidia-smi failed (%s); announcing no GPUs", exc)
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    wanted = None if visible is None else {v.strip() for v in visible.split(",") if v.strip()}
    gpus = []
    for line in out.strip().splitlines():
        index, name, memory = (part.strip() for part in line.split(",", 2))
        if wanted is None or index in wanted:
            gpus.append({"index": int(index), "name": name, "memory_mb": int(float(memory))})
    return gpus


_capabilities: dict = {}


def capabilities(refresh: bool = False) -> dict:
    """What this node offers (cached: the heartbeat sends the same dict again)."""
    if _capabilities and not refresh:
        return _capabilities
    memory_kb = 0
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    memory_kb = int(line.split()[1])
    except OSError:
        pass
    gpus = gpu_inventory()
    _capabilities.clear()
    _capabilities.update({
        "cores": len(os.sched_getaffinity(0)),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "gpus": len(gpus),
        "gpu_list": gpus,
        "gpu_models": sorted({g["name"] for g in gpus}),
        "gpu_memory_gb": round(sum(g["memory_mb"] for g in gpus) / 1024, 1),
        "host": platform.node(),
        "pid": os.getpid(),
        "python": platform.python_version(),
    })
    return _capabilities


def register_worker(name: str, queues: list[str]) -> Worker:
    """Create or refresh this worker's row; runs left active by its previous life go back to the queue."""
    worker, _ = Worker.objects.update_or_create(
        name=name, defaults={"queues": sorted(queues), "capabilities": capabilities(refresh=True), "heartbeat_at": timezone.now()}
    )
    for run_id, status in requeue_orphans(worker):
        logger.warning("run %s was held by an earlier life of %s: now %s", run_id, name, status)
    Worker.objects.filter(id=worker.id).update(current_run=None, idle_since=timezone.now())
    worker.refresh_from_db()
    return worker


class NodeHeartbeat(threading.Thread):
    """Stamps the worker's heartbeat and runs the reaper and the reconciler, until stopped."""

    def __init__(self, worker_id: int, cfg: WorkerConfig):
        super().__init__(name="r1lab-node-heartbeat", daemon=True)
        self.worker_id, self.cfg = worker_id, cfg
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.cfg.heartbeat_s):
            self.beat()
        connection.close()

    def beat(self) -> None:
        try:
            Worker.objects.filter(id=self.worker_id).update(heartbeat_at=timezone.now(), capabilities=capabilities())
            reap_stale_runs(self.cfg.stale_s)
            resend_lost_runs(self.worker_id, self.cfg.reconcile_s)
            note_unplaceable_runs()
        except DatabaseError as exc:
            logger.warning("worker heartbeat: database unavailable (%s)", exc)
            connection.close()
        except Exception:  # the heartbeat must outlive any one bad pass
            logger.exception("worker heartbeat pass failed")


_node: dict = {}


@signals.worker_ready.connect
def _on_worker_ready(sender, **_) -> None:
    consumer = sender
    queues = list(consumer.app.amqp.queues.consume_from or {})
    if not queues:
        queues = [q.name for q in consumer.task_consumer.queues]
    worker = register_worker(consumer.hostname, queues)
    thread = NodeHeartbeat(worker.id, WorkerConfig.from_env())
    thread.start()
    _node.update(worker_id=worker.id, thread=thread)
    logger.info("worker %s ready: queues %s, capabilities %s", worker.name, worker.queues, worker.capabilities)


@signals.worker_shutdown.connect
def _on_worker_shutdown(sender, **_) -> None:
    thread = _node.get("thread")
    if thread is not None:
        thread.stopped.set()
        thread.join(timeout=10)
    if "worker_id" in _node:
        try:
            Worker.objects.filter(id=_node["worker_id"]).update(heartbeat_at=None, current_run=None)
        except DatabaseError:
            pass
        connection.close()
