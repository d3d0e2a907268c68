"""Stored run configs name their inputs by reference (lab.services.references), not by server path.

A model.source that is a checkpoint of a run of the same team becomes run:ID@STEP (an evaluation child's
own copy, <run_dir>/input-checkpoint, becomes its parent's checkpoint); a dataset path that is a dataset of
the same team becomes dataset:ID. Anything else is left as it was: such a run fails at start with a message
naming the field, and forking it asks for a reference.
"""
from django.db import migrations


def _to_references(apps, schema_editor):
    Run = apps.get_model("lab", "Run")
    CheckpointRecord = apps.get_model("lab", "CheckpointRecord")
    Dataset = apps.get_model("lab", "Dataset")
    for run in Run.objects.exclude(config={}).iterator():
        config, changed = run.config, False
        if not isinstance(config, dict):
            continue
        model = config.get("model") if isinstance(config.get("model"), dict) else {}
        source = model.get("source")
        if isinstance(source, str) and "/" in source:
            if run.parent_id and run.parent_step is not None and source.endswith("/input-checkpoint"):
                model["source"], changed = f"run:{run.parent_id}@{run.parent_step}", True
            else:
                record = CheckpointRecord.objects.filter(path=source, run__team_id=run.team_id).first()
                if record is not None:
                    model["source"], changed = f"run:{record.run_id}@{record.step}", True
        specs = list(config.get("datasets") or []) + list((config.get("base") or {}).get("datasets") or [])
        for spec in specs:
            path = spec.get("path") if isinstance(spec, dict) else None
            if isinstance(path, str) and "/" in path:
                dataset = Dataset.objects.filter(path=path, team_id=run.team_id).order_by("id").first()
                if dataset is not None:
                    spec["path"], changed = f"dataset:{dataset.id}", True
        if changed:
            Run.objects.filter(id=run.id).update(config=config)


class Migration(migrations.Migration):
    dependencies = [("lab", "0006_metric_summaries")]
    operations = [migrations.RunPython(_to_references, migrations.RunPython.noop)]
