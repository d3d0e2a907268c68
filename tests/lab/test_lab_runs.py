"""Runs: create validates and dispatches after commit; cancel and resume are conditional updates."""
import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from lab.models import Run, RunStatus
from lab.services import runs as run_services
from lab.services.runs import run_cancel, run_create, run_resume


def test_run_create_stores_validated_config_and_dispatches_once_after_commit(lab, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: sent.append(run_id))
    with django_capture_on_commit_callbacks(execute=True):
        run = run_create(team=lab.team, user=lab.owner, config={"kind": "grpo", "total_steps": 7}, name="r", queue="gpu")
    assert sent == [run.id]
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.queue == "gpu"
    assert run.config["total_steps"] == 7
    assert run.config["name"] == "r"
    assert run.run_dir.endswith(f"run-{run.id}")


def test_run_create_lists_config_errors_by_field(lab):
    with pytest.raises(ValidationError) as info:
        run_create(team=lab.team, user=lab.owner, config={"kind": "nope", "grpo": {"beta": -1}}, name="bad")
    assert {"kind", "grpo.beta"} <= set(info.value.message_dict)
    assert not Run.objects.filter(name="bad").exists()


def test_run_create_refuses_a_reviewer_and_another_teams_parent(lab):
    with pytest.raises(PermissionDenied):
        run_create(team=lab.team, user=lab.teammate, config={}, name="x")
    other_run = Run.objects.create(team=lab.other, name="theirs")
    with pytest.raises(ValidationError) as info:
        run_create(team=lab.team, user=lab.owner, config={}, name="x", parent=other_run)
    assert "parent" in info.value.message_dict


def test_cancelled_queued_run_never_starts(lab):
    run = Run.objects.create(team=lab.team, name="q", status=RunStatus.QUEUED)
    assert run_cancel(run=run, user=lab.owner) == RunStatus.CANCELLED
    # a worker's claim (queued → starting) now changes nothing
    assert Run.objects.filter(id=run.id, status=RunStatus.QUEUED).update(status=RunStatus.STARTING) == 0
    assert Run.objects.get(id=run.id).status == RunStatus.CANCELLED


def test_cancel_of_a_running_run_asks_the_worker_to_stop(lab):
    run = Run.objects.create(team=lab.team, name="r", status=RunStatus.RUNNING)
    assert run_cancel(run=run, user=lab.owner) == RunStatus.CANCELLING
    assert run_cancel(run=run, user=lab.owner) == RunStatus.CANCELLING  # clicking twice is harmless


def test_finished_run_cannot_be_cancelled(lab):
    run = Run.objects.create(team=lab.team, name="done", status=RunStatus.COMPLETED)
    with pytest.raises(ValidationError):
        run_cancel(run=run, user=lab.owner)


def test_resume_requeues_a_failed_run_with_fresh_attempts_and_dispatches(lab, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: sent.append(run_id))
    run = Run.objects.create(team=lab.team, name="f", status=RunStatus.FAILED, attempt=3, max_attempts=3)
    with django_capture_on_commit_callbacks(execute=True):
        assert run_resume(run=run, user=lab.owner) == RunStatus.QUEUED
    run.refresh_from_db()
    assert sent == [run.id] and run.status == RunStatus.QUEUED and run.max_attempts == 6 and run.finished_at is None


def test_completed_run_cannot_be_resumed(lab):
    run = Run.objects.create(team=lab.team, name="c", status=RunStatus.COMPLETED)
    with pytest.raises(ValidationError):
        run_resume(run=run, user=lab.owner)


def test_new_run_form_posts_a_run_from_the_generated_fields(owner_client, lab, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    form = owner_client.get("/runs/new/").content.decode()
    assert 'name="cfg-grpo.beta"' in form and "Default: 0.001" in form  # schema defaults shown as help
    response = owner_client.post(
        "/runs/new/", {"name": "from-form", "queue": "cpu", "cfg-kind": "grpo", "cfg-total_steps": "12", "cfg-grpo.beta": "0.002"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    run = Run.objects.get(name="from-form")
    assert run.config["total_steps"] == 12 and run.config["grpo"]["beta"] == 0.002


def test_new_run_form_shows_the_trainer_errors_next_to_fields(owner_client, lab):
    response = owner_client.post("/runs/new/", {"name": "bad", "queue": "cpu", "config_json": '{"kind": "grpo", "grpo": {"beta": -1}}'})
    assert response.status_code == 200
    assert "greater than or equal to 0" in response.content.decode()
    assert not Run.objects.filter(name="bad").exists()


def test_start_from_checkpoint_records_lineage_and_points_the_model_at_it(owner_client, lab, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    page = owner_client.get(f"/runs/new/?parent={lab.run.id}&step=20").content.decode()
    assert f"run:{lab.run.id}@20" in page and lab.checkpoint.path not in page  # a reference, not the server path
    response = owner_client.post(
        "/runs/new/",
        {"name": "child", "queue": "cpu", "parent": lab.run.id, "parent_step": 20, "config_json": '{"kind": "grpo", "model": "run:%d@20"}' % lab.run.id},
    )
    assert response.status_code == 302
    child = Run.objects.get(name="child")
    assert child.parent_id == lab.run.id and child.parent_step == 20
    assert child.config["model"]["source"] == f"run:{lab.run.id}@20"
    detail = owner_client.get(f"/runs/{child.id}/").content.decode()
    assert "Lineage" in detail and "alpha-run" in detail


def test_empty_lab_offers_the_demo_run_in_one_click(db, client, monkeypatch):
    from lab.models import Membership, Team
    from tests.lab.conftest import make_user

    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    user = make_user("newbie")
    team = Team.objects.create(slug="new", name="New")
    Membership.objects.create(team=team, user=user, role="researcher")
    client.force_login(user)
    assert "Start the aha-mini demo run" in client.get("/").content.decode()
    response = client.post("/runs/demo")
    run = Run.objects.get(team=team)
    assert response.status_code == 302 and run.recipe == "aha-mini" and run.status == RunStatus.QUEUED


def test_cancel_and_resume_buttons_change_state(owner_client, lab, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    assert owner_client.post(f"/runs/{lab.run.id}/resume").status_code == 302
    assert Run.objects.get(id=lab.run.id).status == RunStatus.QUEUED
    assert owner_client.post(f"/runs/{lab.run.id}/cancel").status_code == 302
    assert Run.objects.get(id=lab.run.id).status == RunStatus.CANCELLED


def test_a_saved_dataset_becomes_the_runs_data_source(owner_client, lab, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    assert f'value="{lab.dataset.id}" selected' in owner_client.get(f"/runs/new/?dataset={lab.dataset.id}").content.decode()
    response = owner_client.post("/runs/new/", {"name": "on-data", "queue": "cpu", "dataset": lab.dataset.id, "cfg-kind": "grpo"})
    assert response.status_code == 302, response.content.decode()[:1500]
    assert Run.objects.get(name="on-data").config["datasets"][0]["path"] == f"dataset:{lab.dataset.id}"


def test_dr_grpo_from_the_blank_form_is_dr_grpo_and_an_explicit_std_is_warned_about(owner_client, lab, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    response = owner_client.post("/runs/new/", {"name": "dr", "queue": "cpu", "cfg-kind": "grpo",
                                                "cfg-grpo.loss_aggregation": "dr_grpo", "cfg-grpo.advantage_scaling": "std"})
    assert response.status_code == 302, response.content.decode()[-1500:]
    run = Run.objects.get(name="dr")
    assert run.config["grpo"]["advantage_scaling"] == "none"  # the form's untouched default does not pin 'std'
    Run.objects.filter(id=run.id).update(config={**run.config, "grpo": {**run.config["grpo"], "advantage_scaling": "std"}})
    page = owner_client.get(f"/runs/{run.id}/").content.decode()
    assert "Config: grpo.advantage_scaling." in page and "is not Dr. GRPO" in page


def test_a_new_run_post_validates_its_config_once(owner_client, lab, monkeypatch):
    """The page, the form, the recipe merge and the service share one validation of the user's config
    (recipes' own configs are built once per process)."""
    from r1model.train import config as config_module

    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    owner_client.get("/runs/new/?recipe=aha-mini")  # the page builds the recipes' configs (once per process)
    calls = []
    validate = config_module.RunConfig.model_validate.__func__
    monkeypatch.setattr(config_module.RunConfig, "model_validate",
                        classmethod(lambda cls, *args, **kwargs: calls.append(1) or validate(cls, *args, **kwargs)))
    response = owner_client.post("/runs/new/", {"name": "once", "queue": "cpu", "cfg-kind": "grpo", "cfg-seed": "3"})
    assert response.status_code == 302 and len(calls) == 1
    calls.clear()
    response = owner_client.post("/runs/new/", {"name": "once-recipe", "queue": "cpu", "recipe": "aha-mini",
                                                "config_from": "aha-mini", "cfg-seed": "4"})
    assert response.status_code == 302 and len(calls) == 1
    assert Run.objects.get(name="once-recipe").config["seed"] == 4
