"""One word, one meaning: the job that samples and keeps accepted completions is `rejection_sampling` (was kind
`rollout`); sampling settings live in the config's `sampling` section (were in `grpo`); FP8 is the run's
`precision` (was model.overrides.precision). Stored runs are rewritten to today's spelling; the trainer
also still loads the old one (r1model.train.config.upgrade_config)."""
from django.db import migrations, models

MOVED = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "max_new_tokens": "max_new_tokens",
         "rollout_engine": "engine", "vllm_mode": "vllm_mode", "vllm_python": "vllm_python"}


def _upgrade(config: dict) -> bool:
    changed = False
    if config.get("kind") == "rollout":
        config["kind"], changed = "rejection_sampling", True
    grpo = config.get("grpo")
    if isinstance(grpo, dict):
        sampling = config.setdefault("sampling", {}) if any(k in grpo for k in MOVED) else None
        for old, new in MOVED.items():
            if old in grpo:
                sampling.setdefault(new, grpo.pop(old))
                changed = True
    model = config.get("model")
    overrides = model.get("overrides") if isinstance(model, dict) else None
    if isinstance(overrides, dict) and "precision" in overrides:
        if overrides.pop("precision") == "fp8" and config.get("precision", "fp32") == "fp32":
            config["precision"] = "fp8"
        changed = True
    return changed


def forwards(apps, schema_editor):
    Run = apps.get_model("lab", "Run")
    Run.objects.filter(kind="rollout").update(kind="rejection_sampling")
    for run in Run.objects.exclude(config={}).iterator():
        if isinstance(run.config, dict) and _upgrade(run.config):
            Run.objects.filter(id=run.id).update(config=run.config)


class Migration(migrations.Migration):
    dependencies = [("lab", "0013_run_chain_stage_result")]
    operations = [
        migrations.AlterField("run", "kind", models.CharField(default="grpo", max_length=24)),
        migrations.AlterField("trace", "source", models.CharField(default="train", max_length=24)),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
