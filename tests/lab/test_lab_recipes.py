"""Recipes in the lab: the new-run page lists every trainer recipe with what it needs; a run starts from
one with the user's checkpoint or dataset on top, and a recipe missing its input is refused by field."""
import html
from html.parser import HTMLParser

import pytest

from lab.models import Run
from lab.services import runs as run_services
from lab.services.run_config import recipe_config
from lab.services.tokens import token_create
from r1model.train.recipes import RECIPES

ALL = ("aha-mini", "r1-zero", "cold-start-sft", "rejection-sampling", "distill", "evaluate")


@pytest.fixture
def no_dispatch(monkeypatch):
    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)


def test_new_run_page_lists_every_recipe_with_its_description_and_needs(owner_client, lab):
    page = html.unescape(owner_client.get("/runs/new/").content.decode())
    for name in ALL:
        assert f'href="?recipe={name}"' in page and RECIPES[name].description in page
        assert f'<option value="{name}"' in page  # and it can be chosen in the form
    assert "Needs a checkpoint of one of this team's runs (run:ID@STEP)" in page and "(model.source)" in page and "(datasets)" in page


def test_a_recipe_link_fills_the_form_with_its_config(owner_client, lab):
    page = owner_client.get("/runs/new/?recipe=rejection-sampling").content.decode()
    assert '<option value="rejection-sampling" selected' in page
    assert '<option value="rejection_sampling" selected' in page  # cfg-kind from the recipe's config


def test_form_starts_distillation_on_a_saved_dataset(owner_client, lab, no_dispatch):
    response = owner_client.post("/runs/new/", {"name": "student", "queue": "cpu", "recipe": "distill", "quick": "on",
                                                "dataset": lab.dataset.id})
    assert response.status_code == 302, response.content.decode()[:2000]
    run = Run.objects.get(name="student")
    assert run.recipe == "distill" and run.quick and run.kind == "sft"
    assert [d["path"] for d in run.config["datasets"]] == [f"dataset:{lab.dataset.id}"]
    assert run.config["model"]["overrides"]["num_hidden_layers"] == 2  # the recipe's small student
    assert run.config["total_steps"] == 5  # --quick


def test_form_refuses_a_recipe_without_its_checkpoint_naming_the_field(owner_client, lab, no_dispatch):
    response = owner_client.post("/runs/new/", {"name": "judge", "queue": "cpu", "recipe": "evaluate"})
    assert response.status_code == 200
    assert "recipe evaluate needs a checkpoint of one of this team's runs (run:ID@STEP)" in html.unescape(response.content.decode())
    assert not Run.objects.filter(name="judge").exists()


def test_api_creates_a_run_from_a_recipe_with_a_checkpoint_and_refuses_one_without(lab, client, no_dispatch):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=lab.owner)}"}
    body = {"name": "resample", "recipe": "rejection-sampling", "quick": True, "config": {"model": {"source": f"run:{lab.run.id}@{lab.checkpoint.step}"}}}
    response = client.post("/api/v1/runs", body, content_type="application/json", **auth)
    assert response.status_code == 201, response.content.decode()
    run = Run.objects.get(id=response.json()["id"])
    assert run.kind == "rejection_sampling" and run.recipe == "rejection-sampling"
    assert run.config["model"]["source"] == f"run:{lab.run.id}@{lab.checkpoint.step}" and run.config["grpo"]["group_size"] == 4
    missing = client.post("/api/v1/runs", {"name": "no-model", "recipe": "evaluate"}, content_type="application/json", **auth)
    assert missing.status_code == 400 and "model.source" in missing.json()["errors"]
    no_data = client.post("/api/v1/runs", {"name": "no-data", "recipe": "distill"}, content_type="application/json", **auth)
    assert no_data.status_code == 400 and "datasets" in no_data.json()["errors"]
    assert not Run.objects.filter(name__in=["no-model", "no-data"]).exists()


class _FormFields(HTMLParser):
    """The fields a browser would submit from the page's run form (inputs, checked boxes, selected options)."""

    def __init__(self):
        super().__init__()
        self.fields, self._select, self._textarea, self._in_form = {}, None, None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and "run-form" in a.get("class", ""):
            self._in_form = True
        if not self._in_form:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.fields[a["name"]] = a.get("value", "on")
            else:
                self.fields[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and "selected" in a:
            self.fields[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a.get("name")
            self.fields[self._textarea] = ""

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._in_form = False


def _form_of(page: str) -> dict:
    parser = _FormFields()
    parser.feed(page)
    return parser.fields


def test_a_recipe_from_a_runs_checkpoint_runs_with_the_form_as_shown_and_edited(owner_client, lab, no_dispatch):
    """Run page → "start from this checkpoint" → pick recipe evaluate → edit a field → queue: the run is the
    recipe's, on the parent's checkpoint, with the edit — no "apply as overrides" box needed."""
    parent = lab.checkpoint.run
    page = owner_client.get(f"/runs/new/?parent={parent.id}&step={lab.checkpoint.step}").content.decode()
    assert f"?recipe=evaluate&amp;parent={parent.id}&amp;step={lab.checkpoint.step}" in page
    page = owner_client.get(f"/runs/new/?recipe=evaluate&parent={parent.id}&step={lab.checkpoint.step}").content.decode()
    fields = _form_of(page)
    assert fields["recipe"] == "evaluate" and fields["cfg-kind"] == "evaluate" and "override_recipe" not in fields
    assert fields["cfg-model.source"] == f"run:{lab.run.id}@{lab.checkpoint.step}"
    fields["name"] = "judge-ckpt"
    fields["cfg-seed"] = "7"
    response = owner_client.post("/runs/new/", fields)
    assert response.status_code == 302, html.unescape(response.content.decode())[-3000:]
    run = Run.objects.get(name="judge-ckpt")
    assert run.recipe == "evaluate" and run.kind == "evaluate" and run.parent_id == parent.id
    assert run.config["model"]["source"] == f"run:{lab.run.id}@{lab.checkpoint.step}" and run.config["seed"] == 7


def test_a_recipe_chosen_in_the_form_alone_takes_the_fields_the_user_changed(owner_client, lab, no_dispatch):
    """The recipe picked in the drop-down of a blank form: the fields hold the schema defaults, not the
    recipe's; the ones the user changed (the checkpoint) apply on top of the recipe, the others do not
    override it (kind stays the recipe's)."""
    fields = _form_of(owner_client.get("/runs/new/").content.decode())
    assert fields["cfg-kind"] == "grpo" and not fields.get("config_from")
    fields.update(name="rs-blank", recipe="rejection-sampling", **{"cfg-model.source": f"run:{lab.run.id}@{lab.checkpoint.step}"})
    response = owner_client.post("/runs/new/", fields)
    assert response.status_code == 302, html.unescape(response.content.decode())[-2000:]
    run = Run.objects.get(name="rs-blank")
    assert run.kind == "rejection_sampling" and run.config["model"]["source"] == f"run:{lab.run.id}@{lab.checkpoint.step}"


def test_a_fork_runs_what_the_form_shows_with_the_users_edits(owner_client, lab, no_dispatch):
    """Fork a recipe run → change the seed → queue: the fork keeps its source's config and takes the new seed
    (the recipe used to win over the edited form unless a tick box was ticked)."""
    source = Run.objects.create(team=lab.team, name="aha", recipe="aha-mini", quick=True, created_by=lab.owner,
                                config=recipe_config("aha-mini", quick=True, overrides={"seed": 3, "total_steps": 9}))
    fields = _form_of(owner_client.get(f"/runs/new/?fork={source.id}").content.decode())
    assert fields["cfg-seed"] == "3" and fields["recipe"] == "aha-mini"
    fields.update({"name": "aha fork", "cfg-seed": "11"})
    response = owner_client.post("/runs/new/", fields)
    assert response.status_code == 302, html.unescape(response.content.decode())[-2000:]
    fork = Run.objects.get(name="aha fork")
    assert fork.config["seed"] == 11 and fork.config["total_steps"] == 9 and fork.recipe == "aha-mini"


def test_a_quick_recipe_from_its_link_keeps_its_scaling_and_takes_only_the_edits(owner_client, lab, no_dispatch):
    """The form shows the full recipe; ticking quick and editing one field must give the quick recipe with
    that edit, not the full-size values the unedited fields hold."""
    fields = _form_of(owner_client.get("/runs/new/?recipe=aha-mini").content.decode())
    fields.update({"name": "aha-quick", "quick": "on", "cfg-seed": "5"})
    response = owner_client.post("/runs/new/", fields)
    assert response.status_code == 302, html.unescape(response.content.decode())[-2000:]
    run = Run.objects.get(name="aha-quick")
    quick = RECIPES["aha-mini"].build(True)
    assert run.quick and run.config["total_steps"] == quick["total_steps"] == 2
    assert run.config["base"]["steps"] == quick["base"]["steps"]
    assert run.config["grpo"]["group_size"] == quick["grpo"]["group_size"] and run.config["seed"] == 5
