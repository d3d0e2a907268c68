"""The smaller pages: review home, benchmarks, workers."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max
from django.urls import reverse

from lab.access import get_for_user
from lab.models import Annotation, EvalResult, Run, Trace, Worker
from lab.selectors.benchmarks import benchmark_chart, benchmark_table
from lab.selectors.dashboard import eval_panels
from lab.selectors.metrics import MAX_POINTS
from lab.views.common import page, team_page


@team_page
def review_home(request, team, access):
    runs = list(Run.objects.filter(team=team).order_by("-created_at").only("id", "name", "status", "step")[:50])
    ids = [r.id for r in runs]
    traces = dict(Trace.objects.filter(run_id__in=ids).values("run_id").annotate(n=Count("id")).values_list("run_id", "n"))
    mine = dict(
        Annotation.objects.filter(trace__run_id__in=ids, user=request.user).values("trace__run_id").annotate(n=Count("id")).values_list("trace__run_id", "n")
    )
    rows = [(r, traces.get(r.id, 0), mine.get(r.id, 0)) for r in runs if traces.get(r.id)]
    return page(request, "lab/review.html", {"rows": rows, "can_annotate": access.can_annotate}, nav="review")


@team_page
def benchmarks(request, team, access):
    table = benchmark_table(Run.objects.filter(team=team))
    chosen = request.GET.get("benchmark", "")
    chosen = chosen if chosen in table.benchmarks else (table.benchmarks[0] if table.benchmarks else "")
    chart = benchmark_chart(table, chosen) if chosen else None
    return page(request, "lab/benchmarks.html", {"table": table, "chosen": chosen, "chart": chart}, nav="benchmarks")


@login_required
def run_benchmarks(request, run_id: int):
    run, _ = get_for_user(request.user, Run, id=run_id)
    table = benchmark_table(Run.objects.filter(id=run.id))
    eval_steps = EvalResult.objects.filter(run=run).values("step").annotate(n=Max("n")).order_by("step")
    chart_config = {
        "metricsUrl": reverse("run_metrics", args=[run.id]),
        "active": False,
        "maxPoints": MAX_POINTS,
        "panels": eval_panels("Scores over steps"),
    }
    return page(
        request, "lab/run_benchmarks.html", {"run": run, "table": table, "eval_steps": eval_steps, "chart_config": chart_config}, nav="benchmarks"
    )


@team_page
def workers(request, team, access):
    rows = list(Worker.objects.select_related("current_run").order_by("name"))
    alive = set(Worker.alive().values_list("id", flat=True))
    return page(request, "lab/workers.html", {"rows": rows, "alive": alive, "team_id": team.id}, nav="workers")
