"""GPU dispatch: workers announce their GPUs, a run asks for `gpus: N`, only a worker with N free GPUs claims
it, and a run no worker can take stays queued saying why. GPUs are declared with WORKER_GPUS (no GPU here)."""
import json

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from lab.models import Run, RunStatus, Worker
from lab.services import runs as run_services
from lab.services.dispatch import claim_run, gpu_shortage, note_gpu_shortages
from lab.services.runs import run_create
from lab.services.tokens import token_create
from workers import node
from workers.reaper import resend_lost_runs

DS = {"kind": "grpo", "total_steps": 3, "distributed": {"backend": "deepspeed"}}


def gpu_worker(name: str, gpus: int, queues=("gpu",)) -> Worker:
    caps = {"gpus": gpus, "gpu_list": [{"index": i, "name": "declared", "memory_mb": 0} for i in range(gpus)]}
    return Worker.objects.create(name=name, queues=list(queues), capabilities=caps, heartbeat_at=timezone.now())


def gpu_run(lab, gpus: int, **fields) -> Run:
    return Run.objects.create(team=lab.team, name=f"g{gpus}", queue="gpu", gpu_count=gpus, **fields)


def test_worker_gpus_declared_by_env_as_a_count_or_a_list(monkeypatch):
    monkeypatch.setenv("WORKER_GPUS", "2")
    caps = node.capabilities(refresh=True)
    assert caps["gpus"] == 2 and [g["index"] for g in caps["gpu_list"]] == [0, 1]
    monkeypatch.setenv("WORKER_GPUS", json.dumps([{"index": 3, "name": "NVIDIA H100 80GB HBM3", "memory_mb": 81559}]))
    caps = node.capabilities(refresh=True)
    assert caps["gpus"] == 1 and caps["gpu_models"] == ["NVIDIA H100 80GB HBM3"] and caps["gpu_memory_gb"] == 79.6
    monkeypatch.setenv("WORKER_GPUS", "two")
    with pytest.raises(ValueError, match="WORKER_GPUS"):
        node.capabilities(refresh=True)
    monkeypatch.setenv("WORKER_GPUS", "0")
    assert node.capabilities(refresh=True)["gpus"] == 0


def test_heartbeat_refreshes_the_announced_gpus(lab, monkeypatch):
    monkeypatch.setenv("WORKER_GPUS", "1")
    worker = node.register_worker("gpu@hb", ["gpu"])
    assert worker.capabilities["gpus"] == 1
    Worker.objects.filter(id=worker.id).update(capabilities={})
    monkeypatch.setenv("WORKER_GPUS", "4")
    node.capabilities(refresh=True)
    node.NodeHeartbeat(worker.id, type("Cfg", (), {"stale_s": 30, "reconcile_s": 15})()).beat()
    worker.refresh_from_db()
    assert worker.capabilities["gpus"] == 4 and len(worker.capabilities["gpu_list"]) == 4


def test_only_a_worker_with_enough_free_gpus_claims_the_run(lab):
    small, big = gpu_worker("gpu1@a", 1), gpu_worker("gpu2@b", 2)
    run = gpu_run(lab, 2)
    assert claim_run(run.id, small) is None
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.attempt == 0
    assert run.message == ""  # a worker with 2 GPUs is alive and free: no shortage to report
    claimed = claim_run(run.id, big)
    assert claimed is not None and claimed.worker_id == big.id and claimed.status == RunStatus.STARTING
    # big's GPUs are all held now: a second 1-GPU run cannot go there, the small worker takes it
    other = gpu_run(lab, 1)
    assert claim_run(other.id, big) is None
    assert claim_run(other.id, small) is not None
    # a CPU run needs no GPU: any worker claims it
    cpu = Run.objects.create(team=lab.team, name="cpu")
    assert claim_run(cpu.id, Worker.objects.create(name="cpu@c", queues=["cpu"], heartbeat_at=timezone.now())) is not None


def test_a_run_needing_more_gpus_than_any_worker_has_stays_queued_with_the_reason(lab):
    small = gpu_worker("gpu1@a", 1)
    gpu_worker("cpu1@x", 0, queues=("cpu",))
    run = gpu_run(lab, 4)
    assert claim_run(run.id, small) is None
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    assert run.message == "no worker with 4 free GPUs; largest has 1"
    # the reconciler keeps the note current: a dead worker's GPUs do not count, a bigger live one clears it
    Worker.objects.filter(id=small.id).update(heartbeat_at=None)
    note_gpu_shortages()
    run.refresh_from_db()
    assert run.message == "no worker with 4 free GPUs; largest has 0"
    big = gpu_worker("gpu4@b", 4)
    note_gpu_shortages()
    run.refresh_from_db()
    assert run.message == ""
    busy = gpu_run(lab, 4)
    assert claim_run(busy.id, big) is not None
    note_gpu_shortages()
    run.refresh_from_db()
    assert run.message == "waiting for 4 free GPUs: the workers that have them are busy"
    assert gpu_shortage(2, "cpu") == "no worker with 2 free GPUs; largest has 0"


def test_the_run_page_shows_why_it_waits(lab, owner_client):
    gpu_worker("gpu1@a", 1)
    run = gpu_run(lab, 4)
    note_gpu_shortages()
    page = owner_client.get(f"/runs/{run.id}/")
    assert page.status_code == 200
    assert "no worker with 4 free GPUs; largest has 1" in page.content.decode()


def test_the_reconciler_does_not_resend_a_run_nobody_can_take(lab):
    worker = gpu_worker("gpu1@a", 1)
    Worker.objects.filter(id=worker.id).update(idle_since=timezone.now() - timezone.timedelta(seconds=60))
    fits, too_big = gpu_run(lab, 1), gpu_run(lab, 4)
    assert resend_lost_runs(worker.id, reconcile_s=1) == [fits.id]
    assert Run.objects.get(id=too_big.id).dispatched_at is None


def test_run_create_with_gpus_sets_the_queue_and_one_process_per_gpu(lab, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    run = run_create(team=lab.team, user=lab.owner, config=DS, name="two", gpus=2)
    assert (run.gpu_count, run.queue, run.config["distributed"]["nproc_per_node"]) == (2, "gpu", 2)
    one = run_create(team=lab.team, user=lab.owner, config={"kind": "grpo", "total_steps": 3}, name="one", gpus=1)
    assert (one.gpu_count, one.queue) == (1, "gpu")
    for config, gpus, error in (
        ({"kind": "grpo", "total_steps": 3}, 2, "set distributed.backend to 'deepspeed'"),
        ({**DS, "distributed": {"backend": "deepspeed", "nproc_per_node": 4}}, 2, "nproc_per_node is 4"),
        (DS, -1, "whole number of GPUs"),
    ):
        with pytest.raises(ValidationError) as info:
            run_create(team=lab.team, user=lab.owner, config=config, name="bad", gpus=gpus)
        assert error in " ".join(info.value.message_dict["gpus"])


def test_api_takes_gpus(lab, client, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=lab.owner)}"}
    response = client.post("/api/v1/runs", {"name": "api-gpus", "config": DS, "gpus": 2}, content_type="application/json", **auth)
    assert response.status_code == 201, response.content
    assert response.json()["gpu_count"] == 2 and response.json()["queue"] == "gpu"
    response = client.post("/api/v1/runs", {"name": "x", "config": {"kind": "grpo"}, "gpus": 3}, content_type="application/json", **auth)
    assert response.status_code == 400 and "gpus" in json.dumps(response.json())


def test_run_form_has_a_gpus_field(lab, owner_client):
    page = owner_client.get("/runs/new/")
    assert page.status_code == 200 and 'name="gpus"' in page.content.decode()
