"""Migration 0014 rewrites stored runs into today's names (kind rejection_sampling, the sampling section, the
run's precision) so a run stored before still loads, validates and shows."""
import importlib

import pytest

from r1model.train.config import config_warnings, validate_run_config

migration = importlib.import_module("lab.migrations.0014_rejection_sampling_names")

OLD = {"kind": "rollout", "model": {"source": "run:3@20", "overrides": {"precision": "fp8"}},
       "grpo": {"group_size": 16, "prompts_per_step": 32, "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 128,
                "rollout_engine": "builtin"}, "precision": "fp32"}


def test_a_stored_old_config_is_rewritten_into_todays_fields():
    config = {**OLD, "grpo": dict(OLD["grpo"]), "model": {**OLD["model"], "overrides": {"precision": "fp8"}}}
    assert migration._upgrade(config) is True
    assert config["kind"] == "rejection_sampling" and config["precision"] == "fp8"
    assert config["grpo"] == {"group_size": 16, "prompts_per_step": 32}
    assert config["sampling"] == {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 128, "engine": "builtin"}
    assert config["model"]["overrides"] == {}
    loaded = validate_run_config(config)  # loads with no note left: nothing in the old spelling
    assert loaded.kind == "rejection_sampling" and config_warnings(loaded) == []
    assert migration._upgrade(config) is False  # a second pass changes nothing


@pytest.mark.django_db
def test_the_migration_rewrites_stored_runs():
    from django.apps import apps

    from lab.models import Run, Team

    team = Team.objects.create(name="Old lab", slug="old-lab")
    old = Run.objects.create(team=team, name="rs", kind="rollout", config={**OLD, "grpo": dict(OLD["grpo"])})
    new = Run.objects.create(team=team, name="grpo", kind="grpo", config={"kind": "grpo", "sampling": {"temperature": 1.0}})
    migration.forwards(apps, None)
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.kind == "rejection_sampling" and old.config["sampling"]["temperature"] == 0.6
    assert new.config == {"kind": "grpo", "sampling": {"temperature": 1.0}}
