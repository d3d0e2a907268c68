"""Runs as the overview and the run pages show them."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import (
    Case, Count, ExpressionWrapper, F, FloatField, IntegerField, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value, When,
)
from django.db.models.functions import Cast, Coalesce, Greatest, Least, NullIf
from django.utils import timezone

from lab.models import EvalResult, Run, RunStatus
from lab.models.runs import ACTIVE_STATUSES, StageProgress

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


def team_runs(team_id: int, *, project: str = "", user: str = "", status: str = "", q: str = "", quick: str = "") -> QuerySet:
    """quick: "" both, "hide" no quick (smoke-test) runs, "only" quick runs only."""
    runs = Run.objects.filter(team_id=team_id)
    if quick == "hide":
        runs = runs.filter(quick=False)
    elif quick == "only":
        runs = runs.filter(quick=True)
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


# --- sorting ---------------------------------------------------------------------------------------------
# column → its first direction when clicked (descending for numbers and dates: the biggest first)
SORT_COLUMNS = {"name": "", "status": "", "progress": "-", "created": "-", "compute": "-", "best": "-"}
DEFAULT_SORT = "-created"
# status order, ascending: what is moving first, then waiting, then finished
STATUS_ORDER = (RunStatus.RUNNING, RunStatus.STARTING, RunStatus.CANCELLING, RunStatus.QUEUED,
                RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.COMPLETED)


@dataclass(frozen=True)
class Sort:
    column: str  # a SORT_COLUMNS key
    descending: bool
    benchmark: str = ""  # for column "best"

    @property
    def param(self) -> str:
        key = f"best:{self.benchmark}" if self.column == "best" else self.column
        return f"{'-' if self.descending else ''}{key}"

    def toggled(self, column: str, benchmark: str = "") -> str:
        """The ?sort= value a click on `column`'s header asks for: its first direction, or the other one
        when the table is already sorted by it."""
        if column == self.column and benchmark == self.benchmark:
            return Sort(column, not self.descending, benchmark).param
        return Sort(column, SORT_COLUMNS[column] == "-", benchmark).param


def parse_sort(value: str) -> Sort:
    """`?sort=` → Sort: name, status, progress, created, compute, best:<benchmark>, each with a leading
    "-" for descending; anything else is the default (newest first)."""
    value = (value or "").strip()[:120]
    descending = value.startswith("-")
    key = value.lstrip("-")
    column, _, benchmark = key.partition(":")
    if column not in SORT_COLUMNS or (column == "best") != bool(benchmark):
        return Sort("created", True)
    return Sort(column, descending, benchmark)


def _best_score(benchmark: str):
    """A run's best headline score on `benchmark` (its own results or its evaluation jobs'), NULL if none:
    two correlated subqueries on indexed columns (EvalResult(run, benchmark, …), Run.parent)."""
    scores = EvalResult.objects.filter(benchmark=benchmark, metric__in=PREFERRED_SCORE, value__isnull=False)
    own = scores.filter(run_id=OuterRef("id")).order_by("-value").values("value")[:1]
    jobs = scores.filter(run__parent_id=OuterRef("id"), run__kind="evaluate").order_by("-value").values("value")[:1]
    none = Value(-1.0)
    return NullIf(Greatest(Coalesce(Subquery(own), none), Coalesce(Subquery(jobs), none)), none)


def _progress():
    """StageProgress.progress in SQL (completed = 1; the overall step over the overall total, at most 1)."""
    two_stages = Q(base_steps__gt=0)
    total = Case(When(two_stages, then=F("base_steps") + F("main_steps")), default=F("total_steps"), output_field=IntegerField())
    step = Case(
        When(two_stages & Q(stage="main"), then=F("base_steps") + Least(F("step"), F("main_steps"))),
        When(two_stages, then=Least(F("step"), F("base_steps"))),
        default=F("step"), output_field=IntegerField(),
    )
    return Case(
        When(status=RunStatus.COMPLETED, then=Value(1.0)),
        default=Least(Value(1.0), Cast(step, FloatField()) / NullIf(Cast(total, FloatField()), Value(0.0))),
        output_field=FloatField(),
    )


def sorted_runs(runs: QuerySet, sort: Sort) -> QuerySet:
    """`runs` in `sort`'s order, ties (and runs without a value, always last) newest first."""
    tie = ("-created_at", "-id")
    if sort.column == "created":
        return runs.order_by(*(tie if sort.descending else ("created_at", "id")))
    if sort.column == "name":
        return runs.order_by(F("name").desc() if sort.descending else F("name").asc(), *tie)
    if sort.column == "status":
        ordinal = Case(*(When(status=s, then=Value(i)) for i, s in enumerate(STATUS_ORDER)), default=Value(len(STATUS_ORDER)),
                       output_field=IntegerField())
        runs = runs.alias(_status_order=ordinal)
        key = F("_status_order")
    elif sort.column == "progress":
        runs = runs.alias(_progress=Coalesce(_progress(), Value(0.0)))
        key = F("_progress")
    elif sort.column == "compute":
        # device-seconds: a GPU run's seconds count once per GPU (as the CPU h / GPU h columns)
        runs = runs.alias(_compute=ExpressionWrapper(F("compute_seconds") * Greatest(F("gpu_count"), Value(1)), output_field=FloatField()))
        key = F("_compute")
    else:  # best
        runs = runs.alias(_best=_best_score(sort.benchmark))
        key = F("_best")
    return runs.order_by(key.desc(nulls_last=True) if sort.descending else key.asc(nulls_last=True), *tie)


# --- the team's totals ------------------------------------------------------------------------------------
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class TeamTotals:
    active: int  # starting, running or cancelling
    queued: int
    quick: int  # quick (smoke-test) runs, any status
    cpu_hours_week: float  # compute of the runs active in the last 7 days (see team_totals)
    gpu_hours_week: float


def team_totals(team_id: int, *, now=None) -> TeamTotals:
    """One aggregate query. "This week" is the last 7 days: the lab keeps each run's compute as one total
    (Run.compute_seconds, summed over its attempts), not per day, so the hours are the whole compute of
    every run that was active (or created) in the last 7 days."""
    since = (now or timezone.now()) - WEEK
    recent = Q(last_activity_at__gte=since) | Q(last_activity_at__isnull=True, created_at__gte=since)
    found = Run.objects.filter(team_id=team_id).aggregate(
        active=Count("id", filter=Q(status__in=ACTIVE_STATUSES)),
        queued=Count("id", filter=Q(status=RunStatus.QUEUED)),
        quick=Count("id", filter=Q(quick=True)),
        cpu=Sum("compute_seconds", filter=recent & Q(gpu_count=0)),
        gpu=Sum(ExpressionWrapper(F("compute_seconds") * F("gpu_count"), output_field=FloatField()), filter=recent & Q(gpu_count__gt=0)),
    )
    return TeamTotals(active=found["active"], queued=found["queued"], quick=found["quick"],
                      cpu_hours_week=(found["cpu"] or 0.0) / 3600, gpu_hours_week=(found["gpu"] or 0.0) / 3600)


def best_per_benchmark(runs: QuerySet) -> dict[str, float]:
    """benchmark → the best headline score of any of `runs` (their evaluation jobs' included): the
    overview marks the cells that hold it, on whichever page they are."""
    ids = runs.order_by().values("id")
    eval_job = Q(run__parent_id__in=ids, run__kind="evaluate")
    best = (
        EvalResult.objects.filter(Q(run_id__in=ids) | eval_job, metric__in=PREFERRED_SCORE, value__isnull=False)
        .values("benchmark").annotate(best=Max("value")).order_by()
    )
    return {item["benchmark"]: item["best"] for item in best}


def overview_rows(runs: QuerySet, *, offset: int = 0, limit: int = OVERVIEW_PAGE, sort: Sort | None = None) -> list[RunRow]:
    """One page of runs with their best score per benchmark (two queries, whatever the page size; the
    best scores aggregated in SQL), in `sort`'s order (newest first without one)."""
    ordered = sorted_runs(runs, sort or parse_sort(DEFAULT_SORT))
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
