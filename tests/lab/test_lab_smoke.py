"""Every page renders for a team member."""
import pytest


@pytest.mark.parametrize(
    "path",
    ["/", "/runs/", "/runs/new/", "/datasets/", "/datasets/new/", "/review/", "/benchmarks/", "/workers/"],
)
def test_team_pages_render_for_owner(owner_client, path):
    response = owner_client.get(path)
    assert response.status_code == 200, response.content[:500]


def test_run_pages_render_for_owner(owner_client, lab):
    run, trace = lab.run, lab.trace
    for path in [
        f"/runs/{run.id}/", f"/runs/{run.id}/status", f"/runs/{run.id}/traces/", f"/runs/{run.id}/groups/{trace.group_id}/",
        f"/runs/{run.id}/prompt/?prompt_id={trace.prompt_id}", f"/runs/{run.id}/benchmarks/", f"/traces/{trace.id}/",
        f"/runs/compare/?runs={run.id}", f"/runs/new/?fork={run.id}", f"/runs/new/?parent={run.id}&step=20", f"/datasets/{lab.dataset.id}/",
    ]:
        response = owner_client.get(path)
        assert response.status_code == 200, (path, response.content[:800])
