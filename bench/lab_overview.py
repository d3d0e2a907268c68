"""Manager overview p95 with 1,000 runs (all on one page, best score per benchmark), against the peer
in the same run: one best-score query per run (the N+1 pattern).

    OMP_NUM_THREADS=1 .venv/bin/python bench/lab_overview.py [--postgres | --postgres-fresh]
"""
from lab_world import open_world, p95, report, timed

REPEATS = 15

if __name__ == "__main__":
    client, _, many = open_world()
    from django.db.models import Max

    from lab.access import SESSION_TEAM_KEY
    from lab.models import EvalResult, Run

    session = client.session
    session[SESSION_TEAM_KEY] = many.id
    session.save()
    url = "/?per_page=1000"
    body = client.get(url).content.decode()
    assert body.count("<tr>") >= 1000, body.count("<tr>")
    ours = timed(lambda: client.get(url), REPEATS)
    default_page = timed(lambda: client.get("/"), REPEATS)
    # the same 1,000 rows sorted on the server (?sort=): by best gsm8k score (a correlated subquery per run)
    # and by progress (a CASE expression per run); the page also carries the team totals and the best marks
    sorted_best = timed(lambda: client.get(url + "&sort=-best:gsm8k"), REPEATS)
    sorted_progress = timed(lambda: client.get(url + "&sort=-progress"), REPEATS)

    def n_plus_one():
        rows = []
        for run in Run.objects.filter(team=many).order_by("-created_at"):
            best = EvalResult.objects.filter(run=run, metric="pass@1").values("benchmark").annotate(best=Max("value"))
            rows.append((run, list(best)))
        return rows

    peer = timed(n_plus_one, 3)
    print(f"runs={Run.objects.filter(team=many).count()} default_page_100_rows_p95_ms={p95(default_page):.1f}")
    print(f"peer_n_plus_one_best_scores_p95_ms={p95(peer):.1f} (queries only, no rendering)")
    print(f"sorted_by_best_gsm8k_1000_rows_p95_ms={p95(sorted_best):.1f} sorted_by_progress_1000_rows_p95_ms={p95(sorted_progress):.1f}")
    report("overview_1000_runs_p95_ms", p95(ours))
