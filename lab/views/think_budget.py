"""Launch a think-budget evaluation of a run's checkpoint (lab.services.think_budget); its curve is drawn on the
evaluate run's own page (templates/lab/_think_budget_curve.html)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect

from lab.access import get_for_user
from lab.models import Run
from lab.services.evaluations import evaluation_config
from lab.services.think_budget import (
    DEFAULT_BUDGETS, MIN_BUDGET, checkpoint_steps, eval_max_new_tokens, think_budget_create,
)
from lab.views.common import int_param, page


@login_required
def think_budget_new(request, run_id: int):
    """GET: the form (checkpoint step, budgets); POST: queue the evaluate run and go to its page."""
    run, access = get_for_user(request.user, Run.objects.select_related("project"), id=run_id)
    steps = checkpoint_steps(run)
    params = request.POST if request.method == "POST" else request.GET
    step = int_param(params, "step", steps[0] if steps else None)
    values = {"step": step, "budgets": params.get("budgets", DEFAULT_BUDGETS)}
    errors: dict = {}
    status = 200
    if request.method == "POST":
        if not access.can_write:
            errors, status = {"form": ["your role cannot start runs"]}, 403
        elif step is None:
            errors, status = {"step": ["choose a checkpoint step"]}, 400
        else:
            try:
                made = think_budget_create(team=run.team, user=request.user, run=run, step=step,
                                           budgets=values["budgets"], client_token=request.POST.get("client_token", ""))
            except ValidationError as exc:
                errors, status = exc.message_dict, 400
            else:
                messages.success(request, f"think-budget evaluation of run:{run.id}@{step} queued; its curve appears "
                                 "here when it completes")
                return redirect("run", run_id=made.id)
    max_new_tokens, settings = None, {}
    if run.config:
        try:
            config = evaluation_config(run.config, source="tiny", benchmarks=["heldout"], name="budget")
        except ValidationError:
            pass
        else:
            max_new_tokens, settings = eval_max_new_tokens(config), config["evaluation"]
    return page(request, "lab/think_budget_new.html", {
        "run": run, "steps": steps, "values": values, "errors": errors, "can_write": access.can_write,
        "max_new_tokens": max_new_tokens, "min_budget": MIN_BUDGET, "settings": settings,
    }, status=status, nav="runs")
