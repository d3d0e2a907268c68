"""The researcher's pages (issue 14 item 9): the dashboard in sections, a new-run form with its essentials
first and the rest folded by section, one name, what differs from the recipe marked; compare with several
metrics and a config diff; the empty lab's demo, quick or full."""
import html
import re

import pytest

from lab.models import Metric, Run
from lab.selectors.compare import config_diff
from lab.selectors.dashboard import dashboard_panels, dashboard_sections
from lab.services import runs as run_services
from lab.services.synthetic import CORE_METRICS


@pytest.fixture
def no_dispatch(monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)


def test_dashboard_sections_put_r1s_signature_first_then_policy_health_then_systems():
    panels = dashboard_panels(list(CORE_METRICS) + ["my/custom"], evaluations=True)
    assert [s["key"] for s in dashboard_sections(panels)] == ["signature", "health", "systems", "evaluation", "other"]
    by_section: dict[str, list[str]] = {}
    for panel in panels:
        by_section.setdefault(panel["section"], []).append(panel["key"])
    assert by_section["signature"] == ["accuracy", "length", "reward", "format"]
    assert by_section["health"][:4] == ["kl", "entropy", "clip", "zero_std"]
    assert by_section["systems"] == ["time", "throughput", "moe"]
    assert [p["section"] for p in panels] == sorted((p["section"] for p in panels), key=[
        "signature", "health", "systems", "evaluation", "pretraining", "other"].index)


def _essentials_and_sections(page: str) -> tuple[str, str]:
    form = page[page.index('class="run-form"'):]
    cut = form.index("<details")
    return form[:cut], form[cut:]


def test_new_run_form_shows_the_essentials_first_and_every_other_field_folded_in_its_section(owner_client, lab):
    page = owner_client.get("/runs/new/?recipe=aha-mini").content.decode()
    essentials, rest = _essentials_and_sections(page)
    order = [essentials.index(f'name="{n}"') for n in ("name", "recipe", "cfg-model.source", "dataset", "queue", "quick")]
    assert order == sorted(order)
    for later in ("cfg-seed", "cfg-grpo.learning_rate", "project", "config_json"):
        assert f'name="{later}"' in rest and f'name="{later}"' not in essentials
    assert re.findall(r"<details[^>]*>", rest) and all(" open" not in d for d in re.findall(r"<details[^>]*>", rest))
    assert 'name="cfg-name"' not in page  # one name: the run's
    assert 'name="config_from"' in page and 'name="client_token"' in page


def test_new_run_form_marks_the_fields_that_differ_from_the_recipe(owner_client, lab):
    source = Run.objects.create(team=lab.team, name="tuned", recipe="aha-mini", created_by=lab.owner,
                                config={**_recipe("aha-mini"), "seed": 7})
    page = html.unescape(owner_client.get(f"/runs/new/?fork={source.id}").content.decode())
    differing = re.findall(r'<div class="field[^"]*differs"[^>]*>\s*<label for="id_cfg-([\w.]+)"', page)
    assert differing == ["seed"], differing
    assert "Recipe aha-mini: 0." in page and re.search(r"grpo <span[^>]*>\d+ fields</span> <span class=\"differ-count none\">", page)
    assert re.search(r"General <span[^>]*>\d+ fields</span> <span class=\"differ-count\">1 differs</span>", page)


def _recipe(name):
    from lab.services.run_config import recipe_config

    return recipe_config(name)


def test_the_runs_one_name_fills_its_config_name(owner_client, lab, no_dispatch):
    response = owner_client.post("/runs/new/", {"name": "my aha", "queue": "cpu", "recipe": "aha-mini", "quick": "on",
                                                "config_from": "aha-mini"})
    assert response.status_code == 302, html.unescape(response.content.decode())[-2000:]
    assert Run.objects.get(name="my aha").config["name"] == "my aha"
    owner_client.post("/runs/new/", {"name": "plain", "queue": "cpu", "cfg-kind": "grpo", "cfg-seed": "3"})
    run = Run.objects.get(name="plain")
    assert run.config["name"] == "plain" and run.config["seed"] == 3


def test_compare_overlays_several_metrics_and_lists_the_config_keys_that_differ(owner_client, lab):
    other = Run.objects.create(team=lab.team, name="beta-run", created_by=lab.owner,
                               config={"kind": "grpo", "seed": 1, "grpo": {"learning_rate": 3e-6}})
    lab.run.config = {"kind": "grpo", "seed": 0, "grpo": {"learning_rate": 1e-6}}
    lab.run.save()
    Metric.objects.bulk_create([Metric(run=other, seq=i, step=i, name="reward", value=i) for i in range(5)])
    response = owner_client.get(f"/runs/compare/?runs={lab.run.id},{other.id}&metric=reward&metric=completions/mean_length")
    page = html.unescape(response.content.decode())
    assert response.context["chart_config"]["metrics"] == ["reward", "completions/mean_length"]
    assert [row["key"] for row in response.context["config_diff"]] == ["grpo.learning_rate", "seed"]
    assert "grpo.learning_rate" in page and "1e-06" in page and "3e-06" in page
    assert "kind" not in [row["key"] for row in config_diff([lab.run, other])]  # the same in both: left out


def test_compare_picks_accuracy_and_length_without_metrics_asked(owner_client, lab):
    response = owner_client.get(f"/runs/compare/?runs={lab.run.id}&metric=<b>nope</b>")
    assert response.context["chart_config"]["metrics"] == ["completions/mean_length"]


def test_empty_lab_offers_the_demo_quick_and_full(db, client, no_dispatch):
    from lab.models import Membership, Team
    from tests.lab.conftest import make_user

    user = make_user("newbie")
    team = Team.objects.create(slug="new", name="New")
    Membership.objects.create(team=team, user=user, role="researcher")
    client.force_login(user)
    page = client.get("/").content.decode()
    assert 'name="quick" value="1"' in page and 'name="quick" value="0"' in page
    client.post("/runs/demo", {"quick": "1"})
    client.post("/runs/demo", {"quick": "0"})
    assert sorted(Run.objects.filter(team=team).values_list("quick", flat=True)) == [False, True]
