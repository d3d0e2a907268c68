"""lab_import_run: a CLI run directory becomes a lab run; importing again adds only new events."""
import json

import pytest
from django.core.management import CommandError, call_command

from lab.models import CheckpointRecord, Metric, Run, Trace


def _write_run_dir(path, events):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"kind": "grpo", "name": "cli-run", "total_steps": 3}))
    with (path / "events.jsonl").open("a") as handle:
        for event in events:
            handle.write(json.dumps(event) + "\n")


def _events(start, stop):
    out = []
    for seq in range(start, stop):
        out.append({"seq": seq, "type": "metric", "time": 0, "step": seq + 1, "values": {"reward": seq / 10, "kl": 0.01}})
    return out


def test_import_is_idempotent_and_picks_up_appended_events(lab, tmp_path, capsys):
    run_dir = tmp_path / "run-a"
    _write_run_dir(run_dir, _events(0, 2) + [{"seq": 2, "type": "trace", "time": 0, "step": 2, "group_id": "g", "prompt": "p", "completion": "c", "answer": "1", "correct": True, "reward": 1.0}])
    call_command("lab_import_run", str(run_dir), "--team", "alpha", "--project", "cli")
    run = Run.objects.get(team=lab.team, name="cli-run")
    assert run.project.name == "cli" and run.config["total_steps"] == 3
    assert Metric.objects.filter(run=run).count() == 4 and Trace.objects.filter(run=run).count() == 1
    call_command("lab_import_run", str(run_dir), "--team", "alpha")
    assert Run.objects.filter(team=lab.team, name="cli-run").count() == 1
    assert Metric.objects.filter(run=run).count() == 4
    _write_run_dir(run_dir, [{"seq": 3, "type": "checkpoint", "time": 0, "step": 3, "path": str(run_dir / "checkpoints/step-3")},
                             {"seq": 4, "type": "status", "time": 0, "phase": "done", "step": 3, "total_steps": 3}])
    call_command("lab_import_run", str(run_dir), "--team", "alpha")
    run.refresh_from_db()
    assert CheckpointRecord.objects.filter(run=run).count() == 1
    assert run.status == "completed" and run.step == 3 and run.total_steps == 3
    assert "updated run" in capsys.readouterr().out


def test_import_refuses_an_unknown_team_and_a_folder_that_is_not_a_run(lab, tmp_path):
    with pytest.raises(CommandError, match="--team"):
        call_command("lab_import_run", str(tmp_path), "--team", "nope")
    with pytest.raises(CommandError, match="is this a run directory"):
        call_command("lab_import_run", str(tmp_path), "--team", "alpha")
