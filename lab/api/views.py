"""REST API v1 endpoints. The same team rules as the pages: lab.access.get_for_user everywhere."""
from __future__ import annotations

from django.contrib.auth import authenticate
from django.http import JsonResponse

from lab.access import get_for_user, teams_of
from lab.api.base import ApiError, api_view, body
from lab.api.serializers import annotation_json, dataset_json, run_json, trace_json
from lab.models import Annotation, Dataset, Project, Run, Team, Trace
from lab.selectors.benchmarks import benchmark_table
from lab.selectors.metrics import metric_names
from lab.selectors.runs import team_runs
from lab.selectors.traces import TraceFilter, trace_page
from lab.services.annotations import annotation_save
from lab.services.datasets import dataset_create, stage_generated, stage_upload
from lab.services.ratelimit import client_ip, login_blocked, login_failed, login_succeeded
from lab.services.runs import run_cancel, run_create, run_resume
from lab.services.tokens import token_create
from lab.views.dashboard import metrics_payload

LIST_LIMIT = 200


def _team(request, slug: str | None, action: str = "read"):
    """The team named by `slug`, or the user's only/first team."""
    if slug:
        return get_for_user(request.user, Team, action=action, slug=slug)
    team = teams_of(request.user).first()
    if team is None:
        raise ApiError(404, "you are not a member of any team")
    return get_for_user(request.user, Team, action=action, id=team.id)


def _int(value, name: str, default: int | None = None) -> int | None:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{name}: expected an integer, got {str(value)[:40]!r}") from None


@api_view(("POST",), public=True)
def auth_token(request):
    data = body(request)
    username, password = str(data.get("username") or ""), str(data.get("password") or "")
    ip = client_ip(request)
    if login_blocked(username, ip):
        response = JsonResponse({"error": "too many failed logins; wait a minute"}, status=429)
        response["Retry-After"] = "60"
        return response
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        login_failed(username, ip)
        raise ApiError(401, "wrong username or password")
    login_succeeded(username, ip)
    return JsonResponse({"token": token_create(user=user), "token_type": "Bearer"}, status=201)


@api_view()
def teams(request):
    rows = [{"slug": t.slug, "name": t.name, "role": t.role_of(request.user)} for t in teams_of(request.user)]
    return JsonResponse({"results": rows})


# --- datasets ---------------------------------------------------------------------------------------


@api_view(("GET", "POST"))
def datasets(request):
    if request.method == "GET":
        team, _ = _team(request, request.GET.get("team"))
        rows = Dataset.objects.filter(team=team).order_by("name", "-version")[:LIST_LIMIT]
        return JsonResponse({"results": [dataset_json(d) for d in rows]})
    data = body(request)
    team, _ = _team(request, data.get("team"), action="write")
    name = str(data.get("name") or "").strip()
    if not name:
        raise ApiError(400, "invalid request", {"name": ["required"]})
    if "file" in request.FILES:
        staged = stage_upload(name=name, upload=request.FILES["file"])
    else:
        params = data.get("params") or {}
        staged = stage_generated(
            name=name, task=str(data.get("task") or ""), n=_int(data.get("n"), "n", 100), seed=_int(data.get("seed"), "seed", 0),
            split=str(data.get("split") or "train"), params=params,
        )
    if not staged.ok:
        raise ApiError(400, "the dataset did not pass validation", {"report": staged.report})
    dataset = dataset_create(team=team, user=request.user, staged=staged)
    return JsonResponse(dataset_json(dataset), status=201)


@api_view()
def dataset_detail(request, dataset_id: int):
    dataset, _ = get_for_user(request.user, Dataset, id=dataset_id)
    return JsonResponse(dataset_json(dataset))


# --- runs -------------------------------------------------------------------------------------------


@api_view(("GET", "POST"))
def runs(request):
    if request.method == "GET":
        team, _ = _team(request, request.GET.get("team"))
        params = {k: request.GET.get(k, "") for k in ("project", "user", "status", "q")}
        offset = _int(request.GET.get("offset"), "offset", 0)
        rows = team_runs(team.id, **params).select_related("worker", "project").order_by("-created_at", "-id")[offset : offset + LIST_LIMIT]
        return JsonResponse({"results": [run_json(r) for r in rows], "offset": offset, "limit": LIST_LIMIT})
    data = body(request)
    team, _ = _team(request, data.get("team"), action="write")
    project = parent = None
    if data.get("project"):
        project = Project.objects.filter(team=team, name=str(data["project"])).first()
        if project is None:
            raise ApiError(400, "invalid request", {"project": [f"no project {str(data['project'])[:100]!r} in this team"]})
    if data.get("parent"):
        parent, _ = get_for_user(request.user, Run, id=_int(data["parent"], "parent"))
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise ApiError(400, "invalid request", {"config": ["must be a JSON object"]})
    run = run_create(
        team=team, user=request.user, config=config, name=str(data.get("name") or ""), queue=str(data.get("queue") or "cpu"),
        project=project, recipe=str(data.get("recipe") or ""), quick=bool(data.get("quick", False)), parent=parent,
        parent_step=_int(data.get("parent_step"), "parent_step"),
        eval_every=_int(data.get("eval_every"), "eval_every") or 0, eval_benchmarks=data.get("eval_benchmarks"),
        client_token=request.headers.get("Idempotency-Key") or str(data.get("client_token") or ""),
        gpus=_int(data.get("gpus"), "gpus") or 0,
    )
    if getattr(run, "replayed", False):  # the same Idempotency-Key again: the run it made, no second one
        response = JsonResponse(run_json(run), status=200)
        response["Idempotent-Replayed"] = "true"
        return response
    return JsonResponse(run_json(run), status=201)


@api_view()
def run_detail(request, run_id: int):
    run, _ = get_for_user(request.user, Run.objects.select_related("worker", "project"), id=run_id)
    return JsonResponse(run_json(run, full=True))


@api_view(("POST",))
def run_cancel_api(request, run_id: int):
    run, _ = get_for_user(request.user, Run, id=run_id, action="write")
    return JsonResponse({"id": run.id, "status": run_cancel(run=run, user=request.user)})


@api_view(("POST",))
def run_resume_api(request, run_id: int):
    run, _ = get_for_user(request.user, Run, id=run_id, action="write")
    return JsonResponse({"id": run.id, "status": run_resume(run=run, user=request.user)})


@api_view()
def run_metric_names(request, run_id: int):
    run, _ = get_for_user(request.user, Run, id=run_id)
    return JsonResponse({"run": run.id, "names": metric_names(run.id)})


@api_view()
def run_metric_series(request, run_id: int):
    run, _ = get_for_user(request.user, Run, id=run_id)
    return JsonResponse(metrics_payload(run, request.GET))


# --- traces and annotations -------------------------------------------------------------------------


@api_view()
def run_traces(request, run_id: int):
    run, _ = get_for_user(request.user, Run, id=run_id)
    flt, errors = TraceFilter.from_query(request.GET)
    if errors:
        raise ApiError(400, "invalid filter", errors)
    page = _int(request.GET.get("page"), "page", 1)
    rows, has_next = trace_page(run.id, flt, page=page, user=request.user)
    return JsonResponse({"results": [trace_json(t) for t in rows], "page": page, "has_next": has_next})


@api_view()
def trace_detail(request, trace_id: int):
    trace, _ = get_for_user(request.user, Trace, id=trace_id)
    return JsonResponse(trace_json(trace, full=True))


@api_view(("GET", "POST"))
def trace_annotations(request, trace_id: int):
    if request.method == "GET":
        trace, _ = get_for_user(request.user, Trace, id=trace_id)
        rows = Annotation.objects.filter(trace=trace).select_related("user")
        return JsonResponse({"results": [annotation_json(a) for a in rows]})
    trace, _ = get_for_user(request.user, Trace.objects.select_related("run"), id=trace_id, action="annotate")
    data = body(request)
    annotation = annotation_save(
        trace=trace, user=request.user, rating=str(data.get("rating") or ""), labels=data.get("labels") or [], comment=str(data.get("comment") or "")
    )
    return JsonResponse(annotation_json(annotation), status=201)


@api_view()
def run_annotations(request, run_id: int):
    run, _ = get_for_user(request.user, Run, id=run_id)
    rows = Annotation.objects.filter(trace__run=run).select_related("user").order_by("id")[:5000]
    return JsonResponse({"results": [annotation_json(a) for a in rows]})


# --- benchmarks -------------------------------------------------------------------------------------


def _table_json(table) -> dict:
    return {
        "benchmarks": table.benchmarks,
        "metrics": table.metrics,
        "rows": [{"run": r.run_id, "run_name": r.run_name, "step": r.step, "scores": r.scores, "samples": r.samples} for r in table.rows],
    }


@api_view()
def benchmarks(request):
    team, _ = _team(request, request.GET.get("team"))
    return JsonResponse(_table_json(benchmark_table(Run.objects.filter(team=team))))


@api_view()
def run_benchmarks(request, run_id: int):
    run, _ = get_for_user(request.user, Run, id=run_id)
    return JsonResponse(_table_json(benchmark_table(Run.objects.filter(id=run.id))))
