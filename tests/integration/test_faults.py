"""No lost work under faults. Each test injects one fault into a real deployment (worker processes, a
broker, a database, trainer processes) and asserts that the run ends completed — resumed from its last
complete checkpoint — or clearly failed, with every step's metrics and every trace stored exactly once."""
import ctypes
import json
import os
import select
import signal
import struct
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import Lab, group_alive

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IN_CREATE = 0x100


def supervisor_info(lab, run_id, attempt: int = 1) -> dict:
    def started(state):
        path = Path(state["run_dir"] or "/nonexistent") / "supervisor.json"
        return path.exists() and json.loads(path.read_text())["attempt"] == attempt

    state = lab.wait_for(run_id, started, what=f"attempt {attempt} started")
    return json.loads((Path(state["run_dir"]) / "supervisor.json").read_text())


def start_one_run(lab, trainer, **run) -> tuple[int, int]:
    """Worker cpu1 started and one run created: (the run's id, its trainer's process group once it started)."""
    lab.start_worker("cpu1", **trainer.worker_env)
    [run_id] = lab.create_runs(1, **run, **trainer.run_kwargs)
    return run_id, supervisor_info(lab, run_id)["pgid"]


def wait_group_gone(pgid: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group_alive(pgid) == [], f"trainer group {pgid} still has processes"


def attempts_logged(state) -> int:
    return (Path(state["run_dir"]) / "trainer.log").read_text().count("=== attempt")


def assert_completed_on_second_attempt_from_checkpoint(lab, run_id) -> dict:
    """The run completed on attempt 2, resumed from a checkpoint, with every step's events exactly once."""
    state = lab.wait_finished(run_id)
    assert state["status"] == "completed", state["message"]
    assert state["attempt"] == 2
    assert resumed_from_checkpoint(lab, run_id)
    lab.assert_events_exactly_once(run_id)
    return state


def resumed_from_checkpoint(lab, run_id) -> bool:
    """Did a later attempt start from a checkpoint (its "starting" status says so) rather than from scratch?"""
    return any(e["type"] == "status" and str(e.get("message", "")).startswith("resuming from")
               for e in lab.events(run_id))


def kill_at_next_checkpoint_write(checkpoints: Path, pgid: int, timeout: float = 120) -> str:
    """SIGKILL the trainer group the moment it creates the temp folder of its next checkpoint (inotify)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(0)
    assert fd >= 0 and libc.inotify_add_watch(fd, str(checkpoints).encode(), IN_CREATE) >= 0
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], 1.0)[0]:
                continue
            data, offset = os.read(fd, 65536), 0
            while offset < len(data):
                _, _, _, size = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16 : offset + 16 + size].rstrip(b"\0").decode()
                offset += 16 + size
                if name.startswith(".tmp"):
                    os.killpg(pgid, signal.SIGKILL)
                    return name
        raise AssertionError("no checkpoint write seen")
    finally:
        os.close(fd)


def test_worker_sigkill_mid_run_is_resumed_by_another_worker(redis_lab, trainer):
    lab = redis_lab
    run_id, pgid = start_one_run(lab, trainer)
    lab.wait_for(run_id, lambda s: s["step"] >= 2 * trainer.checkpoint_every + 2, what="two checkpoints")
    lab.kill_worker("cpu1", signal.SIGKILL)
    wait_group_gone(pgid)  # the trainer died with its supervisor: no orphan keeps writing
    lab.start_worker("cpu2", **trainer.worker_env)  # its reaper notices the stale heartbeat and requeues
    state = assert_completed_on_second_attempt_from_checkpoint(lab, run_id)
    assert attempts_logged(state) == 2


def test_restarted_worker_takes_back_the_run_its_earlier_life_held(fs_lab, trainer):
    lab = fs_lab
    lab.start_worker("cpu1", **trainer.worker_env)
    [run_id] = lab.create_runs(1, **trainer.run_kwargs)
    lab.wait_for(run_id, lambda s: s["step"] >= trainer.checkpoint_every + 2, what="a checkpoint")
    lab.kill_worker("cpu1", signal.SIGKILL)
    # no reaper help (a stale heartbeat would take an hour): the restart itself requeues its orphan
    lab.start_worker("cpu1", **trainer.worker_env, WORKER_STALE_S="3600")
    assert_completed_on_second_attempt_from_checkpoint(lab, run_id)


def test_trainer_sigkill_mid_step_is_retried_from_its_checkpoint(fs_lab, trainer):
    lab = fs_lab
    run_id, pgid = start_one_run(lab, trainer)
    lab.wait_for(run_id, lambda s: s["step"] >= trainer.checkpoint_every + 2, what="a checkpoint")
    os.killpg(pgid, signal.SIGKILL)
    assert_completed_on_second_attempt_from_checkpoint(lab, run_id)


def test_sigkill_during_a_checkpoint_write_resumes_from_the_previous_complete_one(fs_lab, trainer):
    lab = fs_lab
    run_id, pgid = start_one_run(lab, trainer)
    state = lab.wait_for(run_id, lambda s: s["step"] >= trainer.checkpoint_every + 1, what="a checkpoint")
    checkpoints = Path(state["run_dir"]) / "checkpoints"
    torn = kill_at_next_checkpoint_write(checkpoints, pgid)
    wait_group_gone(pgid)
    assert_completed_on_second_attempt_from_checkpoint(lab, run_id)
    assert not any(p.name.startswith(".tmp") for p in checkpoints.iterdir()) or torn  # the torn one never loaded


def test_redis_restart_loses_queued_messages_and_the_reconciler_resends_them(redis_lab, trainer):
    lab = redis_lab
    lab.start_worker(**trainer.worker_env)
    first, *queued = lab.create_runs(3, **trainer.run_kwargs)
    lab.wait_for(first, lambda s: s["status"] == "running", what="first run running")
    assert lab.query("SELECT count(*) FROM lab_run WHERE status = 'queued'") == [(2,)]
    lab.redis.stop()  # no persistence: the queued messages are gone
    lab.redis.start()
    for run_id in (first, *queued):
        state = lab.wait_finished(run_id, timeout=300)
        assert state["status"] == "completed", state["message"]
        assert state["attempt"] == 1
        lab.assert_events_exactly_once(run_id)
    assert "resent" in lab.worker_log()


def test_run_committed_but_never_dispatched_is_sent_by_the_reconciler(fs_lab, trainer):
    """The web process died between committing the run and sending its message."""
    lab = fs_lab
    lab.start_worker(**trainer.worker_env)
    [run_id] = lab.create_runs(1, dispatch=False, **trainer.run_kwargs)
    state = lab.wait_finished(run_id)
    assert state["status"] == "completed" and state["attempt"] == 1
    lab.assert_events_exactly_once(run_id)


def test_database_restart_mid_run(postgres_server, tmp_path, trainer):
    import psycopg

    name = f"faults_{uuid.uuid4().hex[:8]}"
    admin = postgres_server.url.replace("postgres://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    lab = Lab(tmp_path, "filesystem://", database_url=postgres_server.url.rsplit("/", 1)[0] + "/" + name)
    try:
        lab.start_worker(**trainer.worker_env)
        [run_id] = lab.create_runs(1, **trainer.run_kwargs)
        lab.wait_for(run_id, lambda s: s["step"] >= 3, what="step 3")
        postgres_server.restart()
        state = lab.wait_finished(run_id)
        assert state["status"] == "completed", state["message"]
        assert state["attempt"] == 1
        lab.assert_events_exactly_once(run_id)
        assert "database unavailable" in lab.worker_log()
    finally:
        lab.stop()


def test_run_longer_than_the_visibility_timeout_runs_once(redis_lab, trainer):
    lab = redis_lab
    env = {**trainer.worker_env, "BROKER_VISIBILITY_TIMEOUT_S": "2"}
    lab.start_worker("cpu1", **env)
    [run_id] = lab.create_runs(1, **trainer.run_kwargs)
    lab.wait_for(run_id, lambda s: s["status"] == "running", what="running")
    lab.start_worker("cpu2", **env)  # idle: it receives the message Redis redelivers after 2 s
    state = lab.wait_finished(run_id)
    assert state["status"] == "completed" and state["attempt"] == 1
    assert attempts_logged(state) == 1
    assert f"run {run_id}: not claimed (status running)" in lab.worker_log("cpu2")
    lab.assert_events_exactly_once(run_id)


def test_run_out_of_attempts_fails_clearly(fs_lab, trainer):
    lab = fs_lab
    run_id, pgid = start_one_run(lab, trainer, max_attempts=1)
    lab.wait_for(run_id, lambda s: s["step"] >= 2, what="step 2")
    os.killpg(pgid, signal.SIGKILL)
    state = lab.wait_finished(run_id)
    assert state["status"] == "failed"
    assert "trainer killed by SIGKILL" in state["message"] and "no attempts left" in state["message"]
    lab.assert_events_exactly_once(run_id)


def test_worker_shutdown_checkpoints_the_trainer_and_requeues_its_run(fs_lab, trainer):
    lab = fs_lab
    run_id, pgid = start_one_run(lab, trainer)
    lab.wait_for(run_id, lambda s: s["step"] >= 3, what="step 3")
    lab.kill_worker("cpu1", signal.SIGTERM)  # warm shutdown, e.g. `docker compose stop`
    assert group_alive(pgid) == []
    state = lab.run(run_id)
    assert state["status"] == "queued" and "worker shut down" in state["message"]
    assert lab.events(run_id)[-1]["phase"] == "stopped"  # the trainer checkpointed on SIGTERM
    lab.start_worker("cpu2", **trainer.worker_env)
    state = lab.wait_finished(run_id)
    assert state["status"] == "completed" and state["attempt"] == 1  # a graceful stop costs no attempt
    assert resumed_from_checkpoint(lab, run_id)
    lab.assert_events_exactly_once(run_id)
