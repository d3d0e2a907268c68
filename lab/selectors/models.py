"""The Models page: a team's registered models and its runs' checkpoints as models, with their lineage
(base model → run → checkpoint → next run). Server paths never leave here: a folder model shows its root's
name, a run whose model.source is a legacy path shows no base."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Max

from lab.models import CheckpointRecord, RegisteredModel, Run, Team
from lab.services.references import CHECKPOINT_REF, HUB_PREFIX, MODEL_REF, checkpoint_ref
from r1model.model.config import PRESETS

MAX_CHECKPOINT_RUNS = 200  # the most recent runs with checkpoints shown
MAX_RUNS_LISTED = 10  # runs named per model (the count says how many in all)


@dataclass
class Base:
    """Where a run's model came from, as the page shows it."""

    kind: str  # preset | checkpoint | model | hub | unknown
    label: str
    run_id: int | None = None
    model_id: int | None = None


@dataclass
class ModelRow:
    model: RegisteredModel
    runs: list = field(default_factory=list)
    run_count: int = 0


@dataclass
class CheckpointRow:
    run: Run
    step: int
    latest: bool
    base: Base
    children: list = field(default_factory=list)

    @property
    def reference(self) -> str:
        return checkpoint_ref(self.run.id, self.step)


def human_count(value) -> str:
    """1234567 → '1.23M'; None → '—'."""
    if not isinstance(value, int):
        return "—"
    for size, unit in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return str(value)


def _source(run: Run) -> str | None:
    model = (run.config or {}).get("model")
    source = model.get("source") if isinstance(model, dict) else None
    return source if isinstance(source, str) else None


def base_of(run: Run, names: dict[int, str]) -> Base:
    source = _source(run)
    if source is None:
        return Base("preset", "tiny (default)") if not run.config else Base("unknown", "—")
    if source in PRESETS:
        return Base("preset", f"preset {source}")
    match = CHECKPOINT_REF.fullmatch(source)
    if match is not None:
        return Base("checkpoint", source, run_id=int(match["run"]))
    match = MODEL_REF.fullmatch(source)
    if match is not None and int(match["id"]) in names:
        return Base("model", f"{names[int(match['id'])]} ({source})", model_id=int(match["id"]))
    if source.startswith(HUB_PREFIX):
        return Base("hub", source)
    return Base("unknown", "—")  # a legacy path or a deleted model: never shown


def _runs_by_source(team: Team, prefix: str) -> dict[str, list[Run]]:
    by_source: dict[str, list[Run]] = defaultdict(list)
    runs = (Run.objects.filter(team=team, config__model__source__startswith=prefix)
            .only("id", "name", "status", "kind", "config", "parent_id", "parent_step", "created_at").order_by("-id"))
    for run in runs:
        by_source[_source(run) or ""].append(run)
    return by_source


def registered_models(team: Team) -> list[ModelRow]:
    used = _runs_by_source(team, "model:")
    rows = []
    for model in RegisteredModel.objects.filter(team=team).select_related("created_by").order_by("name"):
        runs = used.get(model.reference, [])
        rows.append(ModelRow(model=model, runs=runs[:MAX_RUNS_LISTED], run_count=len(runs)))
    return rows


def checkpoint_models(team: Team) -> list[CheckpointRow]:
    """Each run's latest checkpoint, and every other checkpoint a run started from."""
    runs = list(Run.objects.filter(team=team).annotate(latest_step=Max("checkpoints__step"))
                .filter(latest_step__isnull=False).order_by("-id")[:MAX_CHECKPOINT_RUNS])
    if not runs:
        return []
    names = dict(RegisteredModel.objects.filter(team=team).values_list("id", "name"))
    children: dict[tuple[int, int], dict[int, Run]] = defaultdict(dict)
    run_ids = [run.id for run in runs]
    for child in (Run.objects.filter(team=team, parent_id__in=run_ids, parent_step__isnull=False)
                  .only("id", "name", "status", "kind", "parent_id", "parent_step").order_by("id")):
        children[(child.parent_id, child.parent_step)][child.id] = child
    for source, started in _runs_by_source(team, "run:").items():
        match = CHECKPOINT_REF.fullmatch(source)
        if match is not None and match["step"] is not None:
            for child in started:
                children[(int(match["run"]), int(match["step"]))].setdefault(child.id, child)
    steps: dict[int, set[int]] = defaultdict(set)
    for run_id, step in children:
        steps[run_id].add(step)
    recorded = set(CheckpointRecord.objects.filter(run_id__in=run_ids).values_list("run_id", "step"))
    rows = []
    for run in runs:
        base = base_of(run, names)
        wanted = {run.latest_step} | {s for s in steps.get(run.id, ()) if (run.id, s) in recorded}
        for step in sorted(wanted, reverse=True):
            kids = sorted(children.get((run.id, step), {}).values(), key=lambda r: r.id)
            rows.append(CheckpointRow(run=run, step=step, latest=step == run.latest_step, base=base, children=kids))
    return rows
