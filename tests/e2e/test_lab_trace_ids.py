"""Group and prompt ids from imported runs hold any character: the links the trace pages give lead a real
browser (which resolves "..", drops "#…") to the right group and prompt."""
import pytest

from tests.e2e.lab_browser import chromium_page, login, make_member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "browser-password-1"
ODD_IDS = ["gsm8k/train/0", "../..", "a/./b/../c", "what?x=1#frag", "100% sure", "ünï/数学 x"]


def test_a_browser_follows_group_and_prompt_links_of_ids_with_url_characters(live_server, db):
    from lab.models import Run, Trace

    user, team = make_member("ada", PASSWORD, slug="lab", team_name="Reasoning lab")
    run = Run.objects.create(team=team, name="imported", status="completed", created_by=user)
    for i, odd in enumerate(ODD_IDS):
        Trace.objects.create(run=run, seq=i + 1, step=i, group_id=odd, prompt_id=odd, prompt=f"prompt {i}",
                             completion="c", answer=f"answer-{i}", status="wrong", tokens=1)
    base = live_server.url
    with chromium_page(base) as page:
        login(page, base, "ada", PASSWORD)
        for i, odd in enumerate(ODD_IDS):
            trace = Trace.objects.get(run=run, seq=i + 1)
            page.goto(f"{base}/traces/{trace.id}/")
            page.click("a:text('whole group')")
            page.wait_for_selector(".group-grid")
            assert page.locator(".trace-card").count() == 1 and f"answer-{i}" in page.inner_text(".group-grid"), odd
            page.click("a:text('this prompt across steps')")
            page.wait_for_selector("table.grid")
            assert f"answer-{i}" in page.inner_text("table.grid"), odd
