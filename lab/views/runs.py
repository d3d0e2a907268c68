"""Run pages: the manager's overview, the runs list, the new-run form, cancel and resume."""
from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_POST

from lab.access import get_for_user
from lab.forms import ConfigForm, RunForm
from lab.models import CheckpointRecord, Dataset, Membership, Project, Run, RunStatus
from lab.selectors.runs import (
    OVERVIEW_PAGE, benchmarks_in, best_per_benchmark, overview_rows, parse_sort, team_runs, team_totals,
)
from lab.services.references import checkpoint_ref, dataset_ref
from lab.services.run_config import config_edits, config_schema, recipe_config, recipe_names, recipes
from lab.services.runs import run_cancel, run_create, run_resume
from lab.views.common import int_param, page, team_page

DEMO_RECIPE = "aha-mini"
MAX_PER_PAGE = 1000


QUICK_CHOICES = ("", "hide", "only")
SORT_HEADERS = ("name", "status", "progress", "created", "compute")


def _header(sort, column: str, benchmark: str = "") -> dict:
    """A sortable column header: the ?sort= its link asks for, and its arrow when the table is sorted by it."""
    active = sort.column == column and sort.benchmark == benchmark
    return {"sort": sort.toggled(column, benchmark), "active": active, "arrow": ("▼" if sort.descending else "▲") if active else ""}


def _filtered(request, team):
    params = request.GET
    filters = {key: (params.get(key) or "").strip()[:100] for key in ("project", "user", "status", "q", "quick")}
    if filters["quick"] not in QUICK_CHOICES:
        filters["quick"] = ""
    return team_runs(team.id, **filters), filters


def _runs_context(request, team):
    runs, filters = _filtered(request, team)
    sort = parse_sort(request.GET.get("sort", ""))
    page_number = max(1, int_param(request.GET, "page", 1) or 1)
    per_page = min(MAX_PER_PAGE, max(10, int_param(request.GET, "per_page", OVERVIEW_PAGE) or OVERVIEW_PAGE))
    rows = overview_rows(runs, offset=(page_number - 1) * per_page, limit=per_page + 1, sort=sort)
    has_next = len(rows) > per_page
    rows = rows[:per_page]
    benchmarks = benchmarks_in(rows)
    if sort.column == "best" and sort.benchmark not in benchmarks:
        benchmarks = sorted({*benchmarks, sort.benchmark})  # the sorted column stays, even on a page without scores
    unfiltered_quick = {**filters, "quick": ""}
    return {
        "rows": rows,
        "benchmarks": benchmarks,
        "best": best_per_benchmark(runs) if rows else {},
        "filters": filters,
        "sort": sort,
        "headers": {column: _header(sort, column) for column in SORT_HEADERS},
        "bench_headers": [(b, _header(sort, "best", b)) for b in benchmarks],
        # quick runs among the other filters' matches: "12 quick runs hidden", "3 quick runs shown"
        "quick_count": team_runs(team.id, **unfiltered_quick).filter(quick=True).count(),
        "totals": team_totals(team.id),
        "page_number": page_number,
        "has_next": has_next,
        "projects": Project.objects.filter(team=team).order_by("name"),
        "members": Membership.objects.filter(team=team).select_related("user").order_by("user__username"),
        "statuses": RunStatus.choices,
        "team_has_runs": Run.objects.filter(team=team).exists() if not rows else True,
    }


@team_page
def overview(request, team, access):
    return page(request, "lab/overview.html", _runs_context(request, team), nav="overview")


@team_page
def runs_list(request, team, access):
    return page(request, "lab/runs.html", _runs_context(request, team), nav="runs")


@team_page
@require_POST
def demo_run(request, team, access):
    access.require("write")
    quick = request.POST.get("quick") == "1"  # the quick button; the full recipe otherwise
    run = run_create(team=team, user=request.user, config={}, name=f"{DEMO_RECIPE} {'quick ' if quick else ''}demo",
                     recipe=DEMO_RECIPE, quick=quick)
    messages.success(request, f"Started the {DEMO_RECIPE} demo run ({'quick' if quick else 'full'}).")
    return HttpResponseRedirect(reverse("run", args=[run.id]))


def _start_values(request, team) -> tuple[dict, dict]:
    """Initial run fields and config for the form: a fork, a start from a checkpoint, a recipe, or defaults."""
    initial: dict = {"queue": "cpu", "client_token": uuid.uuid4().hex}  # a second click makes no second run
    config: dict | None = None
    fork_id, parent_id = request.GET.get("fork"), request.GET.get("parent")
    recipe = request.GET.get("recipe", "")
    recipe = recipe if recipe in recipe_names() else ""
    if fork_id:
        source, _ = get_for_user(request.user, Run, id=fork_id)
        config = dict(source.config)
        initial.update(
            name=f"{source.name} (fork)", queue=source.queue, gpus=source.gpu_count, recipe=source.recipe, quick=source.quick, project=source.project_id,
            config_from=f"run:{source.id}",
        )
    elif parent_id:  # start from its checkpoint: with its config, or with a recipe's (?recipe=distill)
        parent, _ = get_for_user(request.user, Run, id=parent_id)
        config = recipe_config(recipe) if recipe else dict(parent.config)
        checkpoint = _on_checkpoint(config, parent, int_param(request.GET, "step"))
        if checkpoint is not None:
            initial["parent_step"] = checkpoint.step
        initial.update(name=f"{parent.name} → {recipe or 'child'}", queue=parent.queue, project=parent.project_id,
                       parent=parent.id)
        if recipe:
            initial.update(recipe=recipe, config_from=recipe)
        else:
            initial.update(config_from=f"run:{parent.id}")
    elif recipe:
        initial.update(name=recipe, recipe=recipe, config_from=recipe)
        config = recipe_config(recipe)
    model = request.GET.get("model", "").strip()[:200]
    if model and not (fork_id or parent_id):  # "start a run from it" on the Models page (checked on submit)
        config = {**(config or {}), "model": {"source": model, "overrides": {}}}
    if request.GET.get("dataset", "").isdigit():
        initial["dataset"] = int(request.GET["dataset"])
    return initial, config or {}


def _on_checkpoint(config: dict, parent: Run, step: int | None) -> CheckpointRecord | None:
    """Point `config` at the parent's checkpoint of `step` (its latest without one), in place."""
    checkpoint = CheckpointRecord.objects.filter(run=parent, **({"step": step} if step is not None else {})).order_by("-step").first()
    if checkpoint is not None:
        model = config.get("model")
        # the checkpoint's architecture is its own: a recipe's preset overrides do not apply to it
        config["model"] = {**(model if isinstance(model, dict) else {}), "source": checkpoint_ref(parent.id, checkpoint.step),
                           "overrides": {}}
    return checkpoint


@team_page
def run_new(request, team, access):
    access.require("write")
    schema = config_schema()
    projects = Project.objects.filter(team=team).order_by("name")
    recipe_table = recipes()
    datasets = Dataset.objects.filter(team=team).order_by("name", "-version")
    if request.method == "POST":
        form = RunForm(request.POST, projects=projects, recipe_names=list(recipe_table), datasets=datasets)
        config_form = ConfigForm(request.POST, schema=schema, prefix="cfg")
        parent = None
        if request.POST.get("parent"):
            parent, _ = get_for_user(request.user, Run, id=request.POST["parent"])
        if form.is_valid() and config_form.is_valid():
            data = form.cleaned_data
            config = _config_to_run(request, data, config_form, schema)
            if data["dataset"]:
                dataset = get_object_or_404(Dataset, id=data["dataset"], team=team)
                config = {**config, "datasets": [{"task": None, "path": dataset_ref(dataset.id)}]}
            project = get_object_or_404(Project, id=data["project"], team=team) if data["project"] else None
            try:
                run = run_create(
                    team=team, user=request.user, config=config, name=data["name"], queue=data["queue"],
                    project=project, recipe=data["recipe"], quick=data["quick"], parent=parent,
                    parent_step=int_param(request.POST, "parent_step"), eval_every=data.get("eval_every") or 0,
                    client_token=request.POST.get("client_token", "")[:100], gpus=data.get("gpus") or 0,
                )
            except ValidationError as exc:
                _attach_errors(form, config_form, exc)
            else:
                messages.success(request, f"Run “{run.name}” queued on {run.queue}.")
                return HttpResponseRedirect(reverse("run", args=[run.id]))
        initial = {"parent": request.POST.get("parent", ""), "parent_step": request.POST.get("parent_step", ""),
                   "config_from": request.POST.get("config_from", ""), "client_token": request.POST.get("client_token", "")}
    else:
        initial, config = _start_values(request, team)
        form = RunForm(initial=initial, projects=projects, recipe_names=list(recipe_table), datasets=datasets)
        config_form = ConfigForm(schema=schema, config=config, prefix="cfg")
    if request.method == "POST":
        # a run's config (a fork) was shown scaled as that run was; a recipe's as the recipe is
        scaled = request.POST.get("config_from", "").startswith("run:") and bool(request.POST.get("quick"))
        _compare_to_recipe(config_form, request.POST.get("recipe", ""), quick=scaled)
    else:
        _compare_to_recipe(config_form, initial.get("recipe") or "", quick=bool(initial.get("quick")))
    parent_run = Run.objects.filter(id=initial.get("parent") or 0, team=team).first()
    return page(
        request,
        "lab/run_new.html",
        {"form": form, "config_form": config_form, "recipes": recipe_table, "parent_run": parent_run, "initial": initial},
        nav="runs",
    )


def _compare_to_recipe(config_form: ConfigForm, recipe: str, *, quick: bool = False) -> None:
    """Highlight what differs from the recipe's config (from the defaults without a recipe)."""
    if recipe in recipe_names():
        config_form.compare_to(recipe_config(recipe, quick=quick), f"recipe {recipe}{' (quick)' if quick else ''}")
    else:
        config_form.compare_to({}, "the defaults")


def _config_to_run(request, data: dict, config_form: ConfigForm, schema: dict) -> dict:
    """The config a submitted form runs: what the user sees and edits is what runs, always.

    `config_from` says what the fields were filled with: a recipe's own config (its name), another run's
    config (run:ID — a fork, a start from a checkpoint) or the defaults (empty). With a recipe, the fields the
    user changed from what was shown apply on top of the recipe (so quick keeps its scaling where nothing
    was edited); a run's config was shown whole, so the fields are the config. A JSON config is taken as is
    (named after the run if it has no name). The run's one name fills config.name.
    """
    if data["config_json"] is not None:
        config = data["config_json"]
        return {**config, "name": data["name"]} if isinstance(config, dict) and not config.get("name") else config
    submitted = config_form.to_config()
    shown_from = request.POST.get("config_from", "")
    if shown_from.startswith("run:"):
        return {**submitted, "name": data["name"]}
    # the defaults or a recipe were shown: the changed fields (the rest keeps the defaults that follow from
    # them, e.g. Dr. GRPO's advantage scaling, or the recipe's values)
    shown = recipe_config(data["recipe"]) if data["recipe"] and shown_from == data["recipe"] else {}
    return {**config_edits(ConfigForm(schema=schema, config=shown, prefix="cfg").initial_config(), submitted),
            "name": data["name"]}


def _attach_errors(form, config_form, exc: ValidationError) -> None:
    """Put the service's errors next to their fields (config errors are named by config path)."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.message_dict.items():
        if field in form.fields:
            form.add_error(field, errors)
        elif field in config_form.fields:
            config_form.add_error(field, errors)
        else:
            form.add_error(None, [f"{field}: {e}" for e in errors])


def _state_change(request, run_id: int, service, verb: str):
    run, access = get_for_user(request.user, Run, id=run_id)
    access.require("write")
    try:
        status = service(run=run, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Run {verb}: now {status}.")
    return HttpResponseRedirect(reverse("run", args=[run.id]))


@require_POST
def run_cancel_view(request, run_id: int):
    return _state_change(request, run_id, run_cancel, "cancel requested")


@require_POST
def run_resume_view(request, run_id: int):
    return _state_change(request, run_id, run_resume, "resumed")

