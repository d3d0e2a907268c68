"""Metrics API p95 (cold: no cache) for 10 series of a 10,000-step run (50 metrics), downsampled to ≤ 2,000 points
each, against the peers in the same run: the same 10 series read raw (no downsampling), and the same
downsampling computed from the stored points instead of the summaries kept at ingestion.

    OMP_NUM_THREADS=1 .venv/bin/python bench/lab_metrics_api.py [--postgres | --postgres-fresh]
"""
from lab_world import open_world, p95, report, timed

REPEATS = 40

if __name__ == "__main__":
    client, big, _ = open_world()
    from lab.models import Metric
    from lab.selectors.metrics import metric_names

    names = metric_names(big.id)[:10]
    url = f"/api/v1/runs/{big.id}/metrics/series?names={','.join(names)}"
    response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    series = response.json()["series"]
    drawn, raw = sum(s["drawn"] for s in series), sum(s["raw"] for s in series)
    from django.core.cache import cache

    def cold():
        cache.clear()  # every series scanned again (a dashboard opened for the first time)
        return client.get(url)

    ours = timed(cold, REPEATS)
    warm = timed(lambda: client.get(url), REPEATS)
    def read_raw():  # the peer: every stored point of the 10 series (no downsampling, no HTTP)
        return [list(Metric.objects.filter(run_id=big.id, name=n, value__isnull=False).order_by("step").values_list("step", "value"))
                for n in names]

    peer = timed(read_raw, REPEATS // 4)
    from lab.selectors.metrics import metric_series_many

    # the same downsampling done from the stored points (every bucket's min/max computed by a pass over the
    # series), against ours from the summaries kept at ingestion: both as function calls, no HTTP
    from_points = timed(lambda: metric_series_many(big.id, names, summaries=False), REPEATS // 2)
    from_summaries = timed(lambda: metric_series_many(big.id, names), REPEATS // 2)
    assert metric_series_many(big.id, names, summaries=False) == metric_series_many(big.id, names)
    raw_bytes = len(client.get(url.replace("metrics/series?", "metrics/series?max_points=2000&")).content)
    print(f"series=10 raw_points={raw} drawn_points={drawn} response_bytes={len(response.content)}")
    print(f"cold (no cache) p95_ms={p95(ours):.1f} median_ms={sorted(ours)[len(ours) // 2]:.1f}")
    print(f"warm (series cached until the run's events change) p95_ms={p95(warm):.1f}")
    print(f"peer_raw_query_only_p95_ms={p95(peer):.1f} (10 full series read, no downsampling, no HTTP)")
    print(f"downsampling only (no HTTP): from summaries p95_ms={p95(from_summaries):.1f}, from the stored points "
          f"p95_ms={p95(from_points):.1f}, ratio {p95(from_points) / p95(from_summaries):.1f}x")
    report("metrics_api_p95_ms", p95(ours))
