"""Dashboard data: downsampling keeps extremes and counts, panels group metric names, health warnings."""
import math

from lab.models import Metric, Run
from lab.selectors.dashboard import dashboard_panels
from lab.selectors.health import run_health
from lab.selectors.metrics import MAX_POINTS, metric_names, metric_series


def _series(run, name, values):
    Metric.objects.bulk_create([Metric(run=run, seq=i, step=i, name=name, value=v) for i, v in enumerate(values)])


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
    Metric.objects.bulk_create([Metric(run=run, seq=i, step=i, name="loss", value=(i * 7919) % 1000 / 10)
                                for i in range(1, 10_001)])
    series = metric_series(run.id, "loss")
    assert series["raw"] == 10_000 and MAX_POINTS * 0.9 <= series["drawn"] == len(series["x"]) <= MAX_POINTS
    assert series["x"] == sorted(series["x"]) and len(set(series["x"])) == series["drawn"]


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
    Metric.objects.create(run=run, seq=9_999, step=2, name="loss", value=-1.0)  # a second value at one step
    names = ["loss", "missing", "kl"]
    together = metric_series_many(run.id, names, max_points=300)
    assert together == [metric_series(run.id, name, max_points=300) for name in names]
    assert together[0]["x"] == [0, 2, 2] and together[0]["y"] == [1.0, -1.0, 3.0]
    assert together[1] == {"name": "missing", "x": [], "y": [], "raw": 0, "drawn": 0}
    assert together[2]["drawn"] <= 300 and max(together[2]["y"]) == 1.0
    assert metric_series_many(run.id, names, after_step=4_997)[2]["x"] == [4_998, 4_999]
