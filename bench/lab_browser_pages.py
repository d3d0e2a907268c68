"""What a person waits for, in headless Chromium, on the bench world (bench/lab_world.py: a run of 10,000
steps × 50 metrics with 200,000 traces, a team of 1,000 runs): p95 over 20 warm loads of
  - the run dashboard until its first row of charts (three plotly charts) is drawn,
  - the run's trace list until its table is there,
  - the manager overview of the 1,000-run team until its runs table is there.
The peer in the same run is the same page fetched without a browser (HTTP only): the rest is the browser's
own work (parsing, scripts, plotly drawing).

    OMP_NUM_THREADS=1 .venv/bin/python bench/lab_browser_pages.py [--postgres]
"""
from __future__ import annotations

import os
import threading
import time
import urllib.request

import lab_world
from lab_world import p95, setup_django, world

LOADS = 20
PASSWORD = "bench-password-1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def serve() -> str:
    """The lab on a free localhost port, threaded, in this process (as Django's live server does)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet)
    server.set_app(WSGIHandler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://localhost:{server.server_address[1]}"  # a name in the bench settings ALLOWED_HOSTS


def timed_loads(page, url: str, ready: str, count: int = 1) -> list[float]:
    """Seconds from navigation to `count` elements matching `ready`, for LOADS warm loads (one warm-up first)."""
    out = []
    for i in range(LOADS + 1):
        started = time.perf_counter()
        page.goto(url)
        while page.locator(ready).count() < count:  # polled: the CSP forbids string-evaluated waits
            page.wait_for_timeout(5)
        if i:  # the first load warms caches
            out.append(time.perf_counter() - started)
    return out


def http_only(url: str, cookie: str) -> list[float]:
    out = []
    for _ in range(LOADS):
        started = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Cookie": cookie})) as response:
            response.read()
        out.append(time.perf_counter() - started)
    return out


if __name__ == "__main__":
    setup_django()
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    user, big, many = world()
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    base = serve()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        page.goto(f"{base}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
        charts = timed_loads(page, f"{base}/runs/{big.id}/", ".chart .main-svg", count=3)
        traces = timed_loads(page, f"{base}/runs/{big.id}/traces/", "table")
        charts_http = http_only(f"{base}/runs/{big.id}/", cookie)
        page.goto(f"{base}/runs/{big.id}/")  # the team switch below needs a page with the CSRF token
        switch = page.request.post(f"{base}/team/switch", form={"team": str(many.id)},
                                   headers={"X-CSRFToken": next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken"),
                                            "Referer": f"{base}/"})
        assert switch.ok, switch.status
        overview = timed_loads(page, f"{base}/", "table.runs-table")
        overview_http = http_only(f"{base}/", "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies()))
        browser.close()
    ms = lambda samples: 1000 * p95(samples)  # noqa: E731
    print(f"database={lab_world.BACKEND} load_average_1min={os.getloadavg()[0]:.1f}")
    print(f"run_page_first_chart_row_p95_ms={ms(charts):.0f} (html alone over HTTP p95 {ms(charts_http):.0f} ms)")
    print(f"trace_list_p95_ms={ms(traces):.0f}")
    print(f"overview_1000_run_team_http_only_p95_ms={ms(overview_http):.0f}")
    print(f"overview_1000_run_team_p95_ms={ms(overview):.0f}")
