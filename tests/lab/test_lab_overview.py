"""The manager's overview and runs list: team totals, server-side sort, quick (smoke-test) runs, the
best score per benchmark marked."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest


def _run(lab, name, **fields):
    from lab.models import Run

    fields.setdefault("config", {"kind": "grpo"})
    return Run.objects.create(team=lab.team, name=name, created_by=lab.owner, **fields)


def _names(html: str) -> list[str]:
    """The runs' names in table order."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<a href="/runs/\d+/">([^<]+)</a>', body)


@pytest.fixture
def team_runs(lab):
    from django.utils import timezone

    from lab.models import EvalResult, Run

    now = timezone.now()
    runs = {
        "bravo": _run(lab, "bravo", status="running", step=80, total_steps=100, compute_seconds=7200, gpu_count=0,
                      last_activity_at=now),
        "alpha": _run(lab, "alpha", status="queued", compute_seconds=0),
        "charlie": _run(lab, "charlie", status="completed", step=10, total_steps=100, compute_seconds=1800, gpu_count=2,
                        last_activity_at=now - timedelta(days=2)),
        "old": _run(lab, "old", status="completed", step=100, total_steps=100, compute_seconds=36000,
                    last_activity_at=now - timedelta(days=30)),
        "smoke": _run(lab, "smoke", status="starting", step=1, total_steps=4, quick=True, compute_seconds=60,
                      last_activity_at=now),
    }
    Run.objects.filter(id=runs["old"].id).update(created_at=now - timedelta(days=40))
    EvalResult.objects.create(run=runs["bravo"], seq=1, step=10, benchmark="gsm8k", metric="pass@1", value=0.30, n=8)
    EvalResult.objects.create(run=runs["charlie"], seq=1, step=10, benchmark="gsm8k", metric="pass@1", value=0.70, n=8)
    # charlie's evaluation job scores a checkpoint higher: it counts as charlie's own
    job = _run(lab, "charlie eval", kind="evaluate", status="completed", parent=runs["charlie"], parent_step=10)
    EvalResult.objects.create(run=job, seq=1, step=0, benchmark="gsm8k", metric="pass@1", value=0.90, n=8)
    return runs


def test_team_totals_count_active_queued_and_this_weeks_compute(lab, team_runs):
    from lab.selectors.runs import team_totals

    totals = team_totals(lab.team.id)
    assert totals.active == 2  # running bravo, starting smoke
    assert totals.queued == 1
    assert totals.quick == 1
    # bravo 2 h + smoke 1 min on CPU, alpha none; "old" was last active 30 days ago and does not count
    assert totals.cpu_hours_week == pytest.approx(2 + 60 / 3600 + 0)
    assert totals.gpu_hours_week == pytest.approx(0.5 * 2)  # charlie: 30 min on 2 GPUs


def test_overview_shows_the_totals_and_says_what_this_week_means(owner_client, team_runs):
    html = owner_client.get("/").content.decode()
    assert re.search(r'id="total-active">2<', html) and re.search(r'id="total-queued">1<', html)
    assert 'id="total-cpu">2.0<' in html and 'id="total-gpu">1.0<' in html
    assert "the last 7 days" in html


@pytest.mark.parametrize("sort, expected", [
    ("name", ["alpha", "alpha-run", "bravo", "charlie", "old", "smoke"]),
    ("-name", ["smoke", "old", "charlie", "bravo", "alpha-run", "alpha"]),
    ("status", ["bravo", "smoke", "alpha", "alpha-run", "charlie", "old"]),  # ties newest first
    ("-progress", ["charlie", "old", "bravo", "alpha-run", "smoke", "alpha"]),  # completed = 100%
    ("-compute", ["old", "bravo", "charlie", "smoke", "alpha", "alpha-run"]),
    ("-best:gsm8k", ["charlie", "bravo", "smoke", "alpha", "alpha-run", "old"]),
    ("best:gsm8k", ["bravo", "charlie", "smoke", "alpha", "alpha-run", "old"]),
])
def test_runs_table_sorts_on_the_server(owner_client, team_runs, sort, expected):
    from lab.models import Run

    Run.objects.filter(name="alpha-run").update(status="failed")  # the fixture's run: failed at step 30 of 100
    names = [n for n in _names(owner_client.get("/runs/", {"sort": sort}).content.decode()) if n != "charlie eval"]
    assert names == expected


def test_runs_table_default_order_is_newest_first_and_a_bad_sort_falls_back_to_it(owner_client, team_runs):
    default = _names(owner_client.get("/runs/").content.decode())
    assert default[0] == "charlie eval" and default[-1] == "old"
    assert _names(owner_client.get("/runs/", {"sort": "password"}).content.decode()) == default
    assert _names(owner_client.get("/runs/", {"sort": "-created"}).content.decode()) == default
    assert _names(owner_client.get("/runs/", {"sort": "created"}).content.decode()) == default[::-1]


def test_a_sorted_header_links_to_the_other_direction_and_keeps_the_filters(owner_client, team_runs):
    html = owner_client.get("/runs/", {"sort": "name", "status": "completed"}).content.decode()
    assert "sort=-name" in html and "status=completed" in html
    assert "sort=-best%3Agsm8k" in html  # the benchmark column is sortable, best first


def test_sorting_keeps_paging_consistent(owner_client, team_runs):
    first = _names(owner_client.get("/runs/", {"sort": "name", "per_page": 10}).content.decode())
    assert first[:3] == ["alpha", "alpha-run", "bravo"]


def test_quick_runs_are_shown_and_marked_by_default_and_can_be_hidden(owner_client, team_runs):
    html = owner_client.get("/").content.decode()
    assert "smoke" in _names(html)
    assert 'class="badge quick"' in html and "1 quick (smoke-test) run among these" in html
    hidden = owner_client.get("/", {"quick": "hide"}).content.decode()
    assert "smoke" not in _names(hidden) and "bravo" in _names(hidden)
    assert "1 quick run hidden" in hidden
    only = owner_client.get("/runs/", {"quick": "only"}).content.decode()
    assert _names(only) == ["smoke"]


def test_best_score_per_benchmark_is_marked_in_the_overview(owner_client, team_runs):
    html = owner_client.get("/").content.decode()
    best_cells = re.findall(r'<td class="num best" title="best ([^"]+) of these runs">([^<]+)</td>', html)
    assert sorted(best_cells) == [("addition-test", "★ 50.0%"), ("gsm8k", "★ 90.0%")]  # gsm8k: charlie's, through its evaluation job
    assert '<td class="num">30.0%</td>' in html  # bravo's gsm8k, not the best
    # the best of the runs listed: with the filters, bravo's 30% is the best of the running runs
    running = owner_client.get("/", {"status": "running"}).content.decode()
    assert re.findall(r'class="num best"[^>]*>([^<]+)<', running) == ["★ 30.0%"]


def test_the_best_score_mark_is_the_best_of_every_page(owner_client, team_runs, lab):
    from lab.models import Run

    Run.objects.bulk_create([Run(team=lab.team, name=f"filler {i}", config={}, created_by=lab.owner) for i in range(12)])
    first = owner_client.get("/", {"per_page": 10}).content.decode()
    assert "charlie" not in _names(first) and "★" not in first.split("<tbody>", 1)[1]
    second = owner_client.get("/", {"per_page": 10, "page": 2}).content.decode()
    assert "charlie" in _names(second) and "★ 90.0%" in second


def _chart(html: str) -> dict:
    import json

    return json.loads(html.split('<script id="benchmark-chart" type="application/json">', 1)[1].split("</script>", 1)[0])


def test_team_benchmarks_page_charts_a_chosen_benchmark_one_line_per_run(owner_client, team_runs, lab):
    from lab.models import EvalResult

    EvalResult.objects.create(run=team_runs["bravo"], seq=2, step=20, benchmark="gsm8k", metric="pass@1", value=0.4, n=8)
    html = owner_client.get("/benchmarks/", {"benchmark": "gsm8k"}).content.decode()
    chart = _chart(html)
    assert chart["benchmark"] == "gsm8k" and chart["metric"] == "pass@1"
    lines = {line["name"].split(" (#")[0]: (line["x"], line["y"]) for line in chart["series"]}
    assert lines["bravo"] == ([10, 20], [0.3, 0.4])
    assert lines["charlie"] == ([10], [0.9])  # its evaluation job's score, at the checkpoint step it evaluated
    assert "alpha-run" not in lines  # no gsm8k result
    assert 'id="benchmark-plot"' in html and "lab/benchmarks.js" in html and "<script>" not in html


def test_team_benchmarks_page_defaults_to_the_first_benchmark_and_ignores_an_unknown_one(owner_client, team_runs):
    first = _chart(owner_client.get("/benchmarks/").content.decode())
    assert first["benchmark"] == "addition-test"
    assert _chart(owner_client.get("/benchmarks/", {"benchmark": "<nope>"}).content.decode())["benchmark"] == "addition-test"
