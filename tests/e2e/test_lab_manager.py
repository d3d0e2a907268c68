"""The manager's view, in real headless Chromium: team totals on the overview, sorting the runs table by
a benchmark, the best score starred, quick runs hidden on request, and the team benchmarks page's chart
of one benchmark across runs and checkpoints. Screenshots: tests/artifacts/lab-manager-*.png."""
import pytest

from tests.e2e.lab_browser import chromium_page, login, make_project_member, shot, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "browser-password-1"


@pytest.fixture
def world(db):
    from django.utils import timezone

    from lab.models import EvalResult, Run

    user, team, project = make_project_member("grace", PASSWORD, slug="mgr", team_name="Manager's lab")
    now = timezone.now()

    def run(name, **fields):
        return Run.objects.create(team=team, project=project, name=name, config={"kind": "grpo"}, created_by=user,
                                  recipe="aha-mini", last_activity_at=now, **fields)

    # (name, status, step, total, compute seconds, GPUs, gsm8k pass@1 by step)
    table = [
        ("seed 0", "completed", 80, 80, 5400, 0, {20: 0.05, 40: 0.21, 60: 0.38, 80: 0.47}),
        ("seed 1", "completed", 80, 80, 5200, 0, {20: 0.04, 40: 0.30, 60: 0.55, 80: 0.76}),
        ("seed 2 <b>bold</b>", "running", 50, 80, 3000, 0, {20: 0.06, 40: 0.33}),
        ("gpu sweep lr 3e-4", "running", 120, 400, 1800, 2, {100: 0.12}),
    ]
    runs = []
    for name, status, step, total, seconds, gpus, scores in table:
        r = run(name, status=status, step=step, total_steps=total, compute_seconds=seconds, gpu_count=gpus,
                queue="gpu" if gpus else "cpu")
        EvalResult.objects.bulk_create(
            [EvalResult(run=r, seq=i, step=s, benchmark="gsm8k", metric="pass@1", value=v, n=200) for i, (s, v) in enumerate(scores.items())]
            + [EvalResult(run=r, seq=100 + i, step=s, benchmark="addition-test", metric="pass@1", value=min(1.0, v * 1.5), n=200)
               for i, (s, v) in enumerate(scores.items())]
        )
        runs.append(r)
    run("queued next", status="queued")
    for i in range(3):
        run(f"smoke test {i}", status="completed", quick=True, step=4, total_steps=4, compute_seconds=20)
    return {"user": user, "team": team, "runs": runs}


def test_manager_sees_totals_sorts_by_best_score_and_charts_a_benchmark(live_server, world):
    base = live_server.url
    with chromium_page(base) as page:
        login(page, base, "grace", PASSWORD)
        page.wait_for_selector("section.totals")
        assert page.inner_text("#total-active") == "2"
        assert page.inner_text("#total-queued") == "1"
        # 5,400 + 5,200 + 3,000 + 3 × 20 s on CPU; 1,800 s on 2 GPUs
        assert page.inner_text("#total-cpu") == "3.8" and page.inner_text("#total-gpu") == "1.0"
        assert "last 7 days" in page.inner_text("section.totals")
        assert page.locator("table.runs-table .badge.quick").count() == 3
        shot(page, "lab-manager-overview")

        page.click("table.runs-table th a:has-text('gsm8k')")  # best first
        page.wait_for_url("**sort=-best%3Agsm8k**")
        first_row = page.locator("table.runs-table tbody tr").first
        assert first_row.locator("td").first.inner_text().startswith("seed 1")
        starred = page.locator("table.runs-table td.best")
        assert starred.count() == 2  # gsm8k and addition-test, both seed 1's
        assert sorted(starred.all_inner_texts()) == ["★ 100.0%", "★ 76.0%"]  # addition-test, gsm8k
        assert "seed 2 <b>bold</b>" in page.inner_text("table.runs-table")  # shown as text, not markup
        page.click("table.runs-table th a:has-text('gsm8k')")  # again: worst first, runs without a score last
        page.wait_for_url("**sort=best%3Agsm8k**")
        assert page.locator("table.runs-table tbody tr").first.locator("td").first.inner_text().startswith("gpu sweep")

        page.click("#quick-note a:text('hide them')")
        page.wait_for_selector("text=3 quick runs hidden")
        assert page.locator("table.runs-table .badge.quick").count() == 0
        assert "sort=best%3Agsm8k" in page.url  # the sort survives the filter
        shot(page, "lab-manager-sorted")

        page.goto(f"{base}/benchmarks/")
        page.wait_for_selector("#benchmark-plot .main-svg", timeout=20000)
        page.select_option("#benchmark-select", "gsm8k")  # submits on change
        page.wait_for_url("**benchmark=gsm8k**")
        page.wait_for_selector("#benchmark-plot .main-svg", timeout=20000)
        wait_until(lambda: page.locator("#benchmark-plot .scatterlayer .trace").count() == 4, page)
        legend = page.locator("#benchmark-plot .legend").first.text_content()  # SVG: text, not inner_text
        assert "seed 1" in legend and "gpu sweep lr 3e-4" in legend and "seed 2 <b>bold</b>" in legend
        shot(page, "lab-manager-benchmark-chart")

        assert page.lab_events["offsite_requests"] == []
        assert page.lab_events["console_errors"] == []
