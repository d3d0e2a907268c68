"""Workers end to end: real Celery worker processes, a real broker, a real trainer process per run."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import TINY_GRPO, group_alive
from tests.services import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def trainer_pgid(lab, run_id) -> int:
    state = lab.wait_for(run_id, lambda s: s["run_dir"] and (Path(s["run_dir"]) / "supervisor.json").exists(),
                         what="a started trainer")
    return json.loads((Path(state["run_dir"]) / "supervisor.json").read_text())["pgid"]


def test_quick_recipe_on_real_trainer_completes_with_all_events_stored(redis_lab):
    lab = redis_lab
    lab.start_worker()  # the real `python -m r1model`
    [run_id] = lab.create_runs(1, recipe="aha-mini", quick=True)
    state = lab.wait_finished(run_id, timeout=600)
    assert state["status"] == "completed", state["message"]
    assert state["attempt"] == 1
    assert state["ingested_seq"] == lab.events(run_id)[-1]["seq"]
    lab.assert_events_exactly_once(run_id)


def test_solo_pool_worker_completes_a_run_and_stores_every_event(fs_lab, trainer):
    lab = fs_lab
    lab.start_worker(pool="solo", **trainer.worker_env)
    [run_id] = lab.create_runs(1, **trainer.run_kwargs)
    state = lab.wait_finished(run_id)
    assert state["status"] == "completed", state["message"]
    assert (state["attempt"], state["phase"], state["step"]) == (1, "done", trainer.total_steps)
    assert state["ingested_seq"] == lab.events(run_id)[-1]["seq"]
    assert state["compute_seconds"] > 0
    lab.assert_events_exactly_once(run_id)


def test_solo_pool_worker_gives_its_run_back_on_shutdown_and_another_finishes_it(fs_lab, trainer):
    """`--pool=solo`: the task runs in the main thread; SIGTERM still checkpoints the trainer and requeues.
    (The other tests use `--pool=threads`, the deployed default.)"""
    lab = fs_lab
    lab.start_worker("cpu1", pool="solo", **trainer.worker_env)
    [run_id] = lab.create_runs(1, **trainer.run_kwargs)
    pgid = trainer_pgid(lab, run_id)
    lab.wait_for(run_id, lambda s: s["step"] >= 3, what="step 3")
    lab.kill_worker("cpu1", signal.SIGTERM)
    assert group_alive(pgid) == []
    assert lab.run(run_id)["status"] == "queued"
    lab.start_worker("cpu2", pool="solo", **trainer.worker_env)
    state = lab.wait_finished(run_id)
    assert state["status"] == "completed" and state["attempt"] == 1
    lab.assert_events_exactly_once(run_id)


def test_thread_pool_worker_answers_ping_while_it_supervises_a_run(redis_lab, trainer):
    """What the compose healthcheck (`celery inspect ping`) needs: a worker busy with a run still answers."""
    lab = redis_lab
    lab.start_worker("cpu1", **trainer.worker_env)
    [run_id] = lab.create_runs(1, **trainer.run_kwargs)
    lab.wait_for(run_id, lambda s: s["step"] >= 2, what="step 2")
    ping = subprocess.run([sys.executable, "-m", "celery", "-A", "workers.celery_app", "inspect", "ping",
                           "-d", lab.query("SELECT name FROM lab_worker")[0][0], "--timeout", "5"],
                          env=lab.env, cwd=lab.env["PYTHONPATH"], capture_output=True, text=True, timeout=60)
    assert ping.returncode == 0 and "OK" in ping.stdout, ping.stdout + ping.stderr
    assert lab.run(run_id)["status"] == "running"


def test_worker_announces_queues_capabilities_and_heartbeat(fs_lab):
    lab = fs_lab
    lab.start_worker("gpu1", queues="gpu")
    rows = wait_until(lambda: lab.query("SELECT name, queues, capabilities, heartbeat_at FROM lab_worker"),
                      timeout=60, what=lambda: "the worker's row\n" + lab.worker_log("gpu1")[-3000:])
    name, queues, capabilities, first_beat = rows[0]
    assert name.startswith("gpu1@") and json.loads(queues) == ["gpu"]
    caps = json.loads(capabilities)
    assert caps["cores"] >= 1 and caps["memory_gb"] > 0 and caps["gpus"] >= 0
    # WORKER_HEARTBEAT_S=1: a later beat comes
    wait_until(lambda: lab.query("SELECT heartbeat_at FROM lab_worker")[0][0] > first_beat, timeout=60,
               what="a heartbeat after the first")


def test_same_run_dispatched_twice_starts_once(redis_lab, trainer):
    lab = redis_lab
    [run_id] = lab.create_runs(1, dispatch=False, **trainer.run_kwargs)
    for _ in range(3):
        lab.dispatch(run_id)  # the web sent it, a retry sent it again, the reconciler too
    lab.start_worker("cpu1", **trainer.worker_env)
    lab.start_worker("cpu2", **trainer.worker_env)
    state = lab.wait_finished(run_id)
    assert state["status"] == "completed" and state["attempt"] == 1
    starts = (Path(state["run_dir"]) / "trainer.log").read_text().count("=== attempt")
    assert starts == 1
    logs = lab.worker_log("cpu1") + lab.worker_log("cpu2")
    assert logs.count(f"run {run_id}: claimed by") == 1
    assert logs.count(f"run {run_id}: not claimed") >= 1
    lab.assert_events_exactly_once(run_id)


def test_cancelled_queued_run_never_starts(fs_lab):
    lab = fs_lab
    [run_id] = lab.create_runs(1)
    assert lab.cancel(run_id) == "cancelled"
    lab.start_worker()
    # the message arrives and is dropped by the claim
    wait_until(lambda: f"run {run_id}: not claimed (status cancelled)" in lab.worker_log(), timeout=60,
               what=lambda: "the worker dropping the cancelled run's message\n" + lab.worker_log()[-3000:])
    state = lab.run(run_id)
    assert state["status"] == "cancelled" and state["attempt"] == 0
    assert not (lab.data / "runs" / str(run_id)).exists()


def test_cancel_stops_the_whole_trainer_group_and_frees_the_slot(fs_lab, trainer):
    lab = fs_lab
    lab.start_worker(**trainer.worker_env)
    [first, second] = lab.create_runs(2, **trainer.run_kwargs)
    pgid = trainer_pgid(lab, first)
    lab.wait_for(first, lambda s: s["step"] >= 2, what="step 2")
    assert lab.cancel(first) == "cancelling"
    state = lab.wait_finished(first, timeout=60)
    assert state["status"] == "cancelled"
    assert group_alive(pgid) == []
    events = lab.events(first)
    assert events[-1]["type"] == "status" and events[-1]["phase"] == "stopped"  # it checkpointed on SIGTERM
    assert any(e["type"] == "checkpoint" for e in events)
    lab.assert_events_exactly_once(first)
    # the single slot is free again: the second run starts on the same worker
    lab.wait_for(second, lambda s: s["status"] == "running", what="the second run running")
    assert lab.cancel(second) == "cancelling"
    assert lab.wait_finished(second, timeout=60)["status"] == "cancelled"
    assert lab.query("SELECT current_run_id FROM lab_worker") == [(None,)]


def test_cancel_escalates_to_sigkill_after_the_grace_period(fs_lab, trainer):
    lab = fs_lab
    lab.start_worker(WORKER_CANCEL_GRACE_S="1", **trainer.worker_env)
    [run_id] = lab.create_runs(1, **trainer.run_kwargs)
    pgid = trainer_pgid(lab, run_id)
    lab.wait_for(run_id, lambda s: s["step"] >= 1, what="step 1")
    os.killpg(pgid, signal.SIGSTOP)  # stopped: it cannot act on SIGTERM
    assert lab.cancel(run_id) == "cancelling"
    state = lab.wait_finished(run_id, timeout=60)
    assert state["status"] == "cancelled"
    assert group_alive(pgid) == []


def test_invalid_config_fails_the_run_with_the_trainers_message(fs_lab, trainer):
    lab = fs_lab
    lab.start_worker(**trainer.worker_env)
    [run_id] = lab.create_runs(1, config={**TINY_GRPO, "grpo": {"group_size": 0}})
    state = lab.wait_finished(run_id)
    assert state["status"] == "failed" and state["attempt"] == 1  # a config error is not retried
    assert "trainer exited with code 2" in state["message"]
    assert "grpo.group_size" in state["message"]
