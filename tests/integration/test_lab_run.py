"""`make run`'s server: healthz answers with one live worker, the login page renders, Ctrl-C leaves nothing."""
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.services import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def descendants(pid: int) -> set[int]:
    """Every process whose ancestry reaches pid (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


@pytest.mark.slow
def test_lab_run_serves_with_one_worker_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update({"DEBUG": "true", "LAB_DATA_DIR": str(tmp_path / "data"), "DJANGO_SETTINGS_MODULE": "lab.settings"})
    proc = subprocess.Popen([sys.executable, "manage.py", "lab_run", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tracked: set[int] = set()
    body: dict = {}

    def serving_with_one_worker() -> bool:
        nonlocal body
        tracked.update(descendants(proc.pid))
        try:
            status, raw = get(f"http://127.0.0.1:{port}/healthz")
            body = json.loads(raw)
        except (OSError, ValueError):
            return False
        return status == 200 and body.get("workers") == 1

    try:
        wait_until(serving_with_one_worker, timeout=60, interval=0.5,
                   what=lambda: f"healthz with one worker (last: {body})")
        status, page = get(f"http://127.0.0.1:{port}/accounts/login/")
        assert status == 200 and b"Log in" in page
        tracked |= descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, output[-2000:]
        assert "login: demo /" in output
    finally:
        if proc.poll() is None:
            proc.kill()

    def alive() -> list[int]:
        return [pid for pid in tracked if Path(f"/proc/{pid}").exists()]

    wait_until(lambda: not alive(), timeout=10, what=lambda: f"no process left behind (alive: {alive()})")
