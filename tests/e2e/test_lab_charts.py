"""Chart layouts, read from plotly in real headless Chromium: quantities of different units or scales
never share one y axis (a learning rate of 3e-4 next to a gradient norm of 2 reads as a flat zero;
token lengths in the hundreds next to rates below 1 flatten the rates)."""
import json

import pytest

from tests.e2e.lab_browser import chromium_page, login, make_member, shot, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "browser-password-1"
STEPS = 60


@pytest.fixture
def pretrain_run(db, tmp_path):
    """A run with a pretraining base stage (train/ metrics) and evaluations (rates and mean length)."""
    from lab.models import Run
    from lab.services.ingest import ingest_events

    user, team = make_member("ada", PASSWORD, slug="lab", team_name="Reasoning lab")
    run = Run.objects.create(team=team, name="base then grpo", kind="grpo", status="completed", created_by=user,
                             config={"kind": "grpo", "total_steps": STEPS, "base": {"steps": STEPS}})
    events, seq = [], 0
    for step in range(1, STEPS + 1):
        seq += 1
        events.append({"seq": seq, "type": "metric", "step": step, "phase": "pretrain",
                       "metrics": {"train/loss": 4.0 / step, "train/grad_norm": 1.0 + 1 / step,
                                   "train/lr": 3e-4 * min(1.0, step / 10)}})
    for step in (20, 40, 60):
        for metric, value in (("pass@1", 0.2 + step / 200), ("cons@k", 0.3 + step / 200), ("mean_length", 300.0 + 5 * step)):
            seq += 1
            events.append({"seq": seq, "type": "eval", "step": step, "benchmark": "addition-test", "metric": metric,
                           "value": value, "n": 16})
        seq += 1
        events.append({"seq": seq, "type": "metric", "step": step, "phase": "eval",
                       "metrics": {"eval/addition-test/pass@1": 0.2 + step / 200,
                                   "eval/addition-test/mean_length": 300.0 + 5 * step}})
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    ingest_events(run, path, final=True)
    return run


def _layouts(page):
    """title → {y axes: their names, traces: (name, y axis)} of every drawn chart on the page."""
    return page.evaluate("""() => {
      const out = {};
      document.querySelectorAll('figure.chart').forEach((figure) => {
        const plot = figure.querySelector('.plot');
        if (figure.hidden || !plot || !plot._fullLayout) return;
        const axes = Object.keys(plot._fullLayout).filter((k) => /^yaxis\\d*$/.test(k)).sort();
        out[figure.querySelector('figcaption').textContent] = {
          axes: axes,
          sides: axes.map((k) => plot._fullLayout[k].side),
          traces: plot._fullData.map((t) => [t.name, t.yaxis]),
          tickformat: plot._fullLayout.yaxis.tickformat || '',
        };
      });
      return out;
    }""")


def _open_charts(page, base: str, path: str) -> None:
    """Logged in as ada, `path` open with its first chart drawn."""
    login(page, base, "ada", PASSWORD)
    page.goto(f"{base}{path}")
    page.wait_for_selector(".chart .main-svg", timeout=20000)


def _scroll_all_charts_into_view(page):
    for _ in range(12):  # charts load as they scroll into view
        page.mouse.wheel(0, 700)
        page.wait_for_timeout(150)


def test_pretraining_lr_has_its_own_axis_apart_from_the_grad_norm(live_server, pretrain_run):
    base = live_server.url
    with chromium_page(base) as page:
        _open_charts(page, base, f"/runs/{pretrain_run.id}/")
        _scroll_all_charts_into_view(page)
        wait_until(lambda: "Pretraining lr and grad norm" in _layouts(page), page)
        chart = _layouts(page)["Pretraining lr and grad norm"]
        shot(page, "lab-pretrain-lr-axis")
        assert chart["axes"] == ["yaxis", "yaxis2"] and chart["sides"] == ["left", "right"], chart
        assert dict(chart["traces"]) == {"train/grad_norm": "y", "train/lr": "y2"}, chart


def test_evaluation_rates_and_lengths_are_drawn_apart(live_server, pretrain_run):
    base = live_server.url
    with chromium_page(base) as page:
        _open_charts(page, base, f"/runs/{pretrain_run.id}/benchmarks/")
        wait_until(lambda: len(_layouts(page)) == 2, page)
        charts = _layouts(page)
        shot(page, "lab-run-benchmarks-split")
        scores, lengths = charts["Scores over steps"], charts["Completion length at evaluation"]
        assert sorted(name for name, _ in scores["traces"]) == ["addition-test cons@k", "addition-test pass@1"]
        assert scores["tickformat"] == ".0%"
        assert [name for name, _ in lengths["traces"]] == ["addition-test mean_length"]
        # the run page: its benchmark charts and the eval/ metric charts keep the units apart too
        page.goto(f"{base}/runs/{pretrain_run.id}/")
        page.wait_for_selector(".chart .main-svg", timeout=20000)
        _scroll_all_charts_into_view(page)
        wait_until(lambda: {"Benchmark scores", "Completion length at evaluation", "Evaluation", "Evaluation length"}
                   <= set(_layouts(page)), page)
        charts = _layouts(page)
        assert [n for n, _ in charts["Evaluation"]["traces"]] == ["eval/addition-test/pass@1"]
        assert [n for n, _ in charts["Evaluation length"]["traces"]] == ["eval/addition-test/mean_length"]
        assert all("mean_length" not in n for n, _ in charts["Benchmark scores"]["traces"])
