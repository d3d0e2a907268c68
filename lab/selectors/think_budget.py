"""The think-budget curve of a run (its `eval` results on '<benchmark>@think<=B', r1model.evaluate.runner
budget_benchmark): accuracy and mean length against the budget B, per benchmark, with the unbudgeted value."""
from __future__ import annotations

import re

from lab.models import EvalResult, Run

BUDGETED = re.compile(r"(?P<benchmark>.+)@think<=(?P<budget>[0-9]{1,9})")
METRICS = {"pass@1": ("accuracy vs think budget", "pass@1"),
           "mean_length": ("mean length vs think budget", "response tokens")}
SHOWN = ("pass@1", "mean_length", "token_efficiency")


def think_budget_curve(run: Run) -> dict | None:
    """{"charts": [accuracy, mean length] (the Findings charts' shape), "rows": [{benchmark, budget, pass@1,
    mean_length, token_efficiency}]} from the run's last evaluation of each benchmark; None without budgets."""
    values: dict[tuple[str, int | None], dict[str, float]] = {}
    rows = (EvalResult.objects.filter(run=run, metric__in=SHOWN, value__isnull=False)
            .order_by("step", "seq").values_list("benchmark", "metric", "value"))
    for benchmark, metric, value in rows:  # the last step wins
        match = BUDGETED.fullmatch(benchmark)
        key = (match["benchmark"], int(match["budget"])) if match else (benchmark, None)
        values.setdefault(key, {})[metric] = value
    benchmarks = sorted({name for name, budget in values if budget is not None})
    if not benchmarks:
        return None
    charts = []
    for metric, (title, label) in METRICS.items():
        series = []
        for name in benchmarks:
            budgets = sorted(b for n, b in values if n == name and b is not None)
            series.append({"name": name, "x": budgets, "y": [values[(name, b)].get(metric) for b in budgets]})
            unbudgeted = values.get((name, None), {}).get(metric)
            if unbudgeted is not None:
                series.append({"name": f"{name}, no budget", "x": [budgets[0], budgets[-1]],
                               "y": [unbudgeted, unbudgeted], "dash": True})
        charts.append({"id": f"think-budget-{metric.replace('@', '-')}", "title": title,
                       "x_label": "think budget (tokens)", "y_label": label, "series": series})
    table = [{"benchmark": name, "budget": budget, **{m.replace("@", "_"): v.get(m) for m in SHOWN}}
             for (name, budget), v in sorted(values.items(), key=lambda kv: (kv[0][0], kv[0][1] is None, kv[0][1] or 0))
             if name in benchmarks]
    return {"charts": charts, "rows": table}
