"""Metric series for charts: names, and each series downsampled on the server.

A series is cut to at most MAX_POINTS points keeping every bucket's minimum and maximum, so a spike
or a collapse is never smoothed away by the downsampling itself. On SQLite and PostgreSQL a long series
is read from its summaries kept at ingestion (lab.services.metric_summaries: one row per bucket of a
power-of-two width), a short one or a short range has its buckets computed by the database from the
stored points; only ≤ MAX_POINTS rows reach Python. Elsewhere the series is read and cut with
tsdownsample's MinMaxLTTB. Never the run's whole history at once.
"""
from __future__ import annotations

import hashlib
from itertools import groupby
from operator import itemgetter

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.db.models import Case, F, Q, When

from lab.models import EvalResult, Metric, MetricSummary
from lab.services.metric_summaries import MAX_LEVEL, MIN_LEVEL

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


# Min and max of each step bucket (step / width) of a series, from its stored points: for the widths
# the summaries do not serve (half the lowest level's block or narrower: short series or ranges; and live
# increments after a step).
# Rows come in bucket order, so Python only pairs them up.
# SQLite: two grouped passes per series (one statement per series: a compound of all series is
# slower there), each returning the bare `step` column from the row holding the MIN or the MAX (the
# first such row in index order: the lowest step). PostgreSQL: one statement for all the series, one
# grouped pass each (hash aggregate over the covering index) where MIN(ARRAY[value, step]) is the
# minimum with its first step and MAX(ARRAY[value, -step]) the maximum with its first step (arrays
# compare element by element). Other databases fall back to reading each series and tsdownsample.
_BUCKET_BRANCH = {
    "sqlite": (
        "SELECT step / %s AS b, 0, step, MIN(value) FROM {t} WHERE {where} GROUP BY b "
        "UNION ALL SELECT step / %s AS b, 1, step, MAX(value) FROM {t} WHERE {where} GROUP BY b"
    ),
    "postgresql": (
        "SELECT %s, b, lo[2]::bigint, lo[1], -hi[2]::bigint, hi[1] FROM (SELECT step / %s AS b, "
        "MIN(ARRAY[value, step::double precision]) lo, MAX(ARRAY[value, -step::double precision]) hi "
        "FROM {t} WHERE {where} GROUP BY 1) AS b{i}"
    ),
}
# A bucket of width 2**level is one stored summary (lab.services.metric_summaries): read in block order.
_SUMMARY_BRANCH = (f"SELECT %s, block, low_step, low, high_step, high FROM {MetricSummary._meta.db_table} "
                   "WHERE run_id = %s AND name = %s AND level = %s")


def _bucket_width(first: int, last: int, max_points: int) -> int:
    """A step width whose buckets (step // width) over [first, last] number at most max_points / 2, so
    a minimum and a maximum per bucket make at most max_points points. Buckets are aligned on multiples
    of the width (no per-row arithmetic but the division); when that alignment adds a bucket, the width
    grows by one, or, for long ranges, to range / (half - 1), which always fits."""
    half, span = max_points // 2, last - first + 1
    width = max(1, -(-span // half))
    for candidate in (width, width + 1, -(-span // (half - 1))):
        if last // candidate - first // candidate + 1 <= half:
            return candidate
    return -(-span // (half - 1))


def _summary_level(first: int, last: int, width: int, max_points: int) -> int | None:
    """The summary level whose blocks over [first, last] number at most max_points / 2 (the smallest such
    power-of-two width; `width` is _bucket_width's), or None when buckets of half the lowest level's block
    or less do (the stored points are read then: a span of at most 2 × max_points steps)."""
    if width <= 1 << (MIN_LEVEL - 1):
        return None
    level = max(MIN_LEVEL, (width - 1).bit_length())
    while (last >> level) - (first >> level) + 1 > max_points // 2:
        level += 1
    return level if level <= MAX_LEVEL else None


def _empty(name: str) -> dict:
    return {"name": name, "x": [], "y": [], "raw": 0, "drawn": 0, "bucket": 1}


def _series_filter(run_id: int, name: str, after_step: int | None) -> tuple[str, list]:
    where = "run_id = %s AND name = %s AND value IS NOT NULL"
    params: list = [run_id, name]
    if after_step is not None:
        where += " AND step > %s"
        params.append(int(after_step))
    return where, params


def _step_bounds(cursor, filters: list[tuple[str, list]]) -> list[tuple[int, int, int] | None]:
    """First and last step with a value of each series, and how many points have a value: two probes
    and one count over the covering index per series, all in one statement."""
    branches, params = [], []
    for index, (where, where_params) in enumerate(filters):
        branches.append(f"SELECT %s, (SELECT step FROM {_TABLE} WHERE {where} ORDER BY step ASC LIMIT 1), "
                        f"(SELECT step FROM {_TABLE} WHERE {where} ORDER BY step DESC LIMIT 1), "
                        f"(SELECT COUNT(*) FROM {_TABLE} WHERE {where})")
        params += [index, *where_params, *where_params, *where_params]
    cursor.execute(" UNION ALL ".join(branches), params)
    bounds: list = [None] * len(filters)
    for index, first, last, count in cursor.fetchall():
        if first is not None:
            bounds[index] = (int(first), int(last), int(count))
    return bounds


def cached_metric_series(run_id: int, name: str, *, version: int, max_points: int = MAX_POINTS) -> dict:
    """metric_series of a whole series, cached until the run's stored events change (`version`:
    Run.ingested_seq), so reopening a finished run's dashboard costs no scan."""
    return cached_metric_series_many(run_id, [name], version=version, max_points=max_points)[0]


def cached_metric_series_many(run_id: int, names: list[str], *, version: int, max_points: int = MAX_POINTS) -> list[dict]:
    """cached_metric_series of several series: one cache round trip, and the missing ones computed together."""
    keys = [f"lab:series:{run_id}:{version}:{max_points}:{hashlib.sha1(name.encode()).hexdigest()}" for name in names]
    found = cache.get_many(keys)
    missing = [name for name, key in zip(names, keys) if key not in found]
    if missing:
        computed = dict(zip(missing, metric_series_many(run_id, missing, max_points=max_points)))
        cache.set_many({key: computed[name] for name, key in zip(names, keys) if name in computed}, SERIES_CACHE_S)
        found.update({key: computed[name] for name, key in zip(names, keys) if name in computed})
    return [found[key] for key in keys]


def metric_series(run_id: int, name: str, *, max_points: int = MAX_POINTS, after_step: int | None = None) -> dict:
    """{"name", "x", "y", "raw", "drawn", "bucket"}: the points of one metric by step, at most `max_points`.

    The step range is cut into at most max_points/2 buckets of `bucket` steps and each bucket keeps its
    minimum and its maximum (MinMax downsampling: a spike or a collapse always survives; a bucket of one
    or two points keeps them exactly, so short series come back whole). Wider buckets are powers of two,
    read from the stored summaries. `after_step` returns only the points after that step (live updates).
    Null values (NaN/inf in the stream) are not drawn; `raw` counts the stored points that have a value.
    """
    return metric_series_many(run_id, [name], max_points=max_points, after_step=after_step)[0]


def metric_series_many(run_id: int, names: list[str], *, max_points: int = MAX_POINTS,
                       after_step: int | None = None, summaries: bool = True) -> list[dict]:
    """metric_series of each name, in order: one statement for the step bounds and counts of all of them,
    one for the buckets read from summaries, then the bucket passes over stored points for the others
    (PostgreSQL: one statement for all; SQLite: one per series). `summaries=False` computes every bucket
    from the stored points (the same result; what the summaries save, for checks and bench/)."""
    if not names:
        return []
    max_points = max(10, min(int(max_points), MAX_POINTS))
    filters = [_series_filter(run_id, name, after_step) for name in names]
    branch = _BUCKET_BRANCH.get(connection.vendor)
    if branch is None:
        return [_read_and_downsample(name, where, params, max_points) for name, (where, params) in zip(names, filters)]
    out = [_empty(name) for name in names]
    with connection.cursor() as cursor:
        bounds = _step_bounds(cursor, filters)
        from_summaries, summary_params, branches, params = [], [], [], []
        for index, ((where, where_params), found) in enumerate(zip(filters, bounds)):
            if found is None:
                continue
            first, last, out[index]["raw"] = found
            width = _bucket_width(first, last, max_points)
            level = _summary_level(first, last, width, max_points)
            if level is not None:
                width = 1 << level
            out[index]["bucket"] = width
            if level is not None and after_step is None and summaries:
                from_summaries.append(_SUMMARY_BRANCH)
                summary_params += [index, run_id, names[index], level]
                continue
            sql = branch.format(t=_TABLE, where=where, i=index)
            if connection.vendor == "postgresql":
                branches.append(sql)
                params += [index, width, *where_params]
            else:  # the minimum rows (bucket, 0, step, min), then the maximum rows (bucket, 1, step, max)
                cursor.execute(sql, [width, *where_params, width, *where_params])
                found = cursor.fetchall()
                lows, highs = found[: len(found) // 2], found[len(found) // 2 :]
                if any(low[0] != high[0] or low[1] != 0 for low, high in zip(lows, highs)) or lows != sorted(lows):
                    lows, highs = sorted(r for r in found if r[1] == 0), sorted(r for r in found if r[1] == 1)
                _fill(out[index], [(low[2], low[3], high[2], high[3]) for low, high in zip(lows, highs)])
        for statements, statement_params in ((from_summaries, summary_params), (branches, params)):
            if statements:  # (series, bucket, min step, min, max step, max) in series and bucket order
                cursor.execute(" UNION ALL ".join(statements) + " ORDER BY 1, 2", statement_params)
                for index, group in groupby(cursor.fetchall(), key=itemgetter(0)):
                    _fill(out[index], [row[2:] for row in group])
    return out


def _fill(series: dict, buckets: list[tuple]) -> None:
    """A series' points from its (min step, min, max step, max) buckets in step order: per bucket its
    minimum and maximum in step order (one point when they are the same), values to 7 significant
    digits (plenty for a chart, half the JSON)."""
    x, y = series["x"], series["y"]
    add_x, add_y = x.append, y.append
    for lo_step, lo, hi_step, hi in buckets:
        lo, hi = float(format(lo, ".7g")), float(format(hi, ".7g"))
        if hi_step < lo_step or (hi_step == lo_step and hi < lo):
            lo_step, lo, hi_step, hi = hi_step, hi, lo_step, lo
        add_x(int(lo_step))
        add_y(lo)
        if hi_step != lo_step or hi != lo:
            add_x(int(hi_step))
            add_y(hi)
    series["drawn"] = len(x)


def _read_and_downsample(name: str, where: str, params: list, max_points: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT step, value FROM {_TABLE} WHERE {where} ORDER BY step", params)
        rows = cursor.fetchall()
    if not rows:
        return _empty(name)
    data = np.asarray(rows, dtype=np.float64)
    x, y = _downsample(data[:, 0].copy(), data[:, 1].copy(), max_points)
    return {"name": name, "x": x.astype(np.int64).tolist(), "y": y.tolist(), "raw": len(rows), "drawn": int(len(x)),
            "bucket": None}  # MinMaxLTTB: no fixed bucket width


def eval_unit(metric: str) -> str:
    """What an evaluation metric counts: "tokens" (mean_length and the like) or "fraction" (rates)."""
    return "tokens" if "length" in metric or "tokens" in metric else "fraction"


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
                "unit": eval_unit(metric),
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
