"""Import a run directory made by the CLI (`python -m r1model train|recipe run … --run-dir D`).

Idempotent: the run is found again by its directory (within the team) and only events not yet stored
are read (lab.services.ingest, idempotent on (run, seq)). Nothing is dispatched: an unfinished
imported run can be resumed from the lab, which continues from its last checkpoint.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from lab.access import require_team_role
from lab.models import Project, Run, RunStatus, Team
from lab.services.run_config import validate_config

EVENTS_FILE = "events.jsonl"
# the trainer's last status phase → the lab's run status
FINAL_PHASES = {"done": RunStatus.COMPLETED, "failed": RunStatus.FAILED, "stopped": RunStatus.CANCELLED}


@dataclass
class ImportResult:
    run: Run
    created: bool
    new_events: int


def _read_config(run_dir: Path) -> tuple[dict, str]:
    path = run_dir / "config.json"
    if not path.exists():
        return {}, f"{path}: missing; imported without a config"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValidationError(f"{path}: not valid JSON ({exc})") from None
    try:
        return validate_config(raw), ""
    except ValidationError as exc:  # an older trainer's config: keep it as written, say so
        return raw, f"{path}: does not validate with this lab's RunConfig ({'; '.join(exc.messages)})"


def run_import(*, run_dir: str | Path, team: Team, user=None, project: Project | None = None, name: str = "") -> ImportResult:
    if user is not None:
        require_team_role(user, team, "write")
    run_dir = Path(run_dir).resolve()
    if not run_dir.is_dir():
        raise ValidationError(f"{run_dir}: not a directory")
    if not (run_dir / EVENTS_FILE).exists() and not (run_dir / "config.json").exists():
        raise ValidationError(f"{run_dir}: neither config.json nor {EVENTS_FILE}; is this a run directory?")
    if project is not None and project.team_id != team.id:
        raise ValidationError("project: not a project of this team")
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(team=team, run_dir=str(run_dir)).first()
        created = run is None
        if created:
            config, note = _read_config(run_dir)
            run = Run.objects.create(
                team=team, project=project, name=(name or config.get("name") or run_dir.name)[:200],
                kind=str(config.get("kind") or "grpo")[:24], config=config, status=RunStatus.RUNNING,
                run_dir=str(run_dir), created_by=user, message=note or f"imported from {run_dir}",
            )
    from lab.services.ingest import ingest_events

    new_events = ingest_events(run, run_dir / EVENTS_FILE)
    run.refresh_from_db()
    # A run the lab itself runs (a worker holds it, or it waits for one) keeps its state.
    if run.worker_id is None and run.status not in (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.CANCELLING):
        status = FINAL_PHASES.get(run.phase, RunStatus.CANCELLED)  # unfinished: resumable from the lab
        Run.objects.filter(id=run.id).update(status=status, finished_at=run.finished_at or timezone.now(), eta_s=None)
        run.refresh_from_db()
    return ImportResult(run=run, created=created, new_events=new_events)
