"""The Findings page and a chain's page in headless Chromium: the accuracy-per-stage chart is drawn (CSP: static
JS, data by json_script), the stage table links each stage's run, nothing errors in the console."""
from types import SimpleNamespace

import pytest

from tests.e2e.lab_browser import chromium_page, login, make_member, shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "browser-password-1"


@pytest.fixture
def chains(db, settings, tmp_path):
    from lab.models import EvalResult, Run
    from tests.lab.test_lab_chain_pages import COMPARISON, _completed_chain

    settings.RUNS_DIR = tmp_path
    user, team = make_member("ada", PASSWORD, slug="lab", team_name="Reasoning lab")
    lab = SimpleNamespace(team=team, owner=user)
    runs = [_completed_chain(lab, "r1-mini seed 1", seed=1),
            _completed_chain(lab, "r1-mini seed 2", seed=2, comparison={**COMPARISON, "difference": {
                **COMPARISON["difference"], "format_rate": 0.5}}),
            _completed_chain(lab, "r1-mini seed 3", seed=3)]
    for offset, run in enumerate(runs):
        for index, child in enumerate(Run.objects.filter(parent=run).exclude(kind="data").order_by("id")):
            EvalResult.objects.create(run=child, seq=10_000, step=99, benchmark="heldout", metric="pass@1",
                                      value=min(1.0, 0.1 * index + 0.05 * offset), n=4)
    return runs


def test_findings_and_chain_pages(live_server, chains):
    base = live_server.url
    with chromium_page(base) as page:
        login(page, base, "ada", PASSWORD)
        page.click("text=Findings")
        page.wait_for_function("() => { const p = document.getElementById('chart-0-0'); return p && p._fullData; }")
        assert page.evaluate("() => document.getElementById('chart-0-0')._fullData.length") == 3
        # accuracy per stage: the data stages have no evaluation, and no line crosses them as if they had one
        assert page.evaluate("() => document.getElementById('chart-0-0')._fullData.map(t => t.connectgaps)") == [False] * 3
        assert page.locator("text=Verdict on the means of 3 seeds: reproduced").count() == 1
        # Zero vs R1-mini over 3 seeds: 6 series over 3 metrics (categories) are grouped bars, not lines joining
        # one metric to the next
        types = page.evaluate("() => document.getElementById('chart-0-1')._fullData.map(t => t.type)")
        assert types == ["bar"] * 6
        shot(page, "findings")
        page.click(f"a[href='/runs/{chains[0].id}/chain/']")
        page.wait_for_selector("#chain-stages")
        assert page.locator("#chain-stages tbody tr").count() == 12
        assert page.locator("text=12 of 12 stages completed").count() == 1
        shot(page, "chain_detail")
        page.click("#chain-stages a >> text=zero")
        page.wait_for_selector("#chain-link")
        shot(page, "chain_stage_run")
        assert page.lab_events["console_errors"] == [] and page.lab_events["offsite_requests"] == []
        # a server path as the base model is refused (a 400) under the field, in the error colour (not the help text's)
        page.goto(f"{base}/chains/new/?chain=r1-mini")
        page.fill("#base_model", "/etc/passwd")
        page.click("#chain-form button")
        error = page.locator("#chain-form small.error")
        assert "server paths are not accepted" in error.inner_text()
        assert error.evaluate("e => getComputedStyle(e).color") == "rgb(220, 38, 38)"  # --bad
