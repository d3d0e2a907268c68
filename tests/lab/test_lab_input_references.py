"""A run's inputs are references resolved inside the caller's team; a server path is a field error.

The hole this closes: a member of team B named team A's checkpoint folder or run files in a run config
(model.source, datasets[].path, …) and the trainer read them. Every config field that names a file is tried
here with team A's paths, absolute and relative paths, `..`, symlinks and team A's references.
"""
from __future__ import annotations

import json
import os
import sys

import pytest
from django.test import Client, override_settings

from lab.models import CheckpointRecord, Dataset, Run
from lab.services import runs as run_services
from lab.services.references import InputError, resolve_inputs
from lab.services.tokens import token_create
from r1model.train.config import validate_run_config

_opened: list[str] = []
_watching: list[str] = []


def _audit(event, args):
    if event == "open" and _watching and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if any(path.startswith(root) for root in _watching):
            _opened.append(path)


sys.addaudithook(_audit)  # records every open() under a watched folder while a test watches it


@pytest.fixture
def alpha_files(lab, tmp_path, settings):
    """Team alpha's run directory (a checkpoint, its event stream) and dataset file, really on disk."""
    settings.LAB_DATA_DIR = tmp_path
    settings.RUNS_DIR = tmp_path / "runs"
    settings.DATASETS_DIR = tmp_path / "datasets"
    run_dir = tmp_path / "runs" / f"run-{lab.run.id}"
    checkpoint = run_dir / "checkpoints" / "step-20"
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.json").write_text("{}")
    (run_dir / "events.jsonl").write_text(json.dumps({"seq": 0, "type": "log", "secret_column": 1}) + "\n")
    Run.objects.filter(id=lab.run.id).update(run_dir=str(run_dir))
    CheckpointRecord.objects.filter(id=lab.checkpoint.id).update(path=str(checkpoint))
    data = tmp_path / "datasets" / "alpha-adds.jsonl"
    data.parent.mkdir(parents=True)
    data.write_text(json.dumps({"id": "1", "problem": "1+1", "answer": "2"}) + "\n")
    Dataset.objects.filter(id=lab.dataset.id).update(path=str(data))
    link = tmp_path / "innocent-looking"
    link.symlink_to(checkpoint)
    _watching[:] = [str(run_dir), str(data), str(link)]
    _opened.clear()
    yield {"run_dir": run_dir, "checkpoint": checkpoint, "data": data, "link": link}
    _watching.clear()


def _attempts(lab, files):
    """(field, config) pairs: each names one of team alpha's files in one of the ways an attacker might."""
    run_dir, checkpoint, data, link = files["run_dir"], files["checkpoint"], files["data"], files["link"]
    sources = [str(checkpoint), str(link), f"{run_dir}/../run-{lab.run.id}/checkpoints/step-20",
               "../../runs/run-1/checkpoints/step-20", "checkpoints/step-20", f"run:{lab.run.id}@20", f"run:{lab.run.id}",
               f"file://{checkpoint}"]
    paths = [str(run_dir / "events.jsonl"), str(data), f"{run_dir}/../../datasets/alpha-adds.jsonl", "../events.jsonl",
             str(link / "config.json"), f"dataset:{lab.dataset.id}"]
    out = [("model.source", {"model": {"source": s}}) for s in sources]
    out += [("datasets.0.path", {"datasets": [{"task": None, "path": p}]}) for p in paths]
    out += [("base.datasets.0.path", {"base": {"steps": 1, "datasets": [{"task": None, "path": p}]}}) for p in paths[:3]]
    out += [("evaluation.benchmarks", {"evaluation": {"benchmarks": [p]}}) for p in paths]
    return out


def test_another_teams_paths_and_references_are_field_errors_over_the_api(lab, alpha_files, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: pytest.fail("nothing may be dispatched"))
    client, token = Client(), token_create(user=lab.outsider)
    for field, config in _attempts(lab, alpha_files):
        response = client.post("/api/v1/runs", {"name": "probe", "config": {"kind": "grpo", **config}},
                               content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 400, (field, config, response.content)
        errors = response.json()["errors"]
        assert field in errors, (field, errors)
        assert "secret_column" not in response.content.decode()
    assert not Run.objects.filter(team=lab.other).exists()
    assert _opened == []  # nothing of team alpha was opened


def test_eval_benchmarks_of_the_api_take_no_paths(lab, alpha_files, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    client, token = Client(), token_create(user=lab.outsider)
    response = client.post("/api/v1/runs", {"name": "probe", "config": {"kind": "grpo"}, "eval_every": 5,
                                            "eval_benchmarks": [str(alpha_files["data"])]},
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 400 and "eval_benchmarks" in response.json()["errors"]
    assert not Run.objects.filter(team=lab.other).exists()


def test_an_existing_path_and_a_missing_one_get_the_same_answer(lab, alpha_files):
    """No oracle: the error does not depend on whether the path exists on the server."""
    client, token = Client(), token_create(user=lab.outsider)

    def error_for(path):
        response = client.post("/api/v1/runs", {"name": "probe", "config": {"model": {"source": path}}},
                               content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
        return response.status_code, response.json()["errors"]["model.source"][0].replace(repr(path), "PATH")

    assert error_for(str(alpha_files["checkpoint"])) == error_for(str(alpha_files["checkpoint"]) + "-absent")


def test_the_new_run_form_shows_the_field_error_for_a_server_path(lab, alpha_files, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: pytest.fail("nothing may be dispatched"))
    client = Client()
    client.force_login(lab.outsider)
    response = client.post("/runs/new/", {"name": "probe", "queue": "cpu", "cfg-kind": "grpo",
                                          "cfg-model.source": str(alpha_files["checkpoint"])})
    page = response.content.decode()
    assert response.status_code == 200 and "server paths are not accepted" in page
    assert not Run.objects.filter(team=lab.other).exists() and _opened == []


def test_the_teams_own_references_are_accepted_pinned_and_resolved_on_the_worker(lab, alpha_files, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    client, token = Client(), token_create(user=lab.owner)
    config = {"kind": "grpo", "model": {"source": f"run:{lab.run.id}"},
              "datasets": [{"task": None, "path": f"dataset:{lab.dataset.id}"}],
              "evaluation": {"benchmarks": ["heldout", "gsm8k", f"dataset:{lab.dataset.id}"]}}
    response = client.post("/api/v1/runs", {"name": "mine", "config": config}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 201, response.content
    run = Run.objects.get(id=response.json()["id"])
    assert run.config["model"]["source"] == f"run:{lab.run.id}@20"  # "latest" pinned when the run is made
    page = client.get(f"/runs/{run.id}/", HTTP_AUTHORIZATION=f"Bearer {token}")
    resolved = resolve_inputs(run)
    assert resolved["model"]["source"] == str(alpha_files["checkpoint"])
    assert resolved["datasets"][0]["path"] == str(alpha_files["data"])
    assert resolved["evaluation"]["benchmarks"] == ["heldout", "gsm8k", str(alpha_files["data"])]
    assert page.status_code in (200, 302)


def test_the_worker_refuses_a_reference_of_another_team_even_when_stored(lab, alpha_files):
    """A config changed behind the service's back (an old row, a database edit) is checked again."""
    run = Run.objects.create(team=lab.other, name="stored", created_by=lab.outsider,
                             config=validate_run_config({"model": {"source": f"run:{lab.run.id}@20"}}).model_dump(mode="json"))
    with pytest.raises(InputError, match="model.source: no checkpoint"):
        resolve_inputs(run)
    run.config = validate_run_config({"datasets": [{"task": None, "path": f"dataset:{lab.dataset.id}"}]}).model_dump(mode="json")
    with pytest.raises(InputError, match="datasets.0.path: no dataset"):
        resolve_inputs(run)


def test_the_worker_refuses_a_symlink_out_of_the_run_or_datasets_folder(lab, alpha_files, tmp_path):
    outside = tmp_path / "elsewhere"
    (outside / "step-20").mkdir(parents=True)
    (outside / "step-20" / "config.json").write_text("{}")
    escape = alpha_files["run_dir"] / "checkpoints" / "step-30"
    escape.symlink_to(outside / "step-20")
    CheckpointRecord.objects.create(run=lab.run, seq=300, step=30, path=str(escape))
    run = Run.objects.create(team=lab.team, name="child", created_by=lab.owner,
                             config=validate_run_config({"model": {"source": f"run:{lab.run.id}@30"}}).model_dump(mode="json"))
    with pytest.raises(InputError, match="outside its run's directory"):
        resolve_inputs(run)
    secret = tmp_path / "secret.jsonl"
    secret.write_text("{}\n")
    link = alpha_files["data"].parent / "linked.jsonl"
    link.symlink_to(secret)
    dataset = Dataset.objects.create(team=lab.team, name="linked", source="upload", path=str(link), content_hash="0" * 64)
    run.config = validate_run_config({"datasets": [{"task": None, "path": f"dataset:{dataset.id}"}]}).model_dump(mode="json")
    with pytest.raises(InputError, match="outside the datasets folder"):
        resolve_inputs(run)


def test_pages_and_api_show_references_and_hide_server_paths(lab, alpha_files):
    Run.objects.filter(id=lab.run.id).update(message=f"trainer exited: cannot read {alpha_files['run_dir']}/x")
    client = Client()
    client.force_login(lab.owner)
    page = client.get(f"/runs/{lab.run.id}/").content.decode()
    assert f"run:{lab.run.id}@20" in page
    assert str(alpha_files["run_dir"]) not in page
    token = token_create(user=lab.owner)
    body = client.get(f"/api/v1/runs/{lab.run.id}", HTTP_AUTHORIZATION=f"Bearer {token}").content.decode()
    assert str(alpha_files["run_dir"]) not in body and "<data>" in body


def test_the_cli_keeps_taking_paths(tmp_path):
    config = validate_run_config({"model": {"source": str(tmp_path / "ckpt")},
                                  "datasets": [{"task": None, "path": str(tmp_path / "d.jsonl")}]})
    assert config.model.source == str(tmp_path / "ckpt") and config.datasets[0].path == str(tmp_path / "d.jsonl")


def test_stored_configs_with_paths_of_the_team_become_references(lab, alpha_files):
    """Migration 0007: a run made before references keeps working (its own team's paths become references)."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("lab.migrations.0007_config_inputs_as_references")
    old = Run.objects.create(team=lab.team, name="old", created_by=lab.owner, config={
        "model": {"source": str(alpha_files["checkpoint"])}, "datasets": [{"task": None, "path": str(alpha_files["data"])}]})
    foreign = Run.objects.create(team=lab.other, name="foreign", created_by=lab.outsider, config={
        "model": {"source": str(alpha_files["checkpoint"])}, "datasets": [{"task": None, "path": str(alpha_files["data"])}]})
    migration._to_references(apps, None)
    old.refresh_from_db()
    foreign.refresh_from_db()
    assert old.config["model"]["source"] == f"run:{lab.run.id}@20"
    assert old.config["datasets"][0]["path"] == f"dataset:{lab.dataset.id}"
    assert foreign.config["model"]["source"] == str(alpha_files["checkpoint"])  # not its team's: left, refused at start
    with pytest.raises(InputError, match="model.source"):
        resolve_inputs(foreign)


def test_the_dataset_page_gives_its_reference_and_no_server_path(lab, alpha_files):
    client = Client()
    client.force_login(lab.owner)
    page = client.get(f"/datasets/{lab.dataset.id}/").content.decode()
    assert f"dataset:{lab.dataset.id}" in page and str(alpha_files["data"]) not in page


def test_registered_models_and_hub_ids_are_references(lab, alpha_files, monkeypatch):
    """model:ID of the team resolves to hf:<its hub id> (the trainer then asks only the hub); another team's model:ID
    and a hub id that reads as a path are field errors, with the answer of a model that does not exist."""
    from lab.services.model_registry import model_register_hub

    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    mine = model_register_hub(team=lab.team, user=lab.owner, name="qwen", hub_id="Qwen/Qwen2.5-0.5B@main")
    theirs = model_register_hub(team=lab.other, user=lab.outsider, name="theirs", hub_id="beta/secret")
    client, token = Client(), token_create(user=lab.owner)

    def post(source):
        return client.post("/api/v1/runs", {"name": "m", "config": {"kind": "grpo", "model": {"source": source}}},
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")

    for source, resolved in ((mine.reference, "hf:Qwen/Qwen2.5-0.5B@main"), ("hf:Qwen/Qwen2.5-0.5B", "hf:Qwen/Qwen2.5-0.5B"),
                             ("hf:org/name@v1.0", "hf:org/name@v1.0")):
        response = post(source)
        assert response.status_code == 201, (source, response.content)
        run = Run.objects.get(id=response.json()["id"])
        assert run.config["model"]["source"] == source and resolve_inputs(run)["model"]["source"] == resolved

    def error(source):
        response = post(source)
        assert response.status_code == 400, source
        return response.json()["errors"]["model.source"][0].replace(repr(source), "SOURCE")

    assert error(theirs.reference) == error("model:999999")  # another team's model: as if it did not exist
    for bad in ("hf:/etc/passwd", "hf:../../x", "hf:org/name@../../etc", "hf:org", "hf:", "model:", "Qwen/Qwen2.5-0.5B",
                f"hf:{alpha_files['checkpoint']}"):
        assert "hf:org/name" in error(bad) and "model:ID" in error(bad)
    stored = Run.objects.create(team=lab.team, name="stored", created_by=lab.owner,
                                config=validate_run_config({"model": {"source": theirs.reference}}).model_dump(mode="json"))
    with pytest.raises(InputError, match="no registered model"):
        resolve_inputs(stored)
    assert _opened == []


def test_a_folder_model_resolves_to_its_folder_and_never_out_of_its_root(lab, tmp_path, settings):
    from lab.models import RegisteredModel

    root, outside = tmp_path / "model-root", tmp_path / "elsewhere"
    for folder in (root / "qwen", outside):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    settings.LAB_MODEL_ROOTS = {"shared": str(root)}
    model = RegisteredModel.objects.create(team=lab.team, name="local", kind="folder", root="shared", folder="qwen")
    run = Run.objects.create(team=lab.team, name="on-folder", created_by=lab.owner,
                             config=validate_run_config({"model": {"source": model.reference}}).model_dump(mode="json"))
    assert resolve_inputs(run)["model"]["source"] == str(root / "qwen")
    (root / "qwen-link").symlink_to(outside)  # the folder was swapped for a symlink out of the root after registration
    RegisteredModel.objects.filter(id=model.id).update(folder="qwen-link")
    with pytest.raises(InputError, match="outside its model root"):
        resolve_inputs(run)
    RegisteredModel.objects.filter(id=model.id).update(folder="../elsewhere")
    with pytest.raises(InputError, match="model.source"):
        resolve_inputs(run)
    settings.LAB_MODEL_ROOTS = {}
    RegisteredModel.objects.filter(id=model.id).update(folder="qwen")
    with pytest.raises(InputError, match="no model root"):
        resolve_inputs(run)
