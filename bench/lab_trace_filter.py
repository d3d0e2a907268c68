"""Trace filter page p95 (HTML, 50 rows) on a run with 200,000 traces, against the peer in the same
run: the same filters through Django's Paginator (which adds COUNT(*) of all matches).

    OMP_NUM_THREADS=1 .venv/bin/python bench/lab_trace_filter.py [--postgres | --postgres-fresh]
"""
from lab_world import open_world, p95, report, timed

FILTERS = [
    "",
    "status=correct",
    "step_min=5000&step_max=5100&reflection=yes",
    "status=wrong&tokens_min=60&reward_max=1",
    "reflection=yes&page=20",
    "step_min=9000&status=unparseable",
]
REPEATS = 8

if __name__ == "__main__":
    client, big, _ = open_world()
    from django.core.paginator import Paginator
    from django.http import QueryDict

    from lab.models import Trace
    from lab.selectors.traces import LIST_FIELDS, TraceFilter

    ours, peer = [], []
    for query in FILTERS:
        url = f"/runs/{big.id}/traces/?{query}"
        assert client.get(url).status_code == 200
        ours += timed(lambda: client.get(url), REPEATS)
        flt, _ = TraceFilter.from_query(QueryDict(query))

        def paginated():
            qs = flt.apply(Trace.objects.filter(run_id=big.id)).only(*LIST_FIELDS).order_by("-step", "seq")
            page = Paginator(qs, 50).get_page(1)
            return page.paginator.count, list(page.object_list)

        peer += timed(paginated, REPEATS // 2)
    search = timed(lambda: client.get(f"/runs/{big.id}/traces/?q=verify+by+subtracting&step_min=9500"), 4)
    print(f"traces={Trace.objects.filter(run=big).count()} filters={len(FILTERS)} samples={len(ours)}")
    print(f"peer_paginator_with_count_p95_ms={p95(peer):.1f} (query only, no rendering)")
    print(f"full_text_search_last_500_steps_p95_ms={p95(search):.1f}")
    report("trace_filter_page_p95_ms", p95(ours))
