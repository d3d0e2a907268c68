"""Chains: launch one (or one per seed), its page (stages, artifacts, lineage, its comparison), and the Findings
page (lab.selectors.chains)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect

from lab.access import get_for_user
from lab.models import Run
from lab.selectors.chains import chain_stages, findings, run_row
from lab.services.chains import CHAIN_KIND, chain_create, chain_description, chain_names, parse_seeds
from lab.views.common import page, team_page


def _charts(prefix: str, charts: list[dict]) -> list[dict]:
    return [{"id": f"{prefix}-{i}", **chart} for i, chart in enumerate(charts)]


@team_page
def chain_new(request, team, access):
    """Launch a chain (e.g. r1-mini), optionally on another base model (the base stage's model.source), once per
    seed of the seeds field ("0,1,2": three chain runs)."""
    names = chain_names()
    values = {"chain": request.GET.get("chain") or (names[0] if names else ""), "name": "",
              "base_model": request.GET.get("base", ""), "seed": request.GET.get("seeds", ""),
              "quick": request.GET.get("quick") == "1", "queue": Run.Queue.CPU}
    focus = "base_model" if request.GET.get("focus") == "base_model" else ""
    errors: dict = {}
    if request.method == "POST":
        focus = ""
        if not access.can_write:
            return page(request, "lab/chain_new.html", {"errors": {"form": ["your role cannot start runs"]},
                                                        "values": values, "chains": names}, status=403, nav="findings")
        post = request.POST
        values = {"chain": post.get("chain", ""), "name": post.get("name", ""), "base_model": post.get("base_model", ""),
                  "seed": post.get("seed", "").strip(), "quick": post.get("quick") == "1",
                  "queue": post.get("queue", Run.Queue.CPU)}
        try:
            seeds = parse_seeds(values["seed"])
            token = post.get("client_token", "")
            with transaction.atomic():  # every seed's run, or none
                runs = [chain_create(team=team, user=request.user, chain=values["chain"],
                                     name=_seed_name(values["name"] or values["chain"], seed, len(seeds)),
                                     quick=values["quick"], seed=seed, base_model=values["base_model"],
                                     queue=values["queue"],
                                     client_token=f"{token}:{seed}" if token and len(seeds) > 1 else token)
                        for seed in seeds]
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            if len(runs) == 1:
                messages.success(request, f"chain {runs[0].recipe} queued")
            else:
                messages.success(request, f"{len(runs)} runs of chain {runs[0].recipe} queued, seeds "
                                 f"{', '.join(str(s) for s in seeds)}: runs {', '.join(str(r.id) for r in runs)}; "
                                 "the Findings page shows their mean ± sd once they complete")
            return redirect("chain", run_id=runs[0].id)
    plans = [chain_description(name) for name in names]  # the chosen one shown; the form's script swaps them
    return page(request, "lab/chain_new.html", {"values": values, "errors": errors, "chains": names, "plans": plans,
                                                "queues": Run.Queue.choices, "can_write": access.can_write,
                                                "focus": focus},
                status=400 if errors else 200, nav="findings")


def _seed_name(name: str, seed: int | None, count: int) -> str:
    name = name.strip()
    return f"{name} · seed {seed}" if count > 1 else name


@login_required
def chain_detail(request, run_id: int):
    """A chain run's stages: status, reason, the run each stage is, what it produced and took (references), and
    once completed its comparison (table, charts, verdict)."""
    run, access = get_for_user(request.user, Run, id=run_id)
    if run.chain_stage and run.parent_id:
        return redirect("chain", run_id=run.parent_id)
    if run.kind != CHAIN_KIND:
        return redirect("run", run_id=run.id)
    result = run.result or {}
    row = run_row(run)
    stages = chain_stages(run)
    comparison = row["result"]
    return page(request, "lab/chain_detail.html", {
        "run": run, "can_write": access.can_write, "stages": stages, "stage_total": run.total_steps or len(stages),
        "lineage": (result.get("chain") or {}).get("lineage") or [], "row": row, "comparison": comparison,
        "seed": row["seed"],
        "charts": _charts("chart", comparison["charts"]) if comparison else [],
    }, nav="findings")


@team_page
def findings_page(request, team, access):
    groups = findings(team.id)
    charts = []
    for i, group in enumerate(groups):
        group["charts"] = _charts(f"chart-{i}", group["charts"])
        charts += group["charts"]
    return page(request, "lab/findings.html", {"groups": groups, "can_write": access.can_write, "charts": charts},
                nav="findings")
