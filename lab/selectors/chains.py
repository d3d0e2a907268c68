"""Reads for the chain page and the Findings page: the database only (the worker stores chain.json's stages and
comparison.json on the chain run's `result`; lab.services.chains)."""
from __future__ import annotations

import statistics
from collections import defaultdict

from lab.models import EvalResult, Run, RunStatus
from lab.services.chains import CHAIN_KIND, chain_description, is_chain

METRICS = ("accuracy", "format_rate", "mixing_rate", "mean_length")
LABELS = {"accuracy": "accuracy (pass@1)", "format_rate": "format rate", "mixing_rate": "mixing rate",
          "mean_length": "mean length"}
ACCURACY_TOLERANCE = 0.05  # "similar accuracy": R1-mini at most 5 points below Zero
VERDICT_RULE = (
    "Reproduced when R1-mini is more readable than Zero — format rate not lower and language-mixing rate not "
    "higher, and one of them better — at similar or better accuracy (pass@1 at most "
    f"{ACCURACY_TOLERANCE:.2f} below Zero's); no difference in readability is inconclusive. "
    "With several seeds the rule is applied to the means."
)


def chain_stages(run: Run) -> list[dict]:
    """The chain run's stages as the worker last stored them, or its plan (all pending) before it started."""
    stored = ((run.result or {}).get("chain") or {}).get("stages")
    if stored:
        return stored
    if not is_chain(run.recipe):
        return []
    plan = chain_description(run.recipe)
    return [{"index": i, "name": s["name"], "kind": s["kind"], "recipe": s.get("recipe"), "make": s.get("make"),
             "description": s.get("description", ""), "status": "pending", "reason": "", "attempts": 0, "run": None,
             "artifacts": [], "inputs": [{"as": k, "stage": v["stage"], "artifact": v["artifact"], "run": None, "ref": ""}
                                         for k, v in sorted(s.get("inputs", {}).items())]}
            for i, s in enumerate(plan["stages"], 1)]


def verdict(comparison: dict | None) -> dict:
    """{"outcome": reproduced | not reproduced | inconclusive, "reasons": [...]} by VERDICT_RULE."""
    diff = (comparison or {}).get("difference") or {}
    if diff.get("accuracy") is None or diff.get("format_rate") is None:
        return {"outcome": "inconclusive", "reasons": ["accuracy or format rate missing for Zero or R1-mini"]}
    reasons = []
    if diff["format_rate"] < 0:
        reasons.append(f"format rate fell by {-diff['format_rate']:.2f}")
    if diff.get("mixing_rate") is not None and diff["mixing_rate"] > 0:
        reasons.append(f"mixing rate rose by {diff['mixing_rate']:.2f}")
    if diff["accuracy"] < -ACCURACY_TOLERANCE:
        reasons.append(f"accuracy fell by {-diff['accuracy']:.2f}")
    if reasons:
        return {"outcome": "not reproduced", "reasons": reasons}
    if diff["format_rate"] <= 0 and not (diff.get("mixing_rate") or 0) < 0:
        return {"outcome": "inconclusive", "reasons": ["R1-mini reads no better than Zero: format and mixing rates equal"]}
    return {"outcome": "reproduced", "reasons": []}


def _stage_accuracy(chain_ids: list[int]) -> dict[int, dict[str, float]]:
    """chain run id → {stage: pass@1 on heldout at the stage's last evaluation}."""
    rows = (EvalResult.objects.filter(run__parent_id__in=chain_ids, benchmark="heldout", metric="pass@1")
            .exclude(run__chain_stage="").order_by("step", "seq")
            .values_list("run__parent_id", "run__chain_stage", "value"))
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for parent, stage, value in rows:
        out[parent][stage] = value  # the last step wins
    return out


def _spread(values: list[float]) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values)}


def findings(team_id: int) -> list[dict]:
    """Completed chain runs of the team grouped by chain (recipe), each with its comparison, verdict, seed,
    date and commit, links to its stage runs; per group the seeds' mean and spread and a chart of accuracy per
    stage (one line per run)."""
    runs = list(Run.objects.filter(team_id=team_id, kind=CHAIN_KIND, status=RunStatus.COMPLETED)
                .order_by("recipe", "-finished_at").only("id", "name", "recipe", "quick", "config", "result",
                                                          "finished_at"))
    accuracy = _stage_accuracy([r.id for r in runs])
    groups: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        groups[run.recipe].append(run)
    out = []
    for recipe, members in groups.items():
        stage_names = [s["name"] for s in chain_description(recipe)["stages"]] if is_chain(recipe) else []
        rows = []
        for run in members:
            result = run.result or {}
            comparison = result.get("comparison")
            rows.append({
                "run": run, "seed": result.get("seed"), "quick": run.quick,
                "base": ((run.config or {}).get("model") or {}).get("source") or "the chain's own base",
                "commit": result.get("commit") or "unknown", "measured_at": run.finished_at or _parse_date(result.get("measured_at")),
                "comparison": comparison, "metrics": _metric_rows(comparison), "verdict": verdict(comparison),
                "stages": [{"name": s["name"], "run": s.get("run"), "status": s.get("status")}
                           for s in chain_stages(run)],
            })
        out.append({"recipe": recipe, "description": chain_description(recipe)["description"] if is_chain(recipe) else "",
                    "rows": rows, "seeds": _seed_groups(rows),
                    "chart": {"stages": stage_names, "series": [
                        {"name": f"run {r['run'].id} · seed {r['seed'] if r['seed'] is not None else 'default'}",
                         "y": [accuracy.get(r["run"].id, {}).get(name) for name in stage_names]} for r in rows]}})
    return out


def _parse_date(text):
    from django.utils.dateparse import parse_datetime

    return parse_datetime(text) if isinstance(text, str) else None


def _metric_rows(comparison: dict | None) -> list[dict]:
    if not comparison:
        return []
    base, final, diff = comparison.get("baseline") or {}, comparison.get("final") or {}, comparison.get("difference") or {}
    return [{"metric": LABELS[m], "zero": base.get(m), "final": final.get(m), "difference": diff.get(m)}
            for m in METRICS]


def _seed_groups(rows: list[dict]) -> list[dict]:
    """Runs of one chain at one scale and base, over seeds: mean ± sd per metric once there are 2 or more."""
    by_setup: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        if row["comparison"]:
            by_setup[(row["quick"], row["base"])].append(row)
    out = []
    for (quick, base), members in by_setup.items():
        if len(members) < 2:
            continue
        metrics, means = [], {}
        for metric in METRICS:
            entry = {"metric": LABELS[metric]}
            for side, key in (("zero", "baseline"), ("final", "final"), ("difference", "difference")):
                entry[side] = _spread([(m["comparison"].get(key) or {}).get(metric) for m in members])
            means[metric] = entry["difference"]["mean"] if entry["difference"] else None
            metrics.append(entry)
        out.append({"quick": quick, "base": base, "n": len(members),
                    "seeds": sorted({str(m["seed"]) if m["seed"] is not None else "default" for m in members}),
                    "metrics": metrics, "verdict": verdict({"difference": means})})
    return out
