"""The reviewer in real headless Chromium: the review queue rated from the keyboard alone (g/b/f, n to
skip), the gold answer beside each completion, the progress moving, the keys idle while typing a comment,
and a wrong filter value named on the trace list."""
import re

import pytest

from tests.e2e.lab_browser import chromium_page, login, make_member, shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "browser-password-1"
TRACES = 8


def test_a_reviewer_rates_the_queue_with_the_keyboard_alone_beside_the_gold_answers(live_server, db):
    from lab.models import Annotation, Run, Trace

    user, team = make_member("rita", PASSWORD, slug="lab", team_name="Reasoning lab", role="reviewer")
    run = Run.objects.create(team=team, name="addition run", status="completed", created_by=user)
    for i in range(TRACES):
        a, b = 10 + i, 20 + 3 * i
        wrong = i % 3 == 1
        Trace.objects.create(
            run=run, seq=i + 1, step=i // 2, group_id=f"g{i // 2}", prompt_id=f"add-{i}", prompt=f"What is {a} + {b}?",
            completion=f"<think>{a} plus {b}</think><answer>{a + b + wrong}</answer>", think=f"{a} plus {b}",
            answer=str(a + b + wrong), gold=str(a + b), status="wrong" if wrong else "correct", tokens=12,
            reward=0.0 if wrong else 1.0, advantage=0.0,
        )
    ids = list(Trace.objects.filter(run=run).order_by("seq").values_list("id", flat=True))
    base = live_server.url
    with chromium_page(base) as page:
        login(page, base, "rita", PASSWORD)
        page.goto(f"{base}/runs/{run.id}/traces/")
        page.wait_for_selector("table.traces-table")
        assert "What is 10 + 20?" in page.inner_text("table.traces-table")  # the prompt preview
        shot(page, "lab-reviewer-trace-list")
        page.click("a:text('Review queue')")
        page.wait_for_selector("#queue-progress")
        assert page.inner_text("#queue-progress").startswith(f"0 of {TRACES}")
        assert "g good" in page.inner_text("#queue-keys") and "n skip" in page.inner_text("#queue-keys")
        shot(page, "lab-reviewer-queue-start")

        keys = ["g", "b", "n", "f", "g", "g"]  # five ratings and one skip (the third trace)
        rated = 0
        for step, key in enumerate(keys):
            shown = int(page.inner_text("#trace-id"))
            assert shown == ids[step]
            answer_gold = page.inner_text(".answer-gold")  # the gold answer beside the model's answer
            trace = Trace.objects.get(id=shown)
            assert re.search(rf"Answer\s+{trace.answer}\s+Gold\s+{trace.gold}", answer_gold, re.I), answer_gold
            with page.expect_navigation():
                page.keyboard.press(key)
            rated += key != "n"
            page.wait_for_selector("#queue-progress")
            assert page.inner_text("#queue-progress").startswith(f"{rated} of {TRACES}")
        assert rated == 5
        shot(page, "lab-reviewer-queue-after-five")

        # typing a comment: the keys are letters in it, not ratings
        page.click("textarea[name=comment]")
        page.keyboard.type("good but verbose; no flag")
        assert page.url.endswith(f"after={Trace.objects.get(id=ids[5]).seq}") and int(page.inner_text("#trace-id")) == ids[6]
        assert not Annotation.objects.filter(trace_id=ids[6]).exists()
        page.locator("textarea[name=comment]").blur()
        with page.expect_navigation():
            page.keyboard.press("b")
        page.wait_for_selector("#queue-progress")
        assert page.inner_text("#queue-progress").startswith(f"6 of {TRACES}")

    ratings = dict(Annotation.objects.filter(user=user).values_list("trace_id", "rating"))
    assert ratings == {ids[0]: "good", ids[1]: "bad", ids[3]: "flag", ids[4]: "good", ids[5]: "good", ids[6]: "bad"}
    assert Annotation.objects.get(trace_id=ids[6]).comment == "good but verbose; no flag"
    assert page.lab_events["console_errors"] == [] and page.lab_events["offsite_requests"] == []


def test_a_wrong_filter_value_is_named_on_the_trace_list_in_the_browser(live_server, db):
    from lab.models import Run, Trace

    user, team = make_member("ada", PASSWORD, slug="lab", team_name="Reasoning lab")
    run = Run.objects.create(team=team, name="r", status="completed", created_by=user)
    Trace.objects.create(run=run, seq=1, step=1, group_id="g", prompt="p", completion="c", status="wrong", tokens=1)
    base = live_server.url
    with chromium_page(base) as page:
        login(page, base, "ada", PASSWORD)
        page.goto(f"{base}/runs/{run.id}/traces/?status=bogus&step_min=abc")
        errors = page.inner_text("#filter-errors")
        assert "status: “bogus” is not one of correct, wrong, unparseable, skipped" in errors
        assert "step_min: “abc” is not a whole number" in errors
        shot(page, "lab-reviewer-filter-error")
