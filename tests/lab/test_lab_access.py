"""Team isolation: every page and API path answers 404 to a user of another team; roles limit teammates."""
import pytest
from django.urls import reverse

from lab import site_urls
from lab.models import Membership, Role, Run
from lab.services.tokens import token_create


def _params(lab):
    return {"run_id": lab.run.id, "trace_id": lab.trace.id, "dataset_id": lab.dataset.id, "group_id": lab.trace.group_id}


def _object_paths(lab, patterns):
    """Every URL pattern that names an object, filled with the first team's objects."""
    params = _params(lab)
    for pattern in patterns:
        converters = list(pattern.pattern.converters)
        if converters:
            yield pattern, reverse(pattern.name, kwargs={name: params[name] for name in converters})


def _methods(pattern):
    return getattr(pattern.callback, "api_methods", ("GET", "POST"))


def test_outsider_gets_404_on_every_page_naming_an_object(lab, outsider_client):
    walked = 0
    for pattern, path in _object_paths(lab, site_urls.pages_urls):
        codes = {method: getattr(outsider_client, method)(path).status_code for method in ("get", "post")}
        # a method the view does not take answers 405 whatever the object; the one it takes must say 404
        assert set(codes.values()) <= {404, 405} and 404 in codes.values(), (path, codes)
        walked += 1
    assert walked >= 14


@pytest.mark.parametrize(
    "path",
    ["/runs/compare/?runs={run}", "/runs/new/?fork={run}", "/runs/new/?parent={run}&step=20", "/runs/{run}/prompt/?prompt_id=p-0",
     "/runs/{run}/group/?group_id=g-5-0"],
)
def test_outsider_gets_404_when_a_query_names_another_teams_run(lab, outsider_client, path):
    assert outsider_client.get(path.format(run=lab.run.id)).status_code == 404


def test_outsider_cannot_switch_into_another_team_or_parent_a_run_on_its_run(lab, outsider_client):
    assert outsider_client.post("/team/switch", {"team": lab.team.id}).status_code == 404
    response = outsider_client.post("/runs/new/", {"name": "x", "queue": "cpu", "parent": lab.run.id})
    assert response.status_code == 404


def test_outsider_gets_404_on_every_api_path_naming_an_object(lab, client):
    token = token_create(user=lab.outsider)
    walked = 0
    for pattern, path in _object_paths(lab, site_urls.api_urls):
        for method in _methods(pattern):
            response = client.generic(method, path, data=b"{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
            assert response.status_code == 404, (method, path, response.status_code, response.content[:200])
        walked += 1
    assert walked >= 10


def test_outsider_gets_404_naming_another_team_in_the_api(lab, client):
    token = token_create(user=lab.outsider)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    for path in ("/api/v1/runs?team=alpha", "/api/v1/datasets?team=alpha", "/api/v1/benchmarks?team=alpha"):
        assert client.get(path, **auth).status_code == 404
    response = client.post("/api/v1/runs", {"team": "alpha", "name": "x", "config": {}}, content_type="application/json", **auth)
    assert response.status_code == 404


def test_outsiders_lists_show_only_their_own_team(lab, outsider_client):
    for path in ("/", "/runs/", "/datasets/", "/review/", "/benchmarks/"):
        body = outsider_client.get(path).content.decode()
        assert "alpha-run" not in body and "adds" not in body, path


def test_reviewer_reads_and_annotates_but_cannot_change_runs(lab, teammate_client):
    run = lab.run
    assert teammate_client.get(f"/runs/{run.id}/").status_code == 200
    assert teammate_client.post(f"/runs/{run.id}/resume").status_code == 403
    assert teammate_client.get("/runs/new/").status_code == 403
    assert teammate_client.post("/datasets/new/", {"kind": "generator"}).status_code == 403
    response = teammate_client.post(f"/traces/{lab.trace.id}/annotate", {"rating": "bad", "labels": "x"})
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "failed"


def test_viewer_cannot_annotate(lab, client):
    from tests.lab.conftest import make_user

    viewer = make_user("viewer")
    Membership.objects.create(team=lab.team, user=viewer, role=Role.VIEWER)
    client.force_login(viewer)
    assert client.get(f"/traces/{lab.trace.id}/").status_code == 200
    assert client.post(f"/traces/{lab.trace.id}/annotate", {"rating": "good"}).status_code == 403


def test_anonymous_pages_redirect_to_login_and_objects_stay_hidden(lab, client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get(f"/runs/{lab.run.id}/").status_code == 302
    assert client.get(f"/api/v1/runs/{lab.run.id}").status_code == 401
    assert Run.objects.get(id=lab.run.id).status == "failed"
