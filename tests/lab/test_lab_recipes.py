"""Recipes in the lab: the new-run page lists every trainer recipe with what it needs; a run starts from
one with the user's checkpoint or dataset on top, and a recipe missing its input is refused by field."""
import html

import pytest

from lab.models import Run
from lab.services import runs as run_services
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
    assert "Needs a model checkpoint folder" in page and "(model.source)" in page and "(datasets)" in page


def test_a_recipe_link_fills_the_form_with_its_config(owner_client, lab):
    page = owner_client.get("/runs/new/?recipe=rejection-sampling").content.decode()
    assert '<option value="rejection-sampling" selected' in page
    assert '<option value="rollout" selected' in page  # cfg-kind from the recipe's config


def test_form_starts_distillation_on_a_saved_dataset(owner_client, lab, no_dispatch):
    response = owner_client.post("/runs/new/", {"name": "student", "queue": "cpu", "recipe": "distill", "quick": "on",
                                                "dataset": lab.dataset.id})
    assert response.status_code == 302, response.content.decode()[:2000]
    run = Run.objects.get(name="student")
    assert run.recipe == "distill" and run.quick and run.kind == "sft"
    assert [d["path"] for d in run.config["datasets"]] == [lab.dataset.path]
    assert run.config["model"]["overrides"]["num_hidden_layers"] == 2  # the recipe's small student
    assert run.config["total_steps"] == 5  # --quick


def test_form_refuses_a_recipe_without_its_checkpoint_naming_the_field(owner_client, lab, no_dispatch):
    response = owner_client.post("/runs/new/", {"name": "judge", "queue": "cpu", "recipe": "evaluate"})
    assert response.status_code == 200
    assert "recipe evaluate needs a model checkpoint folder" in html.unescape(response.content.decode())
    assert not Run.objects.filter(name="judge").exists()


def test_api_creates_a_run_from_a_recipe_with_a_checkpoint_and_refuses_one_without(lab, client, no_dispatch):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=lab.owner)}"}
    body = {"name": "resample", "recipe": "rejection-sampling", "quick": True, "config": {"model": {"source": lab.checkpoint.path}}}
    response = client.post("/api/v1/runs", body, content_type="application/json", **auth)
    assert response.status_code == 201, response.content.decode()
    run = Run.objects.get(id=response.json()["id"])
    assert run.kind == "rollout" and run.recipe == "rejection-sampling"
    assert run.config["model"]["source"] == lab.checkpoint.path and run.config["grpo"]["group_size"] == 4
    missing = client.post("/api/v1/runs", {"name": "no-model", "recipe": "evaluate"}, content_type="application/json", **auth)
    assert missing.status_code == 400 and "model.source" in missing.json()["errors"]
    no_data = client.post("/api/v1/runs", {"name": "no-data", "recipe": "distill"}, content_type="application/json", **auth)
    assert no_data.status_code == 400 and "datasets" in no_data.json()["errors"]
    assert not Run.objects.filter(name__in=["no-model", "no-data"]).exists()
