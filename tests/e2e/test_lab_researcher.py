"""The researcher in real headless Chromium (issue 14 item 9): the new-run form (essentials first, sections
folded, a field that differs from the recipe highlighted) → queue a run → its dashboard in sections (R1's
signature, policy health, systems), fold one, search a metric, charts below the fold load as they scroll into
view, raw/drawn counts only on hover → compare two runs on two metrics with the config keys they differ on.
Screenshots: tests/artifacts/researcher-*.png."""
import re

import pytest

from tests.e2e.lab_browser import chromium_page, login, make_member, shot, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "browser-password-1"


@pytest.fixture
def world(db, monkeypatch):
    from lab.services import runs as run_services
    from lab.services.run_config import recipe_config, validate_config
    from lab.services.synthetic import make_synthetic_run

    monkeypatch.setattr(run_services, "_dispatch", lambda run_id: None)  # queued, never started
    user, team = make_member("ada", PASSWORD, slug="lab", team_name="Reasoning lab")
    run = make_synthetic_run(team=team, user=user, name="aha-mini seed 0", steps=80, traces_per_step=2, group_size=2)
    # stored as the lab stores a run's config: validated, whole (the recipe's, quick, seed 0, lr 1e-4)
    run.config = validate_config(recipe_config("aha-mini", quick=True, overrides={"name": run.name, "seed": 0}))
    run.save(update_fields=["config"])
    return {"user": user, "team": team, "run": run}


def _visible_titles(page) -> list[str]:
    return [t.strip() for t in page.locator("figure.chart:visible figcaption").all_inner_texts()]


def _drawn(figure) -> bool:
    return figure.locator(".main-svg").count() > 0


def test_researcher_queues_a_run_reads_its_dashboard_by_section_and_compares_runs(live_server, world):
    from lab.models import Run

    base = live_server.url
    first = world["run"]
    with chromium_page(base, height=800) as page:
        login(page, base, "ada", PASSWORD)

        # The form: essentials first, every other field folded in its section; one name.
        page.goto(f"{base}/runs/new/?recipe=aha-mini")
        essentials = page.locator("fieldset.essentials")
        labels = [t.strip().rstrip(":") for t in essentials.locator("label").all_inner_texts()]
        assert labels == ["Name", "Recipe", "Base model", "Dataset", "Queue", "GPUs", "Quick"], labels
        assert page.locator("#id_cfg-name").count() == 0
        sections = page.locator("details.config-section")
        assert sections.count() >= 5 and all(not sections.nth(i).get_attribute("open") is not None for i in range(sections.count()))
        assert not page.locator("#id_cfg-seed").is_visible()
        assert page.locator("form.run-form button.primary").is_visible()  # the essentials fit the screen
        page.fill("#id_name", "aha-mini seed 1")
        page.check("#id_quick")
        general = page.locator("details.config-section", has=page.locator("#id_cfg-seed"))
        general.locator("summary").click()
        page.fill("#id_cfg-seed", "1")
        seed_row = page.locator(".field", has=page.locator("#id_cfg-seed"))
        wait_until(lambda: "differs" in (seed_row.get_attribute("class") or ""), page)
        assert "1 differs" in general.locator("summary").inner_text()
        assert "Recipe aha-mini: 0." in seed_row.inner_text()
        grpo = page.locator("details.config-section", has=page.locator("#id_cfg-grpo\\.learning_rate"))
        grpo.locator("summary").click()
        page.fill("#id_cfg-grpo\\.learning_rate", "0.0003")
        seed_row.scroll_into_view_if_needed()
        shot(page, "researcher-run-new")
        assert page.locator(".field.differs").count() == 2
        # leave the number field first: headless Chromium drops a click on a button in view while a number
        # input has focus (the same without this page's script)
        page.locator("#id_cfg-grpo\\.learning_rate").press("Tab")
        page.click("form.run-form button.primary")
        page.wait_for_url(re.compile(r".*/runs/\d+/$"))
        queued = Run.objects.get(name="aha-mini seed 1")
        assert queued.quick and queued.config["seed"] == 1 and queued.config["grpo"]["learning_rate"] == 0.0003
        assert queued.config["name"] == "aha-mini seed 1"

        # The first run's dashboard: sections in order, charts load as they scroll into view.
        page.goto(f"{base}/runs/{first.id}/")
        page.wait_for_selector(".chart .main-svg", timeout=20000)
        titles = [t.strip() for t in page.locator("details.chart-section > summary > span:first-child").all_inner_texts()]
        assert titles[:3] == ["R1's signature", "Policy health", "Systems"], titles
        signature = [t.strip() for t in page.locator("details.chart-section").first.locator("figcaption").all_inner_texts()]
        assert signature[:3] == ["Accuracy", "Response length", "Reward"], signature
        below = page.locator("figure.chart", has=page.locator("figcaption", has_text="Tokens/s"))
        assert not _drawn(below), "a chart far below the fold was drawn before it was scrolled to"
        shot(page, "researcher-dashboard-top")
        below.scroll_into_view_if_needed()
        wait_until(lambda: _drawn(below), page)
        wait_until(lambda: "raw" in below.locator(".chart-counts").inner_text(), page)

        # raw / drawn only on hover
        counts = below.locator(".chart-counts")
        assert counts.evaluate("n => getComputedStyle(n).opacity") == "0"
        below.hover()
        wait_until(lambda: counts.evaluate("n => getComputedStyle(n).opacity") == "1", page)
        assert re.search(r"\d+ raw / \d+ drawn", counts.inner_text())
        shot(page, "researcher-dashboard-hover")

        # fold a section: its charts go; the others stay
        page.keyboard.press("Home")
        health = page.locator("details.chart-section[data-section=health]")
        health.locator("summary").click()
        wait_until(lambda: health.get_attribute("open") is None, page)
        assert "KL to reference" not in _visible_titles(page) and "Accuracy" in _visible_titles(page)
        shot(page, "researcher-dashboard-folded")

        # search: only the matching charts show (a folded section with a match opens for the search)
        page.fill("#metric-search", "entropy")
        wait_until(lambda: _visible_titles(page) == ["Entropy"], page)
        assert "1 of" in page.inner_text("#metric-search-count")
        shot(page, "researcher-dashboard-search")
        page.fill("#metric-search", "time")
        wait_until(lambda: _visible_titles(page) == ["Time split"], page)
        page.fill("#metric-search", "")
        wait_until(lambda: "Accuracy" in _visible_titles(page) and "KL to reference" not in _visible_titles(page), page)
        # the fold is remembered
        page.reload()
        page.wait_for_selector(".chart .main-svg", timeout=20000)
        assert page.locator("details.chart-section[data-section=health]").get_attribute("open") is None

        # Compare the two runs: two metrics at once and the config keys they differ on.
        page.goto(f"{base}/runs/compare/?runs={first.id},{queued.id}")
        page.select_option("#compare-metrics", ["accuracy", "kl"])
        page.click("form.compare-form button")
        page.wait_for_url(re.compile(r".*metric=accuracy.*metric=kl"))
        wait_until(lambda: page.locator(".compare-chart .main-svg").count() >= 2, page)
        assert [t.strip() for t in page.locator(".compare-chart figcaption").all_inner_texts()] == ["accuracy", "kl"]
        keys = [t.strip() for t in page.locator("#config-diff tbody th").all_inner_texts()]
        assert "seed" in keys and "grpo.learning_rate" in keys, keys
        assert "kind" not in keys and "name" not in keys
        shot(page, "researcher-compare")

        assert page.lab_events["offsite_requests"] == []
        assert [e for e in page.lab_events["console_errors"] if "Content Security Policy" in e] == []
