"""The run dashboard: header with status and lineage, health warnings, a grid of small charts.

Charts are drawn by static/lab/dashboard.js from `metrics.json` (downsampled on the server); the
panel layout travels in a json_script block (CSP allows no inline script).
"""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest, JsonResponse
from django.urls import reverse

from lab.access import get_for_user
from lab.models import CheckpointRecord, EvalResult, Run, RunLog
from lab.selectors.compare import config_diff
from lab.selectors.dashboard import dashboard_panels, dashboard_sections
from lab.selectors.health import run_health
from lab.selectors.metrics import MAX_POINTS, cached_metric_series_many, eval_series, metric_names, metric_series_many
from lab.selectors.runs import run_lineage
from lab.services.run_config import config_warnings
from lab.views.common import int_param, page

MAX_SERIES_PER_REQUEST = 40
MAX_COMPARE_RUNS = 10
MAX_COMPARE_METRICS = 8


@login_required
def run_detail(request, run_id: int):
    run, access = get_for_user(request.user, Run.objects.select_related("worker", "project", "created_by"), id=run_id)
    names = metric_names(run.id)
    panels = dashboard_panels(names, evaluations=EvalResult.objects.filter(run=run).exists())
    chart_config = {
        "metricsUrl": reverse("run_metrics", args=[run.id]),
        "active": run.is_active or run.status == "queued",
        "panels": panels,
        "sections": dashboard_sections(panels),
        "names": names,  # a poll that finds names beyond these reloads the page: new metrics get their charts
        "maxPoints": MAX_POINTS,
    }
    return page(
        request,
        "lab/run_detail.html",
        {
            "run": run,
            "can_write": access.can_write,
            "lineage": run_lineage(run),
            "children": Run.objects.filter(parent=run).only("id", "name", "status", "parent_step")[:20],
            "checkpoints": CheckpointRecord.objects.filter(run=run).order_by("-step")[:20],
            "warnings": run_health(run.id, names),
            "config_warnings": config_warnings(run.config),
            "chart_config": chart_config,
            "logs": RunLog.objects.filter(run=run).order_by("-seq")[:15],
        },
        nav="runs",
    )


@login_required
def run_status_fragment(request, run_id: int):
    """The header's live part (htmx polls it while the run is active), with the actions and checkpoints swapped
    out of band: Cancel goes and Resume comes when the run ends, new checkpoints appear, all without a reload."""
    run, access = get_for_user(request.user, Run.objects.select_related("worker"), id=run_id)
    return page(request, "lab/_run_status.html", {
        "run": run, "can_write": access.can_write, "oob": True,
        "checkpoints": CheckpointRecord.objects.filter(run=run).order_by("-step")[:20],
    })


@login_required
def run_metrics(request, run_id: int):
    """Downsampled series: ?names=a,b (or one name=… each) [&after_step=N] [&max_points=N] [&eval=1]
    [&with_names=1: also every metric name the run has]."""
    run, _ = get_for_user(request.user, Run, id=run_id)
    return JsonResponse(metrics_payload(run, request.GET))


def metrics_payload(run: Run, params) -> dict:
    names = [n for n in params.getlist("name") if n]
    for joined in params.getlist("names"):
        names += [n for n in joined.split(",") if n]
    names = list(dict.fromkeys(names))[:MAX_SERIES_PER_REQUEST]
    after_step = int_param(params, "after_step")
    max_points = int_param(params, "max_points", MAX_POINTS) or MAX_POINTS
    if after_step is None:
        series = cached_metric_series_many(run.id, names, version=run.ingested_seq, max_points=max_points)
    else:
        series = metric_series_many(run.id, names, max_points=max_points, after_step=after_step)
    payload = {"run": run.id, "status": run.status, "step": run.step, "active": run.is_active, "series": series}
    if params.get("eval"):
        payload["eval"] = eval_series(run.id)
    if params.get("with_names"):
        payload["names"] = metric_names(run.id)
    return payload


@login_required
def compare(request):
    """Metrics overlaid across selected runs, one chart per metric, and the config keys they differ on:
    ?runs=1,2,3&metric=a&metric=b (or metric=a,b)."""
    ids = []
    for part in ",".join(request.GET.getlist("runs")).split(","):
        if part.strip().isdigit():
            ids.append(int(part))
    ids = list(dict.fromkeys(ids))[:MAX_COMPARE_RUNS]
    runs = []
    for run_id in ids:
        run, _ = get_for_user(request.user, Run, id=run_id)
        runs.append(run)
    if not runs:
        return HttpResponseBadRequest("choose runs to compare: ?runs=1,2")
    names = sorted({n for run in runs for n in metric_names(run.id)})
    asked = [m for joined in request.GET.getlist("metric") for m in joined.split(",") if m in names]
    metrics = list(dict.fromkeys(asked))[:MAX_COMPARE_METRICS] or _default_metrics(names)
    config = {
        "metrics": metrics,
        "runs": [{"id": r.id, "name": r.name, "url": reverse("run_metrics", args=[r.id])} for r in runs],
        "maxPoints": MAX_POINTS,
    }
    return page(request, "lab/compare.html", {
        "runs": runs, "names": names, "metrics": metrics, "chart_config": config, "config_diff": config_diff(runs),
    }, nav="runs")


def _default_metrics(names: list[str]) -> list[str]:
    """R1's signature: accuracy and response length, where the runs have them; else their first metric."""
    picked = [next((n for n in names if fragment in n), "") for fragment in ("accuracy", "mean_length")]
    return [n for n in dict.fromkeys(picked) if n] or names[:1]
