"""Chains: launch one, its page (stages, artifacts, lineage), and the Findings page (lab.selectors.chains)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect

from lab.access import get_for_user
from lab.models import Run
from lab.selectors.chains import LABELS, VERDICT_RULE, chain_stages, findings, verdict, _metric_rows
from lab.services.chains import CHAIN_KIND, chain_create, chain_description, chain_names
from lab.views.common import page, team_page


@team_page
def chain_new(request, team, access):
    """Launch a chain (e.g. r1-mini), optionally on another base model (the base stage's model.source)."""
    names = chain_names()
    values = {"chain": request.GET.get("chain") or (names[0] if names else ""), "name": "", "base_model": "",
              "seed": "", "quick": request.GET.get("quick") == "1", "queue": Run.Queue.CPU}
    values["base_model"] = request.GET.get("base", "")
    errors: dict = {}
    if request.method == "POST":
        if not access.can_write:
            return page(request, "lab/chain_new.html", {"errors": {"form": ["your role cannot start runs"]},
                                                        "values": values, "chains": names}, status=403, nav="findings")
        post = request.POST
        values = {"chain": post.get("chain", ""), "name": post.get("name", ""), "base_model": post.get("base_model", ""),
                  "seed": post.get("seed", "").strip(), "quick": post.get("quick") == "1",
                  "queue": post.get("queue", Run.Queue.CPU)}
        seed = None
        if values["seed"]:
            try:
                seed = int(values["seed"])
            except ValueError:
                errors["seed"] = ["must be a whole number"]
        if not errors:
            try:
                run = chain_create(team=team, user=request.user, chain=values["chain"], name=values["name"],
                                   quick=values["quick"], seed=seed, base_model=values["base_model"],
                                   queue=values["queue"], client_token=post.get("client_token", ""))
                messages.success(request, f"chain {run.recipe} queued")
                return redirect("chain", run_id=run.id)
            except ValidationError as exc:
                errors = exc.message_dict
    plan = chain_description(values["chain"]) if values["chain"] in names else None
    return page(request, "lab/chain_new.html", {"values": values, "errors": errors, "chains": names, "plan": plan,
                                                "queues": Run.Queue.choices, "can_write": access.can_write},
                status=400 if errors else 200, nav="findings")


@login_required
def chain_detail(request, run_id: int):
    """A chain run's stages: status, reason, the run each stage is, what it produced and took (references)."""
    run, access = get_for_user(request.user, Run, id=run_id)
    if run.chain_stage and run.parent_id:
        return redirect("chain", run_id=run.parent_id)
    if run.kind != CHAIN_KIND:
        return redirect("run", run_id=run.id)
    result = run.result or {}
    comparison = result.get("comparison")
    stages = chain_stages(run)
    return page(request, "lab/chain_detail.html", {
        "run": run, "can_write": access.can_write, "stages": stages, "stage_total": run.total_steps or len(stages),
        "lineage": (result.get("chain") or {}).get("lineage") or [], "comparison": comparison,
        "metrics": _metric_rows(comparison), "verdict": verdict(comparison) if comparison else None,
        "commit": result.get("commit") or "unknown", "seed": result.get("seed"), "rule": VERDICT_RULE,
    }, nav="findings")


@team_page
def findings_page(request, team, access):
    groups = findings(team.id)
    return page(request, "lab/findings.html", {
        "groups": groups, "rule": VERDICT_RULE, "labels": LABELS, "can_write": access.can_write,
        "charts": [{"id": f"chart-{i}", "data": g["chart"]} for i, g in enumerate(groups)],
    }, nav="findings")
