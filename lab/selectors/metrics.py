"""Metric series for charts: names, and each series downsampled on the server.

A series is cut to at most MAX_POINTS points keeping every bucket's minimum and maximum, so a spike
or a collapse is never smoothed away by the downsampling itself. On SQLite and PostgreSQL the buckets
are computed by the database (only ≤ MAX_POINTS rows reach Python); elsewhere the series is read and
cut with tsdownsample's MinMaxLTTB. Either way one series at a time, never the run's whole history.
"""
from __future__ import annotations

import hashlib

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.db.models import Case, F, Q, When

from lab.models import EvalResult, Metric

MAX_POINTS = 2000
SERIES_CACHE_S = 600
_TABLE = Metric._meta.db_table


def metric_names(run_id: int) -> list[str]:
    """The run's metric names, sorted: a loose index scan (one indexed probe per name), so the cost
    grows with the number of names, not with the number of stored points."""
    names: list[str] = []
    sql = f"SELECT name FROM {_TABLE} WHERE run_id = %s AND name > %s ORDER BY name LIMIT 1"
    with connection.cursor() as cursor:
        last = ""
        while True:
            cursor.execute(sql, [run_id, last])
            row = cursor.fetchone()
            if not row:
                break
            last = row[0]
            names.append(last)
            if len(names) > 2000:  # a runaway stream; stop rather than loop for long
                break
    return names


def _downsample(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= max_points:
        return x, y
    from tsdownsample import MinMaxLTTBDownsampler

    index = MinMaxLTTBDownsampler().downsample(x, y, n_out=max_points)
    return x[index], y[index]


# Min and max of each step bucket, computed inside the database so a long series never travels to
# Python. SQLite: two grouped passes, each returning the bare `step` column from the row holding the
# MIN or the MAX. PostgreSQL: one grouped pass (hash aggregate over the covering index) where
# MIN(ARRAY[value, step]) is the minimum with its first step and MAX(ARRAY[value, -step]) the maximum
# with its first step (arrays compare element by element); ~×2 faster than two passes with ordered
# array_agg. Other databases fall back to reading the series and tsdownsample.
_BUCKET_SQL = {
    "sqlite": (
        "SELECT step, MIN(value), COUNT(*) FROM {t} WHERE {where} GROUP BY step / %s "
        "UNION ALL SELECT step, MAX(value), 0 FROM {t} WHERE {where} GROUP BY step / %s"
    ),
    "postgresql": (
        "SELECT lo[2]::bigint, lo[1], -hi[2]::bigint, hi[1], n FROM (SELECT MIN(ARRAY[value, step::double precision]) lo, "
        "MAX(ARRAY[value, -step::double precision]) hi, COUNT(*) n FROM {t} WHERE {where} GROUP BY step / %s) b"
    ),
}
_EMPTY = {"x": [], "y": [], "raw": 0, "drawn": 0}


def _step_bounds(cursor, where: str, params: list) -> tuple[int, int] | None:
    """First and last step with a value: two probes of the covering index, whatever the length."""
    bounds = []
    for order in ("ASC", "DESC"):
        cursor.execute(f"SELECT step FROM {_TABLE} WHERE {where} ORDER BY step {order} LIMIT 1", params)
        row = cursor.fetchone()
        if row is None:
            return None
        bounds.append(row[0])
    return bounds[0], bounds[1]


def cached_metric_series(run_id: int, name: str, *, version: int, max_points: int = MAX_POINTS) -> dict:
    """metric_series of a whole series, cached until the run's stored events change (`version`:
    Run.ingested_seq), so reopening a finished run's dashboard costs no scan."""
    key = f"lab:series:{run_id}:{version}:{max_points}:{hashlib.sha1(name.encode()).hexdigest()}"
    found = cache.get(key)
    if found is None:
        found = metric_series(run_id, name, max_points=max_points)
        cache.set(key, found, SERIES_CACHE_S)
    return found


def metric_series(run_id: int, name: str, *, max_points: int = MAX_POINTS, after_step: int | None = None) -> dict:
    """{"name", "x", "y", "raw", "drawn"}: the points of one metric by step, at most `max_points`.

    The step range is cut into max_points/2 buckets and each bucket keeps its minimum and its maximum
    (MinMax downsampling: a spike or a collapse always survives; a bucket of one or two points keeps
    them exactly, so short series come back whole). `after_step` returns only the points after that
    step (live updates). Null values (NaN/inf in the stream) are not drawn; `raw` counts the stored
    points that have a value.
    """
    max_points = max(10, min(int(max_points), MAX_POINTS))
    where = "run_id = %s AND name = %s AND value IS NOT NULL"
    params: list = [run_id, name]
    if after_step is not None:
        where += " AND step > %s"
        params.append(int(after_step))
    bucket_sql = _BUCKET_SQL.get(connection.vendor)
    with connection.cursor() as cursor:
        if bucket_sql is None:
            cursor.execute(f"SELECT step, value FROM {_TABLE} WHERE {where} ORDER BY step", params)
            rows = cursor.fetchall()
            if not rows:
                return {"name": name, **_EMPTY}
            data = np.asarray(rows, dtype=np.float64)
            x, y = _downsample(data[:, 0].copy(), data[:, 1].copy(), max_points)
            return {"name": name, "x": x.astype(np.int64).tolist(), "y": y.tolist(), "raw": len(rows), "drawn": int(len(x))}
        bounds = _step_bounds(cursor, where, params)
        if bounds is None:
            return {"name": name, **_EMPTY}
        width = max(1, -(-(bounds[1] - bounds[0] + 1) // (max_points // 2)))  # ceil: ≤ max_points/2 buckets
        if connection.vendor == "postgresql":
            cursor.execute(bucket_sql.format(t=_TABLE, where=where), [*params, width])
            rows = cursor.fetchall()
            raw = sum(r[4] for r in rows)  # (min step, min value, max step, max value, count) per bucket
            pairs = [(r[0], r[1]) for r in rows] + [(r[2], r[3]) for r in rows]
        else:
            cursor.execute(bucket_sql.format(t=_TABLE, where=where), [*params, width, *params, width])
            rows = cursor.fetchall()
            raw = sum(r[2] for r in rows)
            pairs = [(r[0], r[1]) for r in rows]
    points = sorted({(int(x), float(f"{y:.7g}")) for x, y in pairs})  # 7 digits: plenty for a chart, half the JSON
    return {"name": name, "x": [p[0] for p in points], "y": [p[1] for p in points], "raw": raw, "drawn": len(points)}


def eval_series(run_id: int) -> list[dict]:
    """Benchmark scores over steps, one series per (benchmark, metric); the run's evaluation jobs (child
    runs of kind "evaluate", lab.services.evaluations) are points at the checkpoint step they evaluated."""
    by_key: dict[tuple[str, str], list[tuple[int, float]]] = {}
    eval_job = Q(run__parent_id=run_id, run__kind="evaluate", run__parent_step__isnull=False)
    rows = (
        EvalResult.objects.filter(Q(run_id=run_id) | eval_job, value__isnull=False)
        .annotate(at=Case(When(eval_job, then=F("run__parent_step")), default=F("step")))
        .order_by("at", "seq")
        .values_list("benchmark", "metric", "at", "value")
    )
    for benchmark, metric, step, value in rows.iterator(chunk_size=2000):
        by_key.setdefault((benchmark, metric), []).append((step, value))
    out = []
    for (benchmark, metric), points in sorted(by_key.items()):
        out.append(
            {
                "name": f"{benchmark} {metric}",
                "x": [p[0] for p in points],
                "y": [p[1] for p in points],
                "raw": len(points),
                "drawn": len(points),
            }
        )
    return out


def last_values(run_id: int, name: str, count: int) -> list[float]:
    """The last `count` values of a metric, oldest first."""
    values = list(
        Metric.objects.filter(run_id=run_id, name=name, value__isnull=False)
        .order_by("-step", "-seq")
        .values_list("value", flat=True)[:count]
    )
    return values[::-1]


def first_values(run_id: int, name: str, count: int) -> list[float]:
    return list(
        Metric.objects.filter(run_id=run_id, name=name, value__isnull=False)
        .order_by("step", "seq")
        .values_list("value", flat=True)[:count]
    )
