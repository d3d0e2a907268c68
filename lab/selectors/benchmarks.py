"""Benchmark results as a table: run × checkpoint (step) × benchmark, with pass@1, cons@k and samples."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

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
    results = (
        EvalResult.objects.filter(run__in=runs)
        .order_by("-run__created_at", "run_id", "step", "seq")
        .values_list("run_id", "run__name", "step", "benchmark", "metric", "value", "n")
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
