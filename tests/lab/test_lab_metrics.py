"""Dashboard data: downsampling keeps extremes and counts, panels group metric names, health warnings."""
import math

import pytest

from lab.models import Metric, Run
from lab.selectors.dashboard import dashboard_panels
from lab.selectors.health import run_health
from lab.selectors.metrics import MAX_POINTS, metric_names, metric_series
from lab.services.ingest import store_summaries


def _store(run, rows):
    """Metric rows stored as ingestion stores them: the points and their summaries."""
    Metric.objects.bulk_create([Metric(run=run, seq=seq, step=step, name=name, value=value) for seq, step, name, value in rows])
    store_summaries(run.id, [(run.id, *row) for row in rows])


def _series(run, name, values):
    _store(run, [(i, i, name, v) for i, v in enumerate(values)])


def test_long_series_is_cut_to_the_limit_keeping_its_spike_and_dip(lab):
    run = Run.objects.create(team=lab.team, name="long")
    values = [math.sin(i / 300) for i in range(20_000)]
    values[12_345] = 50.0  # one spike
    values[7_000] = -40.0  # one dip
    _series(run, "kl", values)
    series = metric_series(run.id, "kl")
    assert series["raw"] == 20_000 and series["drawn"] == len(series["x"]) <= MAX_POINTS
    assert max(series["y"]) == 50.0 and min(series["y"]) == -40.0
    assert 12_345 in series["x"] and series["x"] == sorted(series["x"])


def test_null_values_are_not_drawn_and_short_series_are_untouched(lab):
    run = Run.objects.create(team=lab.team, name="short")
    _series(run, "loss", [1.0, None, 3.0])
    series = metric_series(run.id, "loss")
    assert series["x"] == [0, 2] and series["y"] == [1.0, 3.0] and series["raw"] == 2


def test_metric_names_are_distinct_and_sorted(lab):
    assert metric_names(lab.run.id) == ["completions/mean_length", "reward"]


def test_panels_put_length_band_together_and_give_unknown_metrics_their_own_chart():
    names = ["completions/mean_length", "completions/p10_length", "completions/p90_length", "completions/max_length", "kl", "my/custom"]
    panels = dashboard_panels(names)
    length = panels[0]
    assert length["title"] == "Response length" and length["band"] == ["completions/p10_length", "completions/p90_length"]
    assert "Mean completion length" in length["docs"]["completions/mean_length"]  # from r1model.train.metrics
    assert [p["names"] for p in panels if p["title"] == "my/custom"] == [["my/custom"]]


def test_pretraining_metrics_get_their_own_charts_apart_from_grpo():
    names = ["loss", "grad_norm", "lr", "throughput/tokens_per_s", "train/loss", "train/grad_norm", "train/lr",
             "train/tokens_per_s"]
    by_title = {p["title"]: p["names"] for p in dashboard_panels(names)}
    assert by_title["Loss"] == ["loss"] and by_title["Gradient norm"] == ["grad_norm"]
    assert by_title["Pretraining loss"] == ["train/loss"]
    assert sorted(by_title["Pretraining lr and grad norm"]) == ["train/grad_norm", "train/lr"]
    assert by_title["Pretraining tokens/s"] == ["train/tokens_per_s"]


def test_health_warns_on_zero_std_entropy_collapse_and_format_without_accuracy(lab):
    run = Run.objects.create(team=lab.team, name="sick")
    _series(run, "frac_reward_zero_std", [0.9] * 40)
    _series(run, "entropy", [1.0] * 20 + [0.05] * 20)
    _series(run, "format_rate", [0.1] * 20 + [0.95] * 20)
    _series(run, "accuracy", [0.2] * 40)
    _series(run, "kl", [0.001] * 40 + [0.5])
    _series(run, "completions/truncated_ratio", [0.01] * 20 + [0.4] * 20)
    keys = {w.key for w in run_health(run.id, metric_names(run.id))}
    assert keys == {"zero_std", "entropy_collapse", "reward_hacking", "kl_spike", "truncation"}


def test_healthy_run_has_no_warnings(lab):
    run = Run.objects.create(team=lab.team, name="fine")
    _series(run, "frac_reward_zero_std", [0.2] * 40)
    _series(run, "entropy", [1.0 - i / 100 for i in range(40)])
    _series(run, "format_rate", [0.1 + i / 50 for i in range(40)])
    _series(run, "accuracy", [0.1 + i / 60 for i in range(40)])
    assert run_health(run.id, metric_names(run.id)) == []


def test_dashboard_json_endpoint_returns_live_increments(owner_client, lab):
    data = owner_client.get(f"/runs/{lab.run.id}/metrics.json?names=reward,completions/mean_length&after_step=27").json()
    assert [s["x"] for s in data["series"]] == [[28, 29], [28, 29]]
    assert data["status"] == "failed" and data["active"] is False


def test_python_fallback_downsampler_keeps_extremes():
    import numpy as np

    from lab.selectors.metrics import _downsample

    x = np.arange(50_000, dtype=np.float64)
    y = np.sin(x / 500)
    y[31_337] = 9.0
    dx, dy = _downsample(x, y, 2000)
    assert len(dx) <= 2000 and dy.max() == 9.0 and 31_337 in dx


def test_a_series_starting_at_step_one_never_exceeds_the_limit(lab):
    # 10,000 steps from step 1: width 10 would make 1,001 buckets (0-9 … 10,000), so the width grows
    run = Run.objects.create(team=lab.team, name="from-one")
    _store(run, [(i, i, "loss", (i * 7919) % 1000 / 10) for i in range(1, 10_001)])
    series = metric_series(run.id, "loss")
    # 1,000 buckets need a width of 10 or more; wide buckets are powers of two (one stored summary each)
    assert series["bucket"] == 16 and series["raw"] == 10_000
    assert MAX_POINTS // 2 < series["drawn"] == len(series["x"]) <= MAX_POINTS
    assert series["x"] == sorted(series["x"]) and len(set(series["x"])) == series["drawn"]


def _minmax_by_hand(points, width):
    """The expected chart of (step, value) points: per bucket of `width` steps its minimum and maximum
    (the first step on a tie), in step order, one point when they coincide."""
    buckets = {}
    for step, value in points:
        if value is not None:
            buckets.setdefault(step // width, []).append((step, value))
    x, y = [], []
    for _, found in sorted(buckets.items()):
        low = min(found, key=lambda p: (p[1], p[0]))
        high = min(found, key=lambda p: (-p[1], p[0]))
        for step, value in sorted({low, high}, key=lambda p: (p[0], p[1])):
            x.append(step)
            y.append(value)
    return x, y


def test_every_bucket_width_draws_each_buckets_minimum_and_maximum(lab):
    import random

    from lab.selectors.metrics import metric_series_many

    rng = random.Random(3)
    run = Run.objects.create(team=lab.team, name="by-hand")
    rows, seq = [], 0
    for step in range(5, 40_000, 3):  # every third step; ties, nulls and a second value at some steps
        for value in [rng.choice([0.25, 0.5, 2.0, rng.randint(-40, 40) / 4, None])] * (1 + (step % 11 == 0)):
            rows.append((seq, step, "m", value if step % 11 else -value if value else value))
            seq += 1
    _store(run, rows)
    points = [(step, value) for _, step, _, value in rows]
    widths = set()
    for max_points in (10, 100, 2000):  # summaries at several levels; width 1 reads the stored points
        series = metric_series(run.id, "m", max_points=max_points)
        widths.add(series["bucket"])
        assert (series["x"], series["y"]) == _minmax_by_hand(points, series["bucket"]), max_points
        assert metric_series_many(run.id, ["m"], max_points=max_points, summaries=False) == [series]
        assert series["raw"] == sum(v is not None for _, v in points) and series["drawn"] <= max_points
    tail = metric_series(run.id, "m", after_step=37_000)  # a live increment: from the stored points after a step
    assert (tail["x"], tail["y"]) == _minmax_by_hand([p for p in points if p[0] > 37_000], tail["bucket"])
    assert widths == {2**13, 2**10, 2**6} and tail["bucket"] == 3


def test_bucket_width_never_makes_more_than_half_the_points_in_buckets():
    from lab.selectors.metrics import _bucket_width

    for first, last, max_points in [(1, 10_000, 2000), (0, 9_999, 2000), (7, 7, 10), (3, 1_000_003, 2000),
                                    (999, 10**12 + 5, 2000), (0, 4_999, 300), (17, 2_016, 2000)]:
        width = _bucket_width(first, last, max_points)
        assert last // width - first // width + 1 <= max_points // 2, (first, last, width)


def test_several_series_in_one_request_match_one_at_a_time(lab):
    from lab.selectors.metrics import metric_series_many

    run = Run.objects.create(team=lab.team, name="many")
    _series(run, "kl", [math.cos(i / 50) for i in range(5_000)])
    _series(run, "loss", [1.0, None, 3.0])
    _store(run, [(9_999, 2, "loss", -1.0)])  # a second value at one step
    names = ["loss", "missing", "kl"]
    together = metric_series_many(run.id, names, max_points=300)
    assert together == [metric_series(run.id, name, max_points=300) for name in names]
    assert together[0]["x"] == [0, 2, 2] and together[0]["y"] == [1.0, -1.0, 3.0]
    assert together[1] == {"name": "missing", "x": [], "y": [], "raw": 0, "drawn": 0, "bucket": 1}
    assert together[2]["drawn"] <= 300 and max(together[2]["y"]) == 1.0
    assert metric_series_many(run.id, names, after_step=4_997)[2]["x"] == [4_998, 4_999]


@pytest.mark.django_db(transaction=True)
def test_the_migration_summarises_metrics_stored_before_it():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from lab.models import MetricSummary
    from lab.services.metric_summaries import summarise

    before, after = [("lab", "0005_run_stages")], [("lab", "0006_metric_summaries")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        Team, Run_, Metric_ = (apps.get_model("lab", name) for name in ("Team", "Run", "Metric"))
        run = Run_.objects.create(team=Team.objects.create(slug="old", name="Old"), name="old")
        points = [(i, i * 2, name, (i * 37 % 101) / 4 if i % 9 else None) for i in range(3_000) for name in ("kl", "loss")]
        Metric_.objects.bulk_create(Metric_(run_id=run.id, seq=seq, step=step, name=name, value=value)
                                    for seq, step, name, value in points)
        executor = MigrationExecutor(connection)
        executor.migrate(after)
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())
    stored = {(s.name, s.level, s.block): [s.low_step, s.low, s.high_step, s.high] for s in MetricSummary.objects.filter(run_id=run.id)}
    assert stored == summarise((name, step, value) for _, step, name, value in points)
    series = metric_series(run.id, "kl")
    assert series["bucket"] == 8 and (series["x"], series["y"]) == _minmax_by_hand(
        [(step, value) for _, step, name, value in points if name == "kl"], 8)


def test_pretraining_lr_is_drawn_on_a_second_axis_and_eval_lengths_apart_from_rates():
    from lab.selectors.dashboard import eval_panels

    names = ["train/grad_norm", "train/lr", "eval/gsm8k/pass@1", "eval/gsm8k/mean_length", "eval/gsm8k/format_rate"]
    by_title = {p["title"]: p for p in dashboard_panels(names)}
    assert by_title["Pretraining lr and grad norm"]["secondary"] == ["train/lr"]
    assert by_title["Evaluation"]["names"] == ["eval/gsm8k/pass@1", "eval/gsm8k/format_rate"]
    assert by_title["Evaluation"]["percent"] is True
    assert by_title["Evaluation length"]["names"] == ["eval/gsm8k/mean_length"]
    assert [p["evalUnit"] for p in eval_panels()] == ["fraction", "tokens"]


def test_eval_series_say_their_unit(lab):
    from lab.models import EvalResult
    from lab.selectors.metrics import eval_series

    EvalResult.objects.create(run=lab.run, seq=300, step=20, benchmark="addition-test", metric="mean_length", value=321.0, n=8)
    units = {s["name"]: s["unit"] for s in eval_series(lab.run.id)}
    assert units == {"addition-test pass@1": "fraction", "addition-test mean_length": "tokens"}
