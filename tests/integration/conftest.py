"""A small lab deployment per worker test: real worker processes, a real database file (or PostgreSQL),
a real broker (redis-server or the embedded filesystem one) and a real trainer process.

The test process plays the web app: it changes runs through Django in short subprocesses (the same
settings a web server would load from the environment) and reads tables with plain SQL.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
FINISHED = ("completed", "failed", "cancelled")


# The smallest real GRPO run that still has several checkpoints to resume from: an untrained `tiny`
# model, 2 prompts x 2 samples a step, 12 new tokens, a checkpoint every 5 of 40 steps (~10 s on a CPU).
TINY_GRPO = {
    "kind": "grpo", "name": "fault-tiny", "model": {"source": "tiny"},
    "datasets": [{"task": "addition", "difficulty": {"digits": 2, "min_digits": 2}, "eval_size": 4}],
    "template": "mini", "rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.1}],
    "threads": 1, "total_steps": 40, "checkpoint_interval": 5, "keep_checkpoints": 3, "traces_per_step": 2,
    "grpo": {"group_size": 2, "prompts_per_step": 2, "beta": 0.0}, "sampling": {"max_new_tokens": 12},
    "evaluation": {"interval": 0, "at_start": False, "benchmarks": ["heldout"]},
}


class Trainer:
    """What the workers start in fault tests: the real `python -m r1model` on TINY_GRPO."""

    def __init__(self):
        self.worker_env: dict[str, str] = {}
        self.run_kwargs = {"config": TINY_GRPO}
        self.total_steps = TINY_GRPO["total_steps"]
        self.checkpoint_every = TINY_GRPO["checkpoint_interval"]


@pytest.fixture
def trainer() -> Trainer:
    return Trainer()


class Lab:
    """One deployment: the environment every process of it shares, and helpers to drive and inspect it."""

    def __init__(self, root: Path, broker_url: str, database_url: str | None = None, **env: str):
        self.root = root
        self.data = root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url or f"sqlite:///{root / 'lab.sqlite3'}"
        self.env = {
            **os.environ,
            "DEBUG": "1",
            "DJANGO_SETTINGS_MODULE": "lab.settings",
            "LAB_DATA_DIR": str(self.data),
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": broker_url,
            "OMP_NUM_THREADS": "1",
            "LAB_TRAINER_THREADS": "1",
            "WORKER_HEARTBEAT_S": "1",
            "WORKER_STALE_S": "6",
            "WORKER_POLL_MS": "200",
            "WORKER_RECONCILE_S": "3",
            "WORKER_CANCEL_GRACE_S": "15",
            "PYTHONPATH": str(REPO),
            **env,
        }
        self.env.pop("REDIS_URL", None)
        self.workers: dict[str, subprocess.Popen] = {}
        self.django("from django.core.management import call_command; call_command('migrate', verbosity=0)")

    # --- the web side ------------------------------------------------------------------------
    def django(self, code: str, **env: str):
        """Run `code` in a fresh Django process of this deployment; return the JSON of `result`."""
        script = "import django, json\ndjango.setup()\nresult = None\n" + textwrap.dedent(code)
        script += "\nprint('@@RESULT@@' + json.dumps(result, default=str))\n"
        proc = subprocess.run([PYTHON, "-c", script], cwd=REPO, env={**self.env, **env},
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise AssertionError(f"django snippet failed:\n{proc.stdout}\n{proc.stderr}")
        return json.loads(proc.stdout.rsplit("@@RESULT@@", 1)[1])

    def create_runs(self, count: int = 1, *, recipe: str = "", quick: bool = False, config: dict | None = None,
                    max_attempts: int = 3, dispatch: bool = True) -> list[int]:
        """Queued runs, dispatched on commit the way the web app does (lab.services.dispatch.dispatch_run)."""
        return self.django(f"""
            from django.db import transaction
            from lab.models import Run, Team
            from lab.services.dispatch import dispatch_run
            team, _ = Team.objects.get_or_create(slug="t", defaults={{"name": "T"}})
            result = []
            for i in range({count}):
                with transaction.atomic():
                    run = Run.objects.create(team=team, name=f"run-{{i}}", recipe={recipe!r}, quick={quick!r},
                                             config={config or {}!r}, max_attempts={max_attempts})
                    if {dispatch!r}:
                        transaction.on_commit(lambda run_id=run.id: dispatch_run(run_id))
                result.append(run.id)
        """)

    def dispatch(self, run_id: int) -> None:
        self.django(f"from lab.services.dispatch import dispatch_run; result = dispatch_run({run_id})")

    def cancel(self, run_id: int) -> str:
        """What the web's cancel does: queued → cancelled at once, active → cancelling (the worker acts)."""
        return self.django(f"""
            from lab.models import Run
            if Run.objects.filter(id={run_id}, status="queued").update(status="cancelled"):
                result = "cancelled"
            elif Run.objects.filter(id={run_id}, status__in=("starting", "running")).update(status="cancelling"):
                result = "cancelling"
        """)

    # --- workers -----------------------------------------------------------------------------
    def start_worker(self, name: str = "cpu1", queues: str = "cpu", pool: str = "threads",
                     **env: str) -> subprocess.Popen:
        log = open(self.root / f"worker-{name}.log", "ab")
        proc = subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", queues, "-c", "1", f"--pool={pool}",
             "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
            cwd=REPO, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT)
        self.workers[name] = proc
        return proc

    def kill_worker(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.workers.pop(name)
        proc.send_signal(sig)
        proc.wait(timeout=60)

    def stop(self) -> None:
        for name in list(self.workers):
            proc = self.workers[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self.workers.pop(name)

    def worker_log(self, name: str = "cpu1") -> str:
        return (self.root / f"worker-{name}.log").read_text(errors="replace")

    # --- reading the database ----------------------------------------------------------------
    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.database_url.startswith("sqlite"):
            conn = sqlite3.connect(self.database_url.removeprefix("sqlite:///"), timeout=30)
            try:
                return conn.execute(sql.replace("%s", "?"), params).fetchall()
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.database_url.replace("postgres://", "postgresql://")) as conn:
            return conn.execute(sql, params).fetchall()

    def run(self, run_id: int) -> dict:
        cols = ("status", "attempt", "message", "ingested_seq", "step", "phase", "run_dir", "compute_seconds",
                "worker_id")
        row = self.query(f"SELECT {', '.join(cols)} FROM lab_run WHERE id = %s", (run_id,))[0]
        return dict(zip(cols, row))

    def wait_for(self, run_id: int, test, timeout: float = 120, what: str = "") -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                state = self.run(run_id)
            except Exception:  # the database may be restarting in a fault test
                state = None
            if state is not None and test(state):
                return state
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                                 for p in sorted(self.root.glob("worker-*.log")))
                raise AssertionError(f"run {run_id}: {what or 'condition'} not reached in {timeout}s: {state}\n{logs}")
            time.sleep(0.3)

    def wait_finished(self, run_id: int, timeout: float = 180) -> dict:
        return self.wait_for(run_id, lambda s: s["status"] in FINISHED, timeout, "a finished status")

    def events(self, run_id: int) -> list[dict]:
        path = Path(self.run(run_id)["run_dir"]) / "events.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def assert_events_exactly_once(self, run_id: int) -> None:
        """The database holds exactly the final event file: every step's metrics once, every trace once."""
        events = self.events(run_id)
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(len(seqs))) or seqs == sorted(set(seqs)), "event file seqs not increasing"
        metric_events = {e["seq"]: e for e in events if e["type"] == "metric"}
        expected_metrics = sorted((seq, e["step"], name) for seq, e in metric_events.items()
                                  for name in (e.get("values") or e.get("metrics") or {}))
        stored_metrics = sorted(self.query("SELECT seq, step, name FROM lab_metric WHERE run_id = %s", (run_id,)))
        assert stored_metrics == expected_metrics, "metrics stored differ from the event file"
        # each (phase, step, name) once: a re-run step was not stored a second time under another seq
        keys = [(metric_events[seq].get("phase"), step, name) for seq, step, name in stored_metrics]
        assert len(set(keys)) == len(keys), "a step's metric stored twice"
        steps = {e["step"] for e in events if e["type"] == "metric"}
        assert set(range(1, max(steps) + 1)) <= steps, "a step's metrics are missing"
        expected_traces = sorted((e["seq"], e["step"], e["group_id"]) for e in events if e["type"] == "trace")
        stored_traces = sorted(self.query("SELECT seq, step, group_id FROM lab_trace WHERE run_id = %s", (run_id,)))
        assert stored_traces == expected_traces, "traces stored differ from the event file (lost or duplicated)"
        assert self.run(run_id)["ingested_seq"] == events[-1]["seq"]


def group_alive(pgid: int) -> list[int]:
    """Processes (not zombies) in process group `pgid`, read from /proc independently of the worker code."""
    alive = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(pid))
    return alive


@pytest.fixture
def fs_lab(tmp_path):
    """A deployment with the embedded filesystem broker (no broker server)."""
    lab = Lab(tmp_path, "filesystem://")
    yield lab
    lab.stop()


@pytest.fixture
def redis_lab(tmp_path):
    """A deployment with its own redis-server (restartable by the test: lab.redis)."""
    from tests.services import RedisServer

    redis = RedisServer().start()
    lab = Lab(tmp_path, redis.url)
    lab.redis = redis
    yield lab
    lab.stop()
    redis.stop()
