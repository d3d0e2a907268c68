"""REST API v1: tokens, bearer vs session+CSRF, the resources, OpenAPI document."""
import json
import re

import pytest
from django.test import Client

from lab.models import Annotation, ApiToken, Run, RunStatus
from lab.services import runs as run_services
from lab.services.tokens import token_create


@pytest.fixture
def owner_token(lab):
    return token_create(user=lab.owner)


def _auth(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_token_is_issued_for_a_password_and_stored_only_hashed(lab, client):
    response = client.post("/api/v1/auth/token", {"username": "owner", "password": "owner-password-1"}, content_type="application/json")
    assert response.status_code == 201
    token = response.json()["token"]
    assert not ApiToken.objects.filter(key_hash=token).exists() and ApiToken.objects.filter(user=lab.owner).count() == 1
    assert client.get("/api/v1/teams", **_auth(token)).json()["results"][0]["slug"] == "alpha"


def test_wrong_password_gets_401_and_repeated_failures_get_429(lab, client):
    for _ in range(5):
        response = client.post("/api/v1/auth/token", {"username": "owner", "password": "nope"}, content_type="application/json")
        assert response.status_code == 401
    response = client.post("/api/v1/auth/token", {"username": "owner", "password": "owner-password-1"}, content_type="application/json")
    assert response.status_code == 429


def test_bad_token_is_401(lab, client):
    assert client.get("/api/v1/runs", **_auth("r1lab_nope")).status_code == 401


def test_runs_create_list_get_cancel_resume(lab, client, owner_token, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    response = client.post("/api/v1/runs", {"name": "api-run", "config": {"kind": "grpo", "total_steps": 5}, "queue": "cpu", "project": "zero"}, content_type="application/json", **_auth(owner_token))
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]
    names = [r["name"] for r in client.get("/api/v1/runs", **_auth(owner_token)).json()["results"]]
    assert "api-run" in names and "alpha-run" in names
    detail = client.get(f"/api/v1/runs/{run_id}", **_auth(owner_token)).json()
    assert detail["config"]["total_steps"] == 5 and detail["project"] == "zero"
    assert client.post(f"/api/v1/runs/{run_id}/cancel", **_auth(owner_token)).json()["status"] == RunStatus.CANCELLED
    assert client.post(f"/api/v1/runs/{run_id}/resume", **_auth(owner_token)).json()["status"] == RunStatus.QUEUED


def test_invalid_run_config_is_400_with_errors_by_field(lab, client, owner_token):
    response = client.post("/api/v1/runs", {"name": "x", "config": {"grpo": {"group_size": 0}}}, content_type="application/json", **_auth(owner_token))
    assert response.status_code == 400 and "grpo.group_size" in response.json()["errors"]


def test_reviewer_token_cannot_create_runs_but_can_annotate(lab, client):
    token = token_create(user=lab.teammate)
    assert client.post("/api/v1/runs", {"name": "x", "config": {}}, content_type="application/json", **_auth(token)).status_code == 403
    response = client.post(f"/api/v1/traces/{lab.trace.id}/annotations", {"rating": "flag", "labels": ["loop"], "comment": "c"}, content_type="application/json", **_auth(token))
    assert response.status_code == 201
    assert Annotation.objects.get(trace=lab.trace, user=lab.teammate).rating == "flag"


def test_metrics_names_and_downsampled_series(lab, client, owner_token):
    names = client.get(f"/api/v1/runs/{lab.run.id}/metrics", **_auth(owner_token)).json()["names"]
    assert names == ["completions/mean_length", "reward"]
    data = client.get(f"/api/v1/runs/{lab.run.id}/metrics/series?names=reward&after_step=19", **_auth(owner_token)).json()
    series = data["series"][0]
    assert series["x"] == list(range(20, 30)) and series["raw"] == 10 and series["drawn"] == 10


def test_traces_filter_and_detail(lab, client, owner_token):
    page = client.get(f"/api/v1/runs/{lab.run.id}/traces?status=correct", **_auth(owner_token)).json()
    assert [t["answer"] for t in page["results"]] == ["5"] and page["has_next"] is False
    detail = client.get(f"/api/v1/traces/{lab.trace.id}", **_auth(owner_token)).json()
    assert detail["think"].startswith("wait")
    assert client.get(f"/api/v1/runs/{lab.run.id}/traces?step_min=x", **_auth(owner_token)).status_code == 400


def test_datasets_from_a_generator(lab, client, owner_token):
    response = client.post("/api/v1/datasets", {"name": "api-adds", "task": "addition", "n": 10, "params": {"digits": 2}}, content_type="application/json", **_auth(owner_token))
    assert response.status_code == 201, response.content
    assert response.json()["rows"] == 10
    listed = client.get("/api/v1/datasets", **_auth(owner_token)).json()["results"]
    assert {"api-adds", "adds"} <= {d["name"] for d in listed}


def test_benchmarks_table(lab, client, owner_token):
    table = client.get("/api/v1/benchmarks", **_auth(owner_token)).json()
    assert table["benchmarks"] == ["addition-test"] and table["rows"][0]["scores"]["addition-test"]["pass@1"] == 0.5


def test_session_state_change_needs_csrf_but_bearer_does_not(lab, owner_token, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(lab.owner)
    assert browser.post(f"/api/v1/runs/{lab.run.id}/resume").status_code == 403
    assert Run.objects.get(id=lab.run.id).status == RunStatus.FAILED
    bearer = Client(enforce_csrf_checks=True)
    assert bearer.post(f"/api/v1/runs/{lab.run.id}/resume", **_auth(owner_token)).status_code == 200


def test_openapi_document_lists_every_api_path(client):
    from lab import site_urls

    document = client.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    for pattern in site_urls.api_urls:
        route = "/" + str(pattern.pattern).replace("<int:", "{").replace(">", "}")
        if route.endswith("openapi.json"):
            continue
        assert route in document["paths"], route
    json.dumps(document)


def test_runs_create_asks_for_evaluation_jobs_every_k_steps(lab, client, owner_token, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    body = {"name": "eval-every", "config": {"kind": "grpo", "total_steps": 10}, "eval_every": 5}
    response = client.post("/api/v1/runs", body, content_type="application/json", **_auth(owner_token))
    assert response.status_code == 201, response.content
    assert Run.objects.get(id=response.json()["id"]).eval_every == 5
    bad = client.post("/api/v1/runs", {**body, "eval_every": "often"}, content_type="application/json",
                      **_auth(owner_token))
    assert bad.status_code == 400 and "eval_every" in bad.json()["error"]


def test_the_same_idempotency_key_twice_makes_one_run(lab, client, owner_token, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    post = {"name": "once", "config": {"kind": "grpo", "total_steps": 5}}
    first = client.post("/api/v1/runs", post, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1", **_auth(owner_token))
    again = client.post("/api/v1/runs", post, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1", **_auth(owner_token))
    assert first.status_code == 201 and again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == again.json()["id"] and Run.objects.filter(name="once").count() == 1
    other = client.post("/api/v1/runs", post, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-2", **_auth(owner_token))
    assert other.status_code == 201 and Run.objects.filter(name="once").count() == 2
    assert client.post("/api/v1/runs", post, content_type="application/json", **_auth(owner_token)).status_code == 201


def test_the_new_run_form_submitted_twice_makes_one_run(lab, owner_client, monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)
    page = owner_client.get("/runs/new/").content.decode()
    token = re.search(r'name="client_token" value="([0-9a-f]+)"', page).group(1)
    fields = {"name": "double click", "queue": "cpu", "cfg-kind": "grpo", "client_token": token}
    assert owner_client.post("/runs/new/", fields).status_code == 302
    assert owner_client.post("/runs/new/", fields).status_code == 302
    assert Run.objects.filter(name="double click").count() == 1
