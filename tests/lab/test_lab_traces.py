"""Trace viewer: filters, group and prompt views, escaping of model output, review queue, CSV export."""
import csv
import html
import io
import re

import pytest

from django.utils.html import escape

from lab.models import Annotation, Trace
from lab.services.annotations import neutralise_cell
from tests.lab.xss_corpus import XSS_CORPUS


def _add(run, seq, **fields):
    defaults = dict(step=1, group_id="g", prompt="p", completion="c", status="wrong", tokens=10)
    return Trace.objects.create(run=run, seq=seq, **{**defaults, **fields})


def test_filters_combine_step_status_reward_length_and_search(owner_client, lab):
    _add(lab.run, 1, step=50, status="correct", reward=1.5, tokens=90, completion="let me verify the sum", answer="A-50")
    _add(lab.run, 2, step=60, status="unparseable", reward=0.0, tokens=300, completion="no tags at all", answer="B-60")
    body = owner_client.get(f"/runs/{lab.run.id}/traces/?step_min=40&status=correct&reward_min=1&tokens_max=100&q=verify").content.decode()
    assert "A-50" in body and "B-60" not in body
    body = owner_client.get(f"/runs/{lab.run.id}/traces/?status=unparseable").content.decode()
    assert "B-60" in body and "A-50" not in body


def _filter_errors(body: str) -> str:
    start = body.index('id="filter-errors"')
    return body[start:body.index("</div>", start)]


def test_a_wrong_filter_value_is_named_on_the_page_with_the_allowed_values_and_left_out(owner_client, lab):
    response = owner_client.get(f"/runs/{lab.run.id}/traces/?step_min=abc&status=bogus&reflection=maybe&reward_max=nan&step_max=9")
    body = response.content.decode()
    assert response.status_code == 200
    errors = _filter_errors(body)
    assert "<code>step_min</code>: “abc” is not a whole number" in errors
    assert "<code>status</code>: “bogus” is not one of correct, wrong, unparseable, skipped" in errors
    assert "<code>reflection</code>: “maybe” is not one of yes, no" in errors
    assert "<code>reward_max</code>: “nan” is not a number" in errors
    assert "step_max" not in errors  # a right value is applied, not named
    assert f'href="/runs/{lab.run.id}/review/?step_max=9"' in body  # the queue of the list takes the right values only
    assert body.count('class="card trace-card') == 0 and body.count("<td class=\"num\"><a href=\"/traces/") == 4  # the fixture's step-5 traces
    assert 'id="filter-errors"' not in owner_client.get(f"/runs/{lab.run.id}/traces/?status=wrong").content.decode()


def test_the_traces_api_answers_400_naming_the_wrong_parameter(owner_client, lab):
    from lab.services.tokens import token_create

    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=lab.owner)}"}
    response = owner_client.get(f"/api/v1/runs/{lab.run.id}/traces?status=bogus&tokens_min=ten", **auth)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"status", "tokens_min"}
    assert "correct, wrong, unparseable, skipped" in errors["status"] and "whole number" in errors["tokens_min"]
    response = owner_client.get(f"/api/v1/runs/{lab.run.id}/traces?status=wrong", **auth)
    assert response.status_code == 200 and {t["gold"] for t in response.json()["results"]} == {""}


def test_trace_list_previews_prompt_and_output_and_shows_answer_beside_gold(owner_client, lab):
    _add(lab.run, 50, step=77, prompt="Solve: what is 12 times 12? " + "filler " * 100, completion="<think>twelve twelves</think><answer>144</answer>" + "x" * 500, answer="144", gold="144")
    body = owner_client.get(f"/runs/{lab.run.id}/traces/?step_min=77").content.decode()
    assert "Solve: what is 12 times 12?" in body and "filler " * 100 not in body  # the head of the prompt only
    assert "&lt;think&gt;twelve twelves&lt;/think&gt;" in body and "x" * 200 not in body
    row = body[body.index('class="answer-cell gold-cell"'):]
    assert row.startswith('class="answer-cell gold-cell">144<')
    old = owner_client.get(f"/runs/{lab.run.id}/traces/?step_max=5").content.decode()  # traces from before gold
    assert old.count('class="answer-cell gold-cell">—<') == 4


def test_trace_page_names_its_id_in_the_header_and_the_gold_beside_the_answer(owner_client, lab):
    trace = _add(lab.run, 51, step=8, answer="41", gold="42")
    body = owner_client.get(f"/traces/{trace.id}/").content.decode()
    assert f'<span class="trace-id" id="trace-id">{trace.id}</span>' in body
    answer_gold = body[body.index('class="answer-gold"'):]
    assert answer_gold.index(">41<") < answer_gold.index('class="gold"') < answer_gold.index(">42<")
    body = owner_client.get(f"/traces/{lab.trace.id}/").content.decode()  # an older trace has no gold
    assert '<span class="label">Gold</span> <span class="text">—</span>' in body


def test_group_view_shows_all_completions_with_rewards_and_advantages(owner_client, lab):
    body = owner_client.get(f"/runs/{lab.run.id}/groups/g-5-0/").content.decode()
    assert body.count('class="card trace-card') == 4
    assert "adv 0.5" in body and "adv -0.1" in body


def test_reflection_markers_are_highlighted(owner_client, lab):
    body = owner_client.get(f"/traces/{lab.trace.id}/").content.decode()
    assert '<mark class="reflect">wait</mark>' in body and '<mark class="reflect">let me check</mark>' in body


def test_prompt_across_steps_lists_the_prompts_traces_in_step_order(owner_client, lab):
    _add(lab.run, 9, step=99, prompt_id="p-0", answer="late-answer")
    body = owner_client.get(f"/runs/{lab.run.id}/prompt/?prompt_id=p-0").content.decode()
    assert body.index("late-answer") > body.index(">4<")


def test_xss_corpus_in_traces_and_annotations_is_escaped_everywhere(owner_client, teammate_client, lab):
    for i, payload in enumerate(XSS_CORPUS):
        trace = _add(lab.run, 1000 + i, step=7, group_id="xss", prompt_id="xss", prompt=payload, completion=payload, think=f"wait {payload}", answer=payload, gold=payload, rewards={payload: 1.0})
        Annotation.objects.create(trace=trace, user=lab.teammate, rating="flag", labels=[payload], comment=payload)
    pages = [
        f"/runs/{lab.run.id}/traces/?step_min=7&step_max=7", f"/runs/{lab.run.id}/groups/xss/", f"/runs/{lab.run.id}/prompt/?prompt_id=xss",
        f"/runs/{lab.run.id}/review/?group_id=xss", f"/runs/{lab.run.id}/review/?group_id=xss&after=1005",
    ] + [f"/traces/{t}/" for t in Trace.objects.filter(group_id="xss").values_list("id", flat=True)]
    for path in pages:
        body = owner_client.get(path).content.decode()
        for needle in ("<script>alert", "<img ", "<svg", "<iframe", '<a href="javascript:', '<a href="JAVASCRIPT:', "<b>bold"):
            assert needle not in body, (path, needle)
        assert 'href="https://evil' not in body and 'src="https://evil' not in body, path
    group = owner_client.get(f"/runs/{lab.run.id}/groups/xss/").content.decode()
    assert all(escape(payload) in group for payload in XSS_CORPUS)


def _queue(client, url):
    """The queue page at `url`: (the id of the trace it shows or None, its progress text, the body)."""
    response = client.get(url)
    assert response.status_code == 200, url
    body = response.content.decode()
    shown = re.search(r'id="trace-id">(\d+)<', body)
    progress = re.search(r'id="queue-progress"><strong>([^<]*)</strong>', body).group(1)
    return (int(shown.group(1)) if shown else None), progress, body


def _skip_url(body):
    return html.unescape(re.search(r'id="queue-skip" href="([^"]+)"', body).group(1))


@pytest.fixture
def queue_run(lab):
    from lab.models import Run

    run = Run.objects.create(team=lab.team, project=lab.project, name="queue-run", config={"kind": "grpo"}, status="done", created_by=lab.owner)
    traces = [_add(run, seq, step=seq, group_id=f"q{seq}", status="correct" if seq % 2 else "wrong", answer=str(seq), gold=str(seq))
              for seq in range(1, 6)]
    return run, traces


def test_review_queue_goes_in_trace_order_counts_progress_and_brings_skipped_traces_back_at_the_end(teammate_client, queue_run):
    run, traces = queue_run
    ids = [t.id for t in traces]
    url = f"/runs/{run.id}/review/"
    shown, progress, body = _queue(teammate_client, url)
    assert (shown, progress) == (ids[0], "0 of 5")
    assert "<kbd>g</kbd> good" in body and "<kbd>n</kbd> skip" in body and "lab/review.js" in body and "data-review-keys" in body
    response = teammate_client.post(f"/traces/{ids[0]}/annotate", {"rating": "good", "queue": "1", "queue_filter": ""})
    shown, progress, body = _queue(teammate_client, response["Location"])
    assert (shown, progress) == (ids[1], "1 of 5")
    shown, progress, body = _queue(teammate_client, _skip_url(body))  # skip trace 2: nothing rated
    assert (shown, progress) == (ids[2], "1 of 5") and not Annotation.objects.filter(trace_id=ids[1]).exists()
    for rating, trace_id in zip(("bad", "flag", "good"), ids[2:]):
        assert shown == trace_id
        response = teammate_client.post(f"/traces/{trace_id}/annotate", {"rating": rating, "queue": "1"})
        shown, progress, body = _queue(teammate_client, response["Location"])
    assert (shown, progress) == (ids[1], "4 of 5") and "skipped before" in body  # the skipped one, at the end
    response = teammate_client.post(f"/traces/{ids[1]}/annotate", {"rating": "bad", "queue": "1"})
    shown, progress, body = _queue(teammate_client, response["Location"])
    assert (shown, progress) == (None, "5 of 5") and 'id="queue-done"' in body and 'id="queue-skip"' not in body
    ratings = dict(Annotation.objects.filter(user__username="teammate", trace__run=run).values_list("trace_id", "rating"))
    assert ratings == {ids[0]: "good", ids[1]: "bad", ids[2]: "bad", ids[3]: "flag", ids[4]: "good"}


def test_review_queue_over_a_filtered_set_counts_only_it_and_keeps_the_filter_from_trace_to_trace(teammate_client, queue_run):
    run, traces = queue_run
    correct = [t.id for t in traces if t.status == "correct"]  # seq 1, 3, 5
    list_body = teammate_client.get(f"/runs/{run.id}/traces/?status=correct").content.decode()
    assert f'href="/runs/{run.id}/review/?status=correct"' in list_body
    shown, progress, body = _queue(teammate_client, f"/runs/{run.id}/review/?status=correct&reviewed=no")
    assert (shown, progress) == (correct[0], "0 of 3")
    assert 'name="queue_filter" value="status=correct"' in body  # reviewed= is not the queue's business
    response = teammate_client.post(f"/traces/{correct[0]}/annotate", {"rating": "good", "queue": "1", "queue_filter": "status=correct&evil=1"})
    assert response["Location"] == f"/runs/{run.id}/review/?status=correct&after=1"
    shown, progress, _ = _queue(teammate_client, response["Location"])
    assert (shown, progress) == (correct[1], "1 of 3")


def test_review_queue_with_a_wrong_filter_value_says_so_and_shows_no_trace(teammate_client, queue_run):
    run, _ = queue_run
    body = teammate_client.get(f"/runs/{run.id}/review/?status=bogus").content.decode()
    assert "<code>status</code>: “bogus” is not one of correct, wrong, unparseable, skipped" in _filter_errors(body)
    assert 'id="trace-id"' not in body and 'id="queue-progress"' not in body


def test_a_rating_the_queue_could_not_save_opens_the_same_trace_again(teammate_client, queue_run):
    run, traces = queue_run
    response = teammate_client.post(f"/traces/{traces[2].id}/annotate", {"rating": "superb", "queue": "1"})
    shown, progress, _ = _queue(teammate_client, response["Location"])
    assert (shown, progress) == (traces[2].id, "0 of 5")


def test_a_viewer_without_the_right_to_annotate_gets_no_queue(client, lab, queue_run):
    from lab.models import Membership, Role
    from tests.lab.conftest import make_user

    viewer = make_user("viewer")
    Membership.objects.create(team=lab.team, user=viewer, role=Role.VIEWER)
    client.force_login(viewer)
    assert client.get(f"/runs/{queue_run[0].id}/review/").status_code in (403, 404)


def test_saving_again_replaces_the_reviewers_annotation(teammate_client, lab):
    teammate_client.post(f"/traces/{lab.trace.id}/annotate", {"rating": "bad", "labels": "a, b, a", "comment": "second look"})
    annotation = Annotation.objects.get(trace=lab.trace, user=lab.teammate)
    assert annotation.rating == "bad" and annotation.labels == ["a", "b"] and annotation.comment == "second look"


def test_csv_export_neutralises_formula_cells(owner_client, lab):
    Annotation.objects.filter(id=lab.annotation.id).update(comment="=HYPERLINK(\"http://evil\")", labels=["+1", "@SUM(A1)", "-2"])
    response = owner_client.get(f"/runs/{lab.run.id}/annotations.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header, row = rows[0], rows[1]
    assert row[header.index("comment")] == "'=HYPERLINK(\"http://evil\")"
    assert row[header.index("labels")] == "'+1;@SUM(A1);-2"
    assert all(not cell.startswith(("=", "+", "-", "@")) for cell in row)


def test_neutralise_cell_leaves_plain_text_alone():
    assert neutralise_cell("fine") == "fine" and neutralise_cell("-3") == "'-3" and neutralise_cell(None) == ""


ODD_IDS = ["gsm8k/train/0", "what?x=1#frag", "100% sure", "with space", "plus+and&amp=1", "ünïcødé/数学", "../..", "a/./b/../c", "trailing/"]


def _get_ok(client, url):
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def _links(body, marker):
    """The links whose path contains `marker`, as a browser resolves them: HTML-unescaped, dot segments
    ("..", ".") removed, "#…" dropped (urljoin follows RFC 3986 like a browser)."""
    import html
    import re
    from urllib.parse import urljoin, urlsplit

    links = []
    for href in re.findall(r'href="([^"]*)"', body):
        parts = urlsplit(urljoin("http://testserver/traces/1/", html.unescape(href)))
        if marker in parts.path:
            links.append(parts.path + ("?" + parts.query if parts.query else ""))
    return links


def test_group_and_prompt_ids_with_url_characters_work_on_every_trace_page(owner_client, teammate_client, lab):
    for i, odd in enumerate(ODD_IDS):
        _add(lab.run, 5000 + i, step=77, group_id=odd, prompt_id=odd, answer=f"odd-{i}")
    listing = _get_ok(owner_client, f"/runs/{lab.run.id}/traces/?step_min=77&step_max=77")
    group_links, prompt_links = _links(listing, "/group"), _links(listing, "/prompt/")
    assert len(group_links) == len(ODD_IDS) and len(prompt_links) == len(ODD_IDS)
    for i, odd in enumerate(ODD_IDS):
        trace = Trace.objects.get(run=lab.run, seq=5000 + i)
        detail = _get_ok(owner_client, f"/traces/{trace.id}/")
        (group_link,) = _links(detail, "/group")
        (prompt_link,) = _links(detail, "/prompt/")
        group = _get_ok(owner_client, group_link)  # the link the page gives, followed as a browser would
        assert f"odd-{i}" in group and 'class="card trace-card' in group, odd
        assert group.count('class="card trace-card') == 1, odd
        assert f"odd-{i}" in _get_ok(owner_client, prompt_link), odd
        # rating from the group page goes back to the same group
        response = teammate_client.post(f"/traces/{trace.id}/annotate", {"rating": "good", "back": "group"})
        assert response.status_code == 302
        assert f"odd-{i}" in _get_ok(teammate_client, response["Location"]), odd
        assert Annotation.objects.filter(trace=trace, user=lab.teammate, rating="good").exists()
    assert sorted(group_links) == sorted(_links(listing, "/group"))


def test_group_page_without_a_group_id_is_not_found(owner_client, lab):
    _add(lab.run, 6000, group_id="")  # traces without a group must not form one
    assert owner_client.get(f"/runs/{lab.run.id}/group/").status_code == 404
    assert owner_client.get(f"/runs/{lab.run.id}/group/?group_id=").status_code == 404


def test_prompt_across_steps_pages_past_200_and_says_how_many_there_are(owner_client, lab):
    Trace.objects.bulk_create([
        Trace(run=lab.run, seq=20_000 + i, step=1000 + i, group_id=f"g{i}", prompt_id="many", prompt="p", completion="c",
              answer=f"ans-{i:03d}", status="wrong", tokens=1)
        for i in range(450)
    ])
    first = owner_client.get(f"/runs/{lab.run.id}/prompt/?prompt_id=many").content.decode()
    assert "Showing completions 1–200 of 450" in first and "ans-199" in first and "ans-200" not in first
    assert "page=2" in first
    third = owner_client.get(f"/runs/{lab.run.id}/prompt/?prompt_id=many&page=3").content.decode()
    assert "Showing completions 401–450 of 450" in third and "ans-449" in third and "ans-400" in third and "ans-399" not in third
    assert "page=4" not in third and "page=2" in third
    seen = set()
    for number in (1, 2, 3):
        body = owner_client.get(f"/runs/{lab.run.id}/prompt/?prompt_id=many&page={number}").content.decode()
        seen |= {i for i in range(450) if f"ans-{i:03d}" in body}
    assert seen == set(range(450))  # every completion on exactly one of the pages
    assert owner_client.get(f"/runs/{lab.run.id}/prompt/?prompt_id=many&page=9").status_code == 302


def test_prompt_across_steps_with_few_completions_says_all_are_shown(owner_client, lab):
    body = owner_client.get(f"/runs/{lab.run.id}/prompt/?prompt_id=p-0").content.decode()
    assert "All 4 completions." in body and "page=2" not in body
