"""Benchmark results as a table: run × checkpoint (step) × benchmark, with pass@1, cons@k and samples."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Case, F, Q, QuerySet, When

from lab.models import EvalResult


@dataclass
class BenchmarkRow:
    run_id: int
    run_name: str
    step: int
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)  # benchmark → metric → value
    samples: dict[str, int] = field(default_factory=dict)  # benchmark → n


@dataclass
class BenchmarkTable:
    benchmarks: list[str]
    metrics: dict[str, list[str]]  # benchmark → metrics seen, pass@1 first
    rows: list[BenchmarkRow]


def _metric_order(metric: str) -> tuple[int, str]:
    return (0 if metric == "pass@1" else 1 if metric.startswith("cons@") else 2, metric)


def benchmark_table(runs: QuerySet, *, limit_rows: int = 500) -> BenchmarkTable:
    """Scores of `runs` by (run, step). An evaluation job (a child run of kind "evaluate",
    lab.services.evaluations) counts as its parent's row at the checkpoint step it evaluated."""
    eval_job = Q(run__kind="evaluate", run__parent__isnull=False, run__parent_step__isnull=False)
    results = (
        EvalResult.objects.filter(Q(run__in=runs) | (eval_job & Q(run__parent__in=runs)))
        .annotate(
            owner_id=Case(When(eval_job, then=F("run__parent_id")), default=F("run_id")),
            owner_name=Case(When(eval_job, then=F("run__parent__name")), default=F("run__name")),
            owner_created=Case(When(eval_job, then=F("run__parent__created_at")), default=F("run__created_at")),
            owner_step=Case(When(eval_job, then=F("run__parent_step")), default=F("step")),
        )
        .order_by("-owner_created", "owner_id", "owner_step", "seq")
        .values_list("owner_id", "owner_name", "owner_step", "benchmark", "metric", "value", "n")
    )
    rows: dict[tuple[int, int], BenchmarkRow] = {}
    metrics: dict[str, set[str]] = {}
    for run_id, run_name, step, benchmark, metric, value, n in results.iterator(chunk_size=2000):
        key = (run_id, step)
        if key not in rows:
            if len(rows) >= limit_rows:
                continue
            rows[key] = BenchmarkRow(run_id=run_id, run_name=run_name, step=step)
        row = rows[key]
        row.scores.setdefault(benchmark, {})[metric] = value
        row.samples[benchmark] = max(row.samples.get(benchmark, 0), n)
        metrics.setdefault(benchmark, set()).add(metric)
    ordered = {b: sorted(m, key=_metric_order) for b, m in sorted(metrics.items())}
    return BenchmarkTable(benchmarks=list(ordered), metrics=ordered, rows=list(rows.values()))


HEADLINE_METRICS = ("pass@1", "accuracy")  # the number a benchmark's chart draws, first found


def headline_metric(table: BenchmarkTable, benchmark: str) -> str:
    seen = table.metrics.get(benchmark, [])
    return next((m for m in HEADLINE_METRICS if m in seen), seen[0] if seen else "")


def benchmark_chart(table: BenchmarkTable, benchmark: str) -> dict:
    """One benchmark across runs and checkpoints, for a chart: x = step, one line per run (its headline
    metric, steps ascending). Plain JSON for json_script; names are data, escaped by the page's script."""
    metric = headline_metric(table, benchmark)
    series: dict[int, dict] = {}
    for row in table.rows:
        value = row.scores.get(benchmark, {}).get(metric)
        if value is None:
            continue
        line = series.setdefault(row.run_id, {"name": f"{row.run_name} (#{row.run_id})", "run_id": row.run_id, "x": [], "y": []})
        line["x"].append(row.step)
        line["y"].append(value)
    for line in series.values():  # the table orders a run's rows by step already; keep it true regardless
        points = sorted(zip(line["x"], line["y"]))
        line["x"], line["y"] = [p[0] for p in points], [p[1] for p in points]
    return {"benchmark": benchmark, "metric": metric, "series": list(series.values())}
