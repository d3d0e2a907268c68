"""The database side of dispatch: claim exactly once, requeue per policy, reap stale runs, resend lost
messages. Real ORM and the real (embedded filesystem) broker; no worker process needed."""
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from lab.models import Run, Team, Worker
from lab.services.dispatch import claim_run, dispatch_run, requeue_run
from workers.reaper import reap_stale_runs, requeue_orphans, resend_lost_runs

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    return Team.objects.create(slug="t", name="T")


@pytest.fixture
def worker():
    return Worker.objects.create(name="cpu1@test", queues=["cpu"], heartbeat_at=timezone.now())


def make_run(team, **fields) -> Run:
    return Run.objects.create(team=team, name="r", **fields)


def broker_messages() -> int:
    folder = settings.BROKER_DIR / "in"
    return len(list(folder.iterdir())) if folder.exists() else 0


def test_claim_succeeds_once_then_every_other_claim_is_refused(team, worker):
    run = make_run(team)
    other = Worker.objects.create(name="cpu2@test", queues=["cpu"])
    claimed = claim_run(run.id, worker)
    assert claimed is not None and (claimed.status, claimed.attempt, claimed.worker_id) == ("starting", 1, worker.id)
    assert claim_run(run.id, worker) is None and claim_run(run.id, other) is None
    worker.refresh_from_db()
    assert worker.current_run_id == run.id and worker.idle_since is None


def test_cancelled_queued_run_cannot_be_claimed(team, worker):
    run = make_run(team, status="cancelled")
    assert claim_run(run.id, worker) is None
    run.refresh_from_db()
    assert (run.status, run.attempt) == ("cancelled", 0)


def test_dispatch_sends_one_message_for_a_queued_run_and_none_otherwise(team):
    before = broker_messages()
    queued, finished = make_run(team), make_run(team, status="completed")
    assert dispatch_run(queued.id) is True
    assert dispatch_run(finished.id) is False
    assert broker_messages() == before + 1
    queued.refresh_from_db()
    assert queued.dispatched_at is not None


def test_requeue_gives_a_run_back_while_attempts_remain_then_fails_it(team, worker):
    run = make_run(team, max_attempts=2)
    claim_run(run.id, worker)
    assert requeue_run(run.id, 1, reason="trainer killed by SIGKILL") == "queued"
    run.refresh_from_db()
    assert (run.status, run.worker_id) == ("queued", None) and "attempt 1: trainer killed" in run.message
    claim_run(run.id, worker)
    assert requeue_run(run.id, 2, reason="no heartbeat for 30s") == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and "no attempts left" in run.message and run.finished_at is not None
    worker.refresh_from_db()
    assert worker.current_run_id is None


def test_requeue_of_an_old_attempt_changes_nothing(team, worker):
    run = make_run(team)
    claim_run(run.id, worker)
    requeue_run(run.id, 1, reason="stale")
    claim_run(run.id, worker)  # attempt 2 runs now
    assert requeue_run(run.id, 1, reason="stale again") == ""
    run.refresh_from_db()
    assert (run.status, run.attempt) == ("starting", 2)


def test_reaper_requeues_stale_active_runs_and_leaves_fresh_ones(team, worker):
    stale, fresh = make_run(team), make_run(team)
    claim_run(stale.id, worker)
    claim_run(fresh.id, worker)
    Run.objects.filter(id=stale.id).update(status="running", heartbeat_at=timezone.now() - timedelta(seconds=60))
    assert reap_stale_runs(30) == [(stale.id, "queued")]
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == "queued" and fresh.status == "starting"


def test_reaper_ends_a_stale_cancelling_run_as_cancelled(team, worker):
    run = make_run(team)
    claim_run(run.id, worker)
    Run.objects.filter(id=run.id).update(status="cancelling", heartbeat_at=timezone.now() - timedelta(seconds=60))
    assert reap_stale_runs(30) == [(run.id, "cancelled")]
    run.refresh_from_db()
    assert run.status == "cancelled"


def test_restarted_worker_requeues_the_runs_its_earlier_life_held(team, worker):
    run = make_run(team)
    claim_run(run.id, worker)
    Run.objects.filter(id=run.id).update(status="running")  # heartbeat still fresh
    assert requeue_orphans(worker) == [(run.id, "queued")]


def test_idle_worker_resends_runs_queued_without_a_message_for_too_long(team, worker):
    old = timezone.now() - timedelta(seconds=120)
    lost = make_run(team, dispatched_at=old)
    never_sent = make_run(team)
    recent = make_run(team, dispatched_at=timezone.now())
    gpu = make_run(team, queue="gpu", dispatched_at=old)
    Worker.objects.filter(id=worker.id).update(idle_since=old)
    assert sorted(resend_lost_runs(worker.id, 30)) == sorted([lost.id, never_sent.id])
    assert recent.id not in resend_lost_runs(worker.id, 30) and gpu.id not in resend_lost_runs(worker.id, 30)
    # a second pass right away sends nothing more: dispatched_at moved on
    assert resend_lost_runs(worker.id, 30) == []


def test_busy_or_newly_idle_worker_resends_nothing(team, worker):
    make_run(team, dispatched_at=timezone.now() - timedelta(seconds=120))
    Worker.objects.filter(id=worker.id).update(idle_since=timezone.now())
    assert resend_lost_runs(worker.id, 30) == []
    busy = make_run(team, status="running")
    Worker.objects.filter(id=worker.id).update(idle_since=None, current_run=busy)
    assert resend_lost_runs(worker.id, 30) == []


def test_lab_worker_reap_runs_one_repair_pass(team, worker, capsys):
    from django.core.management import call_command

    run = make_run(team)
    claim_run(run.id, worker)
    Run.objects.filter(id=run.id).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    call_command("lab_worker", "--reap")
    assert f"run {run.id}: queued" in capsys.readouterr().out


def test_lab_worker_refuses_an_unknown_queue(capsys):
    from django.core.management import call_command

    with pytest.raises(SystemExit):
        call_command("lab_worker", "--queues", "tpu")
    assert "--queues: unknown queue(s) tpu" in capsys.readouterr().err
