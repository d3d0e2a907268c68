"""Runs as the overview and the run pages show them."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Case, F, Max, Q, QuerySet, When

from lab.models import EvalResult, Run, RunStatus
from lab.models.runs import StageProgress

OVERVIEW_PAGE = 100
PREFERRED_SCORE = ("pass@1", "accuracy")  # the headline number per benchmark
SUMMARY_FIELDS = (
    "id", "team_id", "name", "kind", "recipe", "quick", "queue", "status", "step", "total_steps", "eta_s",
    "compute_seconds", "gpu_count", "created_at", "last_activity_at", "stage", "base_steps", "main_steps",
    "worker__name", "project__name", "created_by__username",
)


class RunSummary(StageProgress):
    """What the runs table shows of a run: plain values from one query (joined names included), no model
    instance, so a page of 1,000 runs costs the rows, not 4,000 model objects."""

    __slots__ = tuple(name.replace("__", "_") for name in SUMMARY_FIELDS)

    def __init__(self, values: tuple):
        for name, value in zip(self.__slots__, values):
            setattr(self, name, value)


@dataclass
class RunRow:
    run: RunSummary
    best: dict[str, float] = field(default_factory=dict)  # benchmark → best headline score

    @property
    def cpu_hours(self) -> float:
        return 0.0 if self.run.gpu_count else self.run.compute_seconds / 3600

    @property
    def gpu_hours(self) -> float:
        return self.run.compute_seconds * self.run.gpu_count / 3600 if self.run.gpu_count else 0.0


def team_runs(team_id: int, *, project: str = "", user: str = "", status: str = "", q: str = "") -> QuerySet:
    runs = Run.objects.filter(team_id=team_id)
    if project:
        runs = runs.filter(project_id=project) if project.isdigit() else runs.filter(project__name=project)
    if user:
        runs = runs.filter(created_by__username=user)
    if status:
        if status == "active":
            runs = runs.filter(status__in=(RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCELLING))
        else:
            runs = runs.filter(status=status)
    if q:
        runs = runs.filter(name__icontains=q)
    return runs


def overview_rows(runs: QuerySet, *, offset: int = 0, limit: int = OVERVIEW_PAGE) -> list[RunRow]:
    """One page of runs with their best score per benchmark (two queries, whatever the page size; the
    best scores aggregated in SQL)."""
    ordered = runs.order_by("-created_at", "-id")
    page = ordered.values_list(*SUMMARY_FIELDS)[offset : offset + limit]
    rows = {values[0]: RunRow(run=RunSummary(values)) for values in page}
    if rows:
        # the page's ids as a subquery: no per-id parameter to prepare (1,000 ids, three times)
        ids = ordered.values("id")[offset : offset + limit]
        # a run's evaluation jobs (child runs of kind "evaluate") score its checkpoints: they count as its own
        eval_job = Q(run__parent_id__in=ids, run__kind="evaluate")
        best = (
            EvalResult.objects.filter(Q(run_id__in=ids) | eval_job, metric__in=PREFERRED_SCORE,
                                      value__isnull=False)
            .annotate(owner=Case(When(eval_job, then=F("run__parent_id")), default=F("run_id")))
            .values("owner", "benchmark")
            .annotate(best=Max("value"))
        )
        for item in best:
            scores = rows[item["owner"]].best
            scores[item["benchmark"]] = max(item["best"], scores.get(item["benchmark"], item["best"]))
    return list(rows.values())


def benchmarks_in(rows: list[RunRow]) -> list[str]:
    return sorted({name for row in rows for name in row.best})


def run_lineage(run: Run, *, limit: int = 20) -> list[Run]:
    """The chain of parents, oldest first, ending with `run` (base → Zero → SFT → RL → distilled)."""
    chain = [run]
    seen = {run.id}
    current = run
    while current.parent_id and len(chain) < limit:
        parent = Run.objects.filter(id=current.parent_id, team_id=run.team_id).only("id", "name", "kind", "status", "parent_id", "parent_step", "team_id").first()
        if parent is None or parent.id in seen:
            break
        chain.append(parent)
        seen.add(parent.id)
        current = parent
    return list(reversed(chain))
