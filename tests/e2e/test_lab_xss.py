"""An XSS corpus stored as traces and annotations renders inert in Chromium: no dialog, no script
run, no request leaves the lab."""
import pytest

from tests.e2e.lab_browser import chromium_page, login, make_member, shot
from tests.lab.xss_corpus import XSS_CORPUS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "browser-password-1"


@pytest.fixture
def hostile_run(db):
    from lab.models import Annotation, EvalResult, Metric, Run, Trace

    user, team = make_member("rev", PASSWORD, slug="t", team_name="T")
    payload = XSS_CORPUS[0]
    run = Run.objects.create(team=team, name=f"run {payload}", status="running", created_by=user, message=payload, phase="grpo")
    Metric.objects.bulk_create([Metric(run=run, seq=i, step=i, name=f"{payload}/m", value=i) for i in range(5)])
    for name in ("kl", "kl " + XSS_CORPUS[-1]):  # two series in one chart: plotly shows their legend
        Metric.objects.bulk_create([Metric(run=run, seq=i, step=i, name=name, value=i) for i in range(5)])
    EvalResult.objects.create(run=run, seq=99, step=3, benchmark=payload, metric="pass@1", value=0.5, n=4)
    for i, text in enumerate(XSS_CORPUS):
        trace = Trace.objects.create(
            run=run, seq=100 + i, step=1, group_id="g", prompt_id=f"p{i}", prompt=text, completion=f"<think>wait {text}</think><answer>{text}</answer>",
            think=f"wait, {text}", answer=text, rewards={text: 1.0}, reward=1.0, status="correct", tokens=5,
        )
        Annotation.objects.create(trace=trace, user=user, rating="flag", labels=[text], comment=text)
    return run


def test_xss_corpus_is_inert_in_every_view(live_server, hostile_run):
    base = live_server.url
    trace_ids = list(hostile_run.traces.values_list("id", flat=True))
    paths = [
        "/", "/runs/", "/review/", "/benchmarks/", f"/runs/{hostile_run.id}/", f"/runs/{hostile_run.id}/traces/",
        f"/runs/{hostile_run.id}/groups/g/", f"/runs/{hostile_run.id}/prompt/?prompt_id=p0", f"/runs/{hostile_run.id}/benchmarks/",
    ] + [f"/traces/{t}/" for t in trace_ids[:4]]
    with chromium_page(base) as page:
        login(page, base, "rev", PASSWORD)
        for path in paths:
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            for toggle in page.locator("details summary").all()[:6]:
                toggle.click()  # unfold think and completion: still inert
            assert page.locator("script:not([src]):not([type='application/json'])").count() == 0, path
            assert page.locator("main img, main svg[onload], main iframe, a[*|href^='javascript' i], a[*|href*='evil']").count() == 0, path
            assert page.locator("main b").count() == 0, path
        shot(page, "lab-xss-trace")
        assert page.lab_events["dialogs"] == []
        assert page.lab_events["offsite_requests"] == []
