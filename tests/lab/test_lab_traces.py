"""Trace viewer: filters, group and prompt views, escaping of model output, review queue, CSV export."""
import csv
import io

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


def test_bad_filter_values_are_reported_not_crashing(owner_client, lab):
    response = owner_client.get(f"/runs/{lab.run.id}/traces/?step_min=abc&status=evil")
    assert response.status_code == 200 and "not a number" in response.content.decode()


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
        trace = _add(lab.run, 1000 + i, step=7, group_id="xss", prompt_id="xss", prompt=payload, completion=payload, think=f"wait {payload}", answer=payload, rewards={payload: 1.0})
        Annotation.objects.create(trace=trace, user=lab.teammate, rating="flag", labels=[payload], comment=payload)
    pages = [
        f"/runs/{lab.run.id}/traces/?step_min=7&step_max=7", f"/runs/{lab.run.id}/groups/xss/", f"/runs/{lab.run.id}/prompt/?prompt_id=xss",
    ] + [f"/traces/{t}/" for t in Trace.objects.filter(group_id="xss").values_list("id", flat=True)]
    for path in pages:
        body = owner_client.get(path).content.decode()
        for needle in ("<script>alert", "<img ", "<svg", "<iframe", '<a href="javascript:', '<a href="JAVASCRIPT:', "<b>bold"):
            assert needle not in body, (path, needle)
        assert 'href="https://evil' not in body and 'src="https://evil' not in body, path
    group = owner_client.get(f"/runs/{lab.run.id}/groups/xss/").content.decode()
    assert all(escape(payload) in group for payload in XSS_CORPUS)


def test_review_queue_resumes_at_the_next_unreviewed_trace(teammate_client, lab):
    first = teammate_client.get(f"/runs/{lab.run.id}/review/")
    reviewed = set(Annotation.objects.filter(user=lab.teammate).values_list("trace_id", flat=True))
    target = int(first["Location"].split("/")[2])
    assert target not in reviewed
    response = teammate_client.post(f"/traces/{target}/annotate", {"rating": "bad", "labels": "loops", "queue": "1"})
    assert "/review/?after=" in response["Location"]
    following = teammate_client.get(response["Location"])
    assert int(following["Location"].split("/")[2]) not in reviewed | {target}


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
