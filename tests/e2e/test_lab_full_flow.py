"""The whole lab as a new user meets it, in real headless Chromium against a real `lab_run` (gunicorn +
one Celery worker + the real trainer): log in, make a dataset from a generator, launch `aha-mini
--quick` on the cpu queue, watch the response-length chart gain points, annotate a trace of a group,
find the run in the benchmark table, then Ctrl-C the lab and find nothing left running.
Screenshots: tests/artifacts/e2e-*.png. (Dispatching a run twice is covered by
tests/integration/test_workers.py::test_same_run_dispatched_twice_starts_once.)"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.lab_browser import (
    ARTIFACTS, chromium_page, create_generated_dataset, login, save_staged_dataset, shot, wait_until,
)
from tests.integration.test_lab_run import descendants
from tests.services import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180  # migrate + gunicorn + a Celery worker on a loaded 2-core machine
RUN_TIMEOUT_S = 600  # a quick aha-mini run takes 1–3 minutes here
LENGTH_SERIES = "completions/mean_length"
COMMENT = "Checked in the end-to-end test: answer and reward agree."


class LiveLab:
    """`manage.py lab_run` in a subprocess, with every process it ever started remembered."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / "lab_run.log"
        self.tracked: set[int] = set()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        drop = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update(
            DEBUG="true", LAB_DATA_DIR=str(self.data_dir), OMP_NUM_THREADS="1",
            DJANGO_SETTINGS_MODULE="lab.settings", PYTHONUNBUFFERED="1",
        )
        with open(self.log_path, "w") as log:  # a file, not a pipe: gunicorn's access log never blocks
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "lab_run", "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )

    def track(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.tracked |= descendants(self.proc.pid)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def health(self) -> dict:
        try:
            with urllib.request.urlopen(f"{self.base}/healthz", timeout=5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read() or b"{}")
        except (OSError, ValueError):
            return {}

    def wait_ready(self) -> str:
        """Wait for one live worker; returns the demo password printed by lab_demo."""
        deadline = time.monotonic() + START_TIMEOUT_S
        body: dict = {}
        while time.monotonic() < deadline:
            self.track()
            assert self.proc.poll() is None, f"lab_run exited early:\n{self.output()[-3000:]}"
            body = self.health()
            if body.get("workers") == 1:
                break
            time.sleep(1)
        assert body.get("workers") == 1, f"healthz never saw the worker: {body}\n{self.output()[-3000:]}"
        found = re.search(r"login: demo / (\S+)", self.output())
        assert found, f"no demo login printed:\n{self.output()[-2000:]}"
        stored = (self.data_dir / "demo_login.txt").read_text().split()
        assert stored == ["demo", found.group(1)]
        return found.group(1)

    def stop(self, timeout_s: float = 90) -> int:
        """Ctrl-C, as a person would; returns lab_run's exit code."""
        self.track()
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout_s)

    def leftovers(self) -> list[int]:
        return sorted(pid for pid in self.tracked if Path(f"/proc/{pid}").exists() and not _is_zombie(pid))

    def kill_leftovers(self) -> None:
        """Last resort after a failure: end what this test started, by pid."""
        if self.proc is not None and self.proc.poll() is None:
            self.track()
            self.proc.kill()
            self.proc.wait(timeout=30)
        for pid in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


@contextmanager
def live_lab(tmp_path: Path):
    lab = LiveLab(tmp_path / "data")
    lab.start()
    try:
        yield lab
    finally:
        lab.kill_leftovers()


def panel(page, title: str):
    return page.locator("figure.chart", has=page.locator("figcaption.chart-title", has_text=title))


def raw_points(page, series: str) -> int:
    """The raw point count a chart shows for `series` (0 while there is no such chart yet)."""
    counts = page.locator(".chart-counts").all_inner_texts()
    for text in counts:
        found = re.search(re.escape(series) + r": ([\d,]+) raw", text)
        if found:
            return int(found.group(1).replace(",", ""))
    return 0


def status_of(page) -> str:
    badge = page.locator("#run-status .badge")
    return badge.inner_text().strip() if badge.count() else ""


def trainer_log_tail(lab: LiveLab, run_id: int) -> str:
    logs = list((lab.data_dir / "runs").glob(f"*{run_id}*/trainer.log"))
    return logs[0].read_text(errors="replace")[-3000:] if logs else "(no trainer.log)"


def watch_until_finished(page, lab: LiveLab, run_id: int, timeout_s: float, each=None) -> list[str]:
    """Poll the run's page (the lab's processes tracked between polls), calling each(status) every poll, until
    its status is final or `timeout_s` passes; it must have completed (else the statuses seen, the status box and
    trainer.log's tail). Returns the statuses seen, in order."""
    statuses: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lab.track()
        status = status_of(page)
        if status and (not statuses or statuses[-1] != status):
            statuses.append(status)
        if each:
            each(status)
        if status in ("completed", "failed", "cancelled"):
            break
        page.wait_for_timeout(2000)
    assert status_of(page) == "completed", (
        f"run {run_id} ended as {status_of(page)!r} (statuses seen {statuses}):\n"
        f"{page.inner_text('#run-status')}\n--- trainer.log ---\n{trainer_log_tail(lab, run_id)}"
    )
    return statuses


def show_all_charts(page) -> None:
    """Charts load as they scroll into view: scroll through the grid, wait for every count."""
    for _ in range(12):
        page.mouse.wheel(0, 700)
        page.wait_for_timeout(150)
    wait_until(lambda: all(t != "loading…" for t in page.locator(".chart-counts").all_inner_texts()), page, timeout_s=30)
    page.keyboard.press("Home")


@pytest.mark.timeout(START_TIMEOUT_S + RUN_TIMEOUT_S + 300)
def test_new_user_trains_a_quick_aha_mini_run_and_reviews_it_in_the_browser(tmp_path):
    with live_lab(tmp_path) as lab:
        password = lab.wait_ready()
        base = lab.base
        with chromium_page(base) as page:
            # 1. Log in; the empty lab offers the aha-mini demo.
            login(page, base, "demo", password)
            assert "aha-mini" in page.inner_text("main")
            shot(page, "e2e-overview-empty")

            # 2. A dataset from the addition generator, validated, then saved.
            create_generated_dataset(page, base, "addition-e2e", 200)
            shot(page, "e2e-dataset-report")
            save_staged_dataset(page)
            assert "addition-e2e" in page.inner_text("main") and "v1" in page.inner_text("main")
            shot(page, "e2e-dataset-detail")

            # 3. Launch the aha-mini recipe, quick, on the cpu queue.
            page.goto(f"{base}/runs/new/")
            page.click("ul.recipes a:text('aha-mini')")
            page.wait_for_url(re.compile(r".*recipe=aha-mini"))
            assert page.input_value("#id_recipe") == "aha-mini"
            page.fill("#id_name", "aha-mini quick (e2e)")
            page.select_option("#id_queue", "cpu")
            page.check("#id_quick")
            shot(page, "e2e-run-new")
            page.click("form.run-form button.primary")
            page.wait_for_url(re.compile(r".*/runs/\d+/$"))
            run_id = int(re.search(r"/runs/(\d+)/$", page.url).group(1))
            assert "queued on cpu" in page.inner_text("main")
            assert "(quick)" in page.inner_text("p.sub")
            shot(page, "e2e-run-queued")

            # 4. Watch the dashboard fill by itself (no reload from here) until the run completes.
            seen: list[int] = []
            timeline: list[tuple[float, str, int]] = []  # kept as an artifact: what the page showed when
            started = time.monotonic()
            live_shots: list[str] = []

            def watch(status: str) -> None:
                points = raw_points(page, LENGTH_SERIES)
                if not seen or seen[-1] != points:
                    seen.append(points)
                if not timeline or timeline[-1][1:] != (status, points):
                    timeline.append((round(time.monotonic() - started, 1), status, points))
                if status == "running" and page.locator("#chart-grid .chart .main-svg").count() and not live_shots:
                    shot(page, "e2e-run-live")
                    live_shots.append(status)

            statuses = watch_until_finished(page, lab, run_id, RUN_TIMEOUT_S, watch)
            progress = re.search(r"step (\d+) / (\d+)", page.inner_text("#run-status"))
            assert progress and progress.group(1) == progress.group(2), page.inner_text("#run-status")
            total_steps = int(progress.group(2))  # one response-length point per GRPO step
            # the dashboard's own polling brings the last points in within a poll or two
            settle = time.monotonic() + 20
            while raw_points(page, LENGTH_SERIES) < total_steps and time.monotonic() < settle:
                page.wait_for_timeout(500)
            final_live = raw_points(page, LENGTH_SERIES)
            if final_live != seen[-1]:
                seen.append(final_live)
                timeline.append((round(time.monotonic() - started, 1), status_of(page), final_live))
            (ARTIFACTS / "e2e-length-points.json").write_text(json.dumps({"statuses": statuses, "timeline": timeline}))
            assert seen[0] == 0 and final_live >= total_steps >= 1, f"response-length points seen while watching: {seen}"
            assert seen == sorted(seen), f"the point count went down: {seen}"

            # After a reload the full history is there, drawn by plotly, with the raw/drawn counts.
            page.reload()
            page.wait_for_selector(".chart .main-svg", timeout=30000)
            show_all_charts(page)
            length = panel(page, "Response length")
            assert length.count() == 1
            assert length.locator(".main-svg").count() >= 1
            assert raw_points(page, LENGTH_SERIES) >= final_live
            assert "drawn" in length.locator(".chart-counts").inner_text()
            shot(page, "e2e-run-dashboard")

            # 5. A group of G completions side by side; rate one good with a comment.
            page.goto(f"{base}/runs/{run_id}/traces/")
            page.wait_for_selector("table.traces-table")
            shot(page, "e2e-traces")
            page.click("table.traces-table a:text('group')")
            page.wait_for_selector(".group-grid")
            cards = page.locator(".trace-card")
            group_size = cards.count()
            assert group_size >= 2, f"a group shows {group_size} completion(s)"
            assert f"{group_size} completions of one prompt" in page.inner_text("h1")
            first = cards.first
            first.locator("input[value=good]").check()
            first.locator("textarea[name=comment]").fill(COMMENT)
            first.locator("button:text('Save')").click()
            page.wait_for_selector("text=Annotation saved.")
            group_url = page.url
            page.goto(group_url)  # a fresh load reads it back from the database
            first = page.locator(".trace-card").first
            assert first.locator("input[value=good]").is_checked()
            assert first.locator("textarea[name=comment]").input_value() == COMMENT
            shot(page, "e2e-trace-group")

            # 6. The benchmark table has a row for the run.
            page.goto(f"{base}/benchmarks/")
            page.wait_for_selector("table.bench-table")
            rows = page.locator("table.bench-table tbody tr", has=page.locator(f"a[href='/runs/{run_id}/']"))
            assert rows.count() >= 1, page.inner_text("table.bench-table")
            cells = " | ".join(rows.all_inner_texts())
            shares = [float(v) for v in re.findall(r"(-?\d+(?:\.\d+)?)%", cells)]
            assert shares and all(0 <= v <= 100 for v in shares), cells  # a length is not shown as a share
            shot(page, "e2e-benchmarks")

            page.goto(f"{base}/")
            page.wait_for_selector("table.runs-table")
            assert "aha-mini quick (e2e)" in page.inner_text("table.runs-table")
            shot(page, "e2e-overview")

            assert page.lab_events["dialogs"] == []
            assert page.lab_events["offsite_requests"] == []
            assert page.lab_events["console_errors"] == []

        # 7. Ctrl-C stops the web server, the worker and anything they started.
        code = lab.stop()
        output = lab.output()
        assert code == 0, output[-3000:]
        assert "stopped" in output
        time.sleep(1)
        assert lab.leftovers() == [], f"processes left behind: {lab.leftovers()}"
