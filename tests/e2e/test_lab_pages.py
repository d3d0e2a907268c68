"""What a person sees, in real headless Chromium: log in, create a dataset from a generator, read a
run's dashboard and a trace group, annotate, see the benchmark table. Screenshots: tests/artifacts/."""
import pytest

from tests.e2e.lab_browser import (
    chromium_page, create_generated_dataset, login, make_project_member, save_staged_dataset, shot, wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "browser-password-1"


@pytest.fixture
def world(db):
    from lab.services.synthetic import make_synthetic_run

    user, team, project = make_project_member("ada", PASSWORD, slug="lab", team_name="Reasoning lab")
    run = make_synthetic_run(team=team, user=user, name="aha-mini seed 0", steps=150, traces_per_step=8, group_size=4, project=project)
    make_synthetic_run(team=team, user=user, name="aha-mini seed 1", steps=120, traces_per_step=4, group_size=4, seed=1, status="running", project=project)
    return {"user": user, "team": team, "run": run}


def test_researcher_walks_through_the_lab(live_server, world):
    base = live_server.url
    run = world["run"]
    with chromium_page(base) as page:
        login(page, base, "ada", PASSWORD)
        page.wait_for_selector("table.runs-table")
        assert "aha-mini seed 0" in page.inner_text("table.runs-table")
        shot(page, "lab-overview")

        create_generated_dataset(page, base, "adds-3", 50)
        shot(page, "lab-dataset-report")
        save_staged_dataset(page)
        assert "v1" in page.inner_text("main")
        shot(page, "lab-dataset-detail")

        page.goto(f"{base}/runs/{run.id}/")
        page.wait_for_selector(".chart .main-svg", timeout=20000)
        for _ in range(12):  # charts load as they scroll into view
            page.mouse.wheel(0, 700)
            page.wait_for_timeout(150)
        wait_until(lambda: all(t != "loading…" for t in page.locator(".chart-counts").all_inner_texts()), page)
        page.keyboard.press("Home")
        counts = page.inner_text("#chart-grid")
        assert "raw" in counts and "drawn" in counts
        shot(page, "lab-run-dashboard")

        page.goto(f"{base}/runs/{run.id}/traces/?reflection=yes")
        page.wait_for_selector("table.traces-table")
        shot(page, "lab-traces")
        page.click("table.traces-table a:text('group')")
        page.wait_for_selector(".group-grid")
        first = page.locator(".trace-card").first
        first.locator("input[value=good]").check()
        first.locator("input[name=labels]").fill("clear-steps")
        first.locator("button:text('Save')").click()
        page.wait_for_selector("text=Annotation saved.")
        shot(page, "lab-trace-group")

        page.goto(f"{base}/benchmarks/")
        page.wait_for_selector("table.bench-table")
        assert "addition-test" in page.inner_text("table.bench-table")
        shot(page, "lab-benchmarks")

        page.goto(f"{base}/runs/{run.id}/benchmarks/")
        page.wait_for_selector(".chart .main-svg", timeout=20000)
        shot(page, "lab-run-benchmarks")

        page.goto(f"{base}/runs/new/?fork={run.id}")
        page.wait_for_selector("form.run-form")
        page.locator("details.config-section", has=page.locator("#id_cfg-grpo\\.beta")).locator("summary").click()  # folded
        assert "Default: 0.001" in page.inner_text("form.run-form")
        shot(page, "lab-run-new")

        other = world["team"].runs.exclude(id=run.id).first()
        page.goto(f"{base}/runs/compare/?runs={run.id},{other.id}&metric=completions/mean_length")
        page.wait_for_selector("#compare-plot .main-svg", timeout=20000)
        shot(page, "lab-compare")

        page.goto(f"{base}/runs/{run.id}/review/")
        page.wait_for_selector(".trace-layout")
        shot(page, "lab-trace-detail")

        page.goto(f"{base}/workers/")
        shot(page, "lab-workers")

        assert page.lab_events["offsite_requests"] == []
        assert [e for e in page.lab_events["console_errors"] if "Content Security Policy" in e] == []

    from lab.models import Annotation

    assert Annotation.objects.filter(user=world["user"], rating="good", labels=["clear-steps"]).count() == 1


def test_dashboard_of_an_active_run_gains_points_without_a_reload(live_server, world):
    from lab.models import Metric, Run

    run = Run.objects.get(name="aha-mini seed 1")  # running, 120 steps stored
    base = live_server.url
    with chromium_page(base) as page:
        login(page, base, "ada", PASSWORD)
        page.goto(f"{base}/runs/{run.id}/")
        page.wait_for_selector(".chart .main-svg", timeout=20000)
        first = page.locator("figure.chart", has=page.locator("figcaption", has_text="Response length")).locator(".chart-counts")
        wait_until(lambda: "raw" in first.inner_text(), page)
        assert "completions/max_length: 120 raw" in first.inner_text()
        Metric.objects.bulk_create(
            [Metric(run=run, seq=10_000 + s, step=s, name=n, value=100.0 + s) for s in range(121, 131) for n in ("completions/mean_length", "completions/max_length")]
        )
        Run.objects.filter(id=run.id).update(step=130, total_steps=150)  # a step is never shown past its total
        wait_until(lambda: "completions/max_length: 130 raw" in first.inner_text(), page, timeout_s=30)
        wait_until(lambda: "step 130" in page.inner_text("#run-status"), page, timeout_s=30)  # htmx fragment
        shot(page, "lab-run-live")


def test_run_page_follows_the_run_to_its_end_and_cancel_asks_first(live_server, world):
    """The run page is never stale: when the run ends, Cancel goes and Resume (for a failed run) and the new
    checkpoint appear without a reload; Cancel asks for confirmation, and a dismissed dialog cancels nothing."""
    from lab.models import CheckpointRecord, Run, RunStatus

    run = Run.objects.get(name="aha-mini seed 1")  # running
    base = live_server.url
    with chromium_page(base) as page:
        login(page, base, "ada", PASSWORD)
        page.goto(f"{base}/runs/{run.id}/")
        page.click("#run-actions button.danger")  # the harness dismisses every dialog
        assert any("Cancel run" in message for message in page.lab_events["dialogs"])
        assert Run.objects.get(id=run.id).status == RunStatus.RUNNING  # dismissed: nothing was cancelled
        assert f"run:{run.id}@120" not in page.inner_text("#run-checkpoints")
        CheckpointRecord.objects.create(run=run, seq=99_999, step=120, path="checkpoints/step-120")
        Run.objects.filter(id=run.id).update(status=RunStatus.FAILED, message="trainer exited with code 1")
        wait_until(lambda: page.locator("#run-actions button.danger").count() == 0, page, timeout_s=30)
        wait_until(lambda: page.locator("#run-actions >> text=Resume").count() == 1, page, timeout_s=10)
        assert f"run:{run.id}@120" in page.inner_text("#run-checkpoints")
        shot(page, "lab-run-ended-live")
