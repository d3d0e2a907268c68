"""Reads for the chain page and the Findings page: the database only (the worker stores chain.json's stages and
comparison.json on the chain run's `result`; lab.services.chains).

A comparison is read in the general shape of r1model.train.chains (finding, metrics, verdict, table, charts,
headline, note) whatever chain wrote it; one stored before that shape (r1-mini's baseline/final/difference,
long2short's methods) gets its general keys from the chain's own reader. Everything in it is data: strings are
cut to length and numbers checked here, and the templates escape them."""
from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict

from lab.models import EvalResult, Run, RunStatus
from lab.services.chains import CHAIN_KIND, chain_description, is_chain
from r1model.train.chains import long2short_general, r1_mini_general
from r1model.train.findings import CHAINS

OUTCOMES = ("reproduced", "not reproduced", "inconclusive")
MAX_TEXT = 2000  # a finding, a note, a reason
MAX_NAME = 200  # a metric, a column, a series, a title
MAX_ROWS, MAX_COLUMNS, MAX_CHARTS, MAX_SERIES, MAX_POINTS = 200, 20, 8, 20, 2000
OLD_SHAPES = {"r1-mini": (("baseline", "final", "difference"), r1_mini_general), "long2short": (("methods",), long2short_general)}


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


# --------------------------------------------------------------------------------------------- one comparison

def _text(value, limit: int = MAX_TEXT) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _cell(value):
    number = _number(value)
    if number is not None:
        return number
    return _text(value, MAX_NAME) if isinstance(value, str) else None


def _verdict(value) -> dict | None:
    if not isinstance(value, dict) or value.get("outcome") not in OUTCOMES:
        return None
    reasons = value.get("reasons") if isinstance(value.get("reasons"), list) else []
    return {"outcome": value["outcome"], "reasons": [_text(r) for r in reasons[:20] if isinstance(r, str)],
            "rule": _text(value.get("rule"))}


def apply_verdict(recipe: str, metrics: dict) -> dict | None:
    """The chain's own verdict (Chain.verdict) on flat metrics; None when the chain has none (or it fails)."""
    chain = CHAINS.get(recipe)
    if chain is None or chain.verdict is None or not metrics:
        return None
    try:
        return _verdict(chain.verdict(dict(metrics)))
    except (TypeError, ValueError, KeyError, ArithmeticError):
        return None


def _charts(value) -> list[dict]:
    out = []
    for chart in value[:MAX_CHARTS] if isinstance(value, list) else []:
        if not isinstance(chart, dict) or not isinstance(chart.get("series"), list):
            continue
        series = []
        for s in chart["series"][:MAX_SERIES]:
            if not isinstance(s, dict) or not isinstance(s.get("x"), list) or not isinstance(s.get("y"), list):
                continue
            series.append({"name": _text(s.get("name"), MAX_NAME), "x": [_cell(x) for x in s["x"][:MAX_POINTS]],
                           "y": [_number(y) for y in s["y"][:MAX_POINTS]]})
        if series:
            out.append({"title": _text(chart.get("title"), MAX_NAME), "x_label": _text(chart.get("x_label"), MAX_NAME),
                        "y_label": _text(chart.get("y_label"), MAX_NAME), "series": series})
    return out


def read_comparison(recipe: str, comparison) -> dict | None:
    """A stored comparison in the general shape, checked: {finding, metrics, verdict, table, charts, headline,
    note}. The verdict is the stored one, else the chain's verdict on the metrics. None when nothing is stored."""
    if not isinstance(comparison, dict):
        return None
    data = dict(comparison)
    old = OLD_SHAPES.get(recipe)
    if not isinstance(data.get("metrics"), dict) and old and any(isinstance(data.get(k), dict) for k in old[0]):
        try:
            data.update(old[1](data))
        except (TypeError, ValueError, AttributeError):
            pass
    raw = data.get("metrics")
    metrics = {_text(k, MAX_NAME): _number(v) for k, v in raw.items() if isinstance(k, str)} if isinstance(raw, dict) else {}
    table = data.get("table") if isinstance(data.get("table"), dict) else {}
    columns = table.get("columns") if isinstance(table.get("columns"), list) else []
    columns = [_text(c, MAX_NAME) for c in columns[:MAX_COLUMNS]]
    rows = table.get("rows") if isinstance(table.get("rows"), list) else []
    rows = [[_cell(c) for c in row[:MAX_COLUMNS]] for row in rows[:MAX_ROWS] if isinstance(row, list)]
    headline = data.get("headline") if isinstance(data.get("headline"), dict) else {}
    chain = CHAINS.get(recipe)
    return {
        "finding": _text(data.get("finding")) or (chain.finding if chain else ""),
        "metrics": metrics,
        "verdict": _verdict(data.get("verdict")) or apply_verdict(recipe, metrics)
        or {"outcome": "inconclusive", "reasons": ["no metrics stored for this run"], "rule": ""},
        "table": {"columns": columns, "rows": rows} if columns or rows else None,
        "charts": _charts(data.get("charts")),
        "headline": {"name": _text(headline.get("name"), MAX_NAME), "value": _number(headline.get("value"))}
        if headline.get("name") else None,
        "note": _text(data.get("note")),
    }


# --------------------------------------------------------------------------------------------- the Findings page

def _stage_accuracy(chain_ids: list[int]) -> dict[int, dict[str, float]]:
    """chain run id → {stage: pass@1 on heldout at the stage's last evaluation}."""
    rows = (EvalResult.objects.filter(run__parent_id__in=chain_ids, benchmark="heldout", metric="pass@1")
            .exclude(run__chain_stage="").order_by("step", "seq")
            .values_list("run__parent_id", "run__chain_stage", "value"))
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for parent, stage, value in rows:
        out[parent][stage] = value  # the last step wins
    return out


def spread(values: list) -> dict | None:
    """{"mean", "sd", "n"} of the numbers among `values` (sd None for one)."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values)}


def _seed_label(seed) -> str:
    return str(seed) if seed is not None else "default"


def run_row(run: Run) -> dict:
    """One chain run as the pages show it: seed, base, commit, date, its comparison read, its stage runs."""
    result = run.result or {}
    seed = result["seed"] if "seed" in result else (run.config or {}).get("seed")  # stored on the first sync
    return {
        "run": run, "seed": seed, "quick": run.quick,
        "base": ((run.config or {}).get("model") or {}).get("source") or "the chain's own base",
        "commit": result.get("commit") or "unknown",
        # the commit chain.json recorded may carry local changes; an old directory's is the importing checkout's
        "commit_dirty": bool(result.get("commit_dirty")), "commit_at_import": bool(result.get("commit_at_import")),
        "measured_at": run.finished_at or _parse_date(result.get("measured_at")),
        "result": read_comparison(run.recipe, result.get("comparison")),
        "stages": [{"name": s.get("name"), "run": s.get("run"), "status": s.get("status")} for s in chain_stages(run)],
    }


def findings(team_id: int) -> list[dict]:
    """Completed chain runs of the team grouped by chain (recipe): per chain its finding, each run (seed, date,
    commit, stage runs, its comparison and verdict), the charts of every run's comparison overlaid (and heldout
    accuracy per stage from the stage runs unless they draw a chart by stage), and per setup with 2 or more seeds the mean ± sd of each metric with the chain's verdict
    on the means."""
    runs = list(Run.objects.filter(team_id=team_id, kind=CHAIN_KIND, status=RunStatus.COMPLETED)
                .order_by("recipe", "-finished_at").only("id", "name", "recipe", "quick", "config", "result",
                                                          "finished_at"))
    accuracy = _stage_accuracy([r.id for r in runs])
    groups: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        groups[run.recipe].append(run)
    out = []
    for recipe, members in groups.items():
        chain = CHAINS.get(recipe)
        stage_names = [s["name"] for s in chain_description(recipe)["stages"]] if chain else []
        rows = [run_row(run) for run in members]
        finding = next((r["result"]["finding"] for r in rows if r["result"] and r["result"]["finding"]),
                       chain.finding if chain else "")
        rule = next((r["result"]["verdict"]["rule"] for r in rows if r["result"] and r["result"]["verdict"]["rule"]), "")
        seeds = _seed_groups(recipe, rows)
        # the charts draw the runs the means count (and runs in no group), not those a later run of their seed replaced
        superseded = {o["run"] for g in seeds for o in g["superseded"]}
        drawn = [r for r in rows if r["run"].id not in superseded]
        stage_chart = {"title": "heldout accuracy at each stage's last evaluation", "x_label": "stage",
                       "y_label": "pass@1",
                       "series": [{"name": _run_label(r), "x": stage_names,
                                   "y": [accuracy.get(r["run"].id, {}).get(name) for name in stage_names]} for r in drawn]}
        charts = overlay_charts(drawn)
        if (not any(c["x_label"] == "stage" for c in charts)
                and any(v is not None for s in stage_chart["series"] for v in s["y"])):
            charts.insert(0, stage_chart)  # unless the comparison draws its own chart by stage
        out.append({"recipe": recipe, "description": chain.description if chain else "", "finding": finding,
                    "rule": rule, "rows": rows, "seeds": seeds, "charts": charts})
    return out


def _run_label(row: dict) -> str:
    return f"run {row['run'].id} · seed {_seed_label(row['seed'])}"


def _is_reference(series: dict) -> bool:
    """A series that marks a level rather than measures one: `"reference": true` in the comparison, or (stored
    before that flag) a flat line named "target …"."""
    y = series.get("y") or []
    return bool(series.get("reference")) or (str(series.get("name", "")).startswith("target ")
                                              and len({json.dumps(v) for v in y}) == 1)


def overlay_charts(rows: list[dict]) -> list[dict]:
    """The runs' comparison charts, one chart per title with every run's series (named by run and seed when
    there are several runs); a reference line every run draws alike (a target: _is_reference) is drawn once."""

    def key(s: dict) -> tuple:
        return s["name"], json.dumps(s.get("x")), json.dumps(s.get("y"))

    drawn: dict[str, list[set]] = defaultdict(list)  # title -> per run drawing it, its series' keys
    for row in rows:
        for chart in (row["result"] or {}).get("charts") or []:
            drawn[chart["title"]].append({key(s) for s in chart["series"]})
    by_title: dict[str, dict] = {}
    for row in rows:
        for chart in (row["result"] or {}).get("charts") or []:
            merged = by_title.setdefault(chart["title"], {**chart, "series": []})
            runs = drawn[chart["title"]]
            for s in chart["series"]:
                # a reference line every run draws alike (a target) is drawn once, under its own name
                common = (len(runs) > 1 and _is_reference(s) and all(key(s) in keys for keys in runs))
                if common and any(t["name"] == s["name"] for t in merged["series"]):
                    continue
                name = f"{_run_label(row)} · {s['name']}" if len(rows) > 1 and not common else s["name"]
                merged["series"].append({**s, "name": name, **({"reference": True} if _is_reference(s) else {})})
    return list(by_title.values())


def _setup(row: dict) -> tuple:
    """What makes runs of one chain seeds of one measurement: scale, base model and --set changes."""
    return row["quick"], row["base"], json.dumps((row["run"].config or {}).get("sets") or [], sort_keys=True)


def _seed_groups(recipe: str, rows: list[dict]) -> list[dict]:
    """Runs of one chain at one setup (_setup), over seeds: mean ± sd per metric once there are 2 or more seeds,
    and the chain's verdict on the means. A seed counts once: its latest run (by the date measured, then run
    id); its older runs are named as superseded (a chain run again after a fix does not average with the old)."""
    by_setup: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        if row["result"] and row["result"]["metrics"]:
            by_setup[_setup(row)].append(row)
    out = []
    for (quick, base, _), members in by_setup.items():
        latest: dict = {}
        for m in sorted(members, key=lambda m: (m["measured_at"].timestamp() if m["measured_at"] else 0.0, m["run"].id)):
            latest[m["seed"]] = m
        superseded = [{"run": m["run"].id, "seed": _seed_label(m["seed"]), "by": latest[m["seed"]]["run"].id}
                      for m in members if latest[m["seed"]] is not m]
        members = sorted(latest.values(),
                         key=lambda m: (m["seed"] is not None, m["seed"] if isinstance(m["seed"], int) else 0))
        if len(members) < 2:
            continue
        names = list(dict.fromkeys(name for m in members for name in m["result"]["metrics"]))
        metrics = [{"metric": name, "spread": spread([m["result"]["metrics"].get(name) for m in members])}
                   for name in names]
        means = {m["metric"]: m["spread"]["mean"] if m["spread"] else None for m in metrics}
        out.append({"quick": quick, "base": base, "n": len(members),
                    "seeds": [_seed_label(m["seed"]) for m in members],
                    "runs": [m["run"].id for m in members], "superseded": superseded,
                    # per commit: whether any of its runs had local changes or only an import-time commit
                    "commits": [{"commit": c, "commit_dirty": any(m["commit_dirty"] for m in members if m["commit"] == c),
                                 "commit_at_import": any(m["commit_at_import"] for m in members if m["commit"] == c)}
                                for c in sorted({m["commit"] for m in members})],
                    "metrics": metrics, "verdict": apply_verdict(recipe, means)})
    return out


def _parse_date(text):
    from django.utils.dateparse import parse_datetime

    return parse_datetime(text) if isinstance(text, str) else None
