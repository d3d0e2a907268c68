"""Dispatch latency: from the web committing a run (form submit) to its trainer process running, p50/p95,
with Redis, with the embedded filesystem broker (`make run`), and with kombu's SQLAlchemy-on-SQLite
transport — the other server-less candidate for the embedded default — all in the same run.

Each broker gets a fresh deployment: a SQLite database, one real Celery worker process
(`--pool=threads -c 1`, as deployed) and the stub trainer (bench/dispatch_stub_trainer.py: the real one
adds its own import time, not dispatch). Runs are submitted one at a time to an idle worker; "trainer start" is the time stamp of the trainer's
first event. Brokers poll at 0.1 s (workers/celery_app.py).

    OMP_NUM_THREADS=1 .venv/bin/python bench/dispatch_latency.py [--runs 20]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

SUBMITTER = r"""
import json, sys, time
from pathlib import Path
import django
django.setup()
from django.conf import settings
from django.db import transaction
from lab.models import Run, Team
from lab.services.dispatch import dispatch_run

team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "bench"})
latencies = []
for i in range(int(sys.argv[1]) + 1):  # the first run warms the worker up and is not counted
    submitted = time.time()
    with transaction.atomic():
        run = Run.objects.create(team=team, name=f"bench-{i}", recipe="stub", quick=True)
        transaction.on_commit(lambda run_id=run.id: dispatch_run(run_id))
    events = Path(settings.RUNS_DIR) / str(run.id) / "events.jsonl"
    deadline = time.time() + 120
    while not (events.exists() and events.read_text().count("\n")):
        if time.time() > deadline:
            sys.exit(f"run {run.id} did not start in 120 s")
        time.sleep(0.002)
    started = json.loads(events.read_text().splitlines()[0])["time"]
    while Run.objects.filter(id=run.id).values_list("status", flat=True)[0] not in ("completed", "failed"):
        time.sleep(0.02)
    if i:
        latencies.append(started - submitted)
print("@@" + json.dumps(latencies))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(broker: str, runs: int) -> list[float]:
    tmp = Path(tempfile.mkdtemp(prefix="r1lab-dispatch-bench-"))
    redis = None
    if broker == "redis":
        port = free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], stdout=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        time.sleep(0.3)
    elif broker == "filesystem":
        url = "filesystem://"
    else:
        url = f"sqla+sqlite:///{tmp / 'broker.sqlite3'}"
    env = {**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "lab.settings", "LAB_DATA_DIR": str(tmp / "data"),
           "DATABASE_URL": f"sqlite:///{tmp / 'lab.sqlite3'}", "CELERY_BROKER_URL": url, "OMP_NUM_THREADS": "1",
           "LAB_TRAINER_THREADS": "1", "LAB_TRAINER_CMD": f"{PYTHON} {ROOT / 'bench' / 'dispatch_stub_trainer.py'}",
           "STUB_STEPS": "1", "STUB_STEP_S": "0", "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    worker = subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "cpu", "-c", "1", "--pool=threads",
         "-n", "bench@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out = subprocess.run([PYTHON, "-c", SUBMITTER, str(runs)], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=900)
        if out.returncode:
            raise RuntimeError(f"{broker}: submitter failed: {out.stderr[-2000:]}")
        return json.loads(out.stdout.rsplit("@@", 1)[1])
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        if redis:
            redis.terminate()
            redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    rows = {}
    for broker in ("redis", "filesystem", "sqla+sqlite"):
        lat = measure(broker, args.runs)
        q = statistics.quantiles(lat, n=20)
        rows[broker] = (statistics.median(lat) * 1000, q[18] * 1000)
        print(f"{broker:12s} submit → trainer start over {len(lat)} runs: p50 {rows[broker][0]:6.0f} ms, "
              f"p95 {rows[broker][1]:6.0f} ms")
    for broker in ("filesystem", "sqla+sqlite"):
        print(f"p50 {broker} / redis: {rows[broker][0] / rows['redis'][0]:.2f}x")
    print(f"dispatch_p50_ms_redis={rows['redis'][0]:.0f}")


if __name__ == "__main__":
    main()
