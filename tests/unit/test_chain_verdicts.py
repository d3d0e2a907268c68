"""r1-mini's and long2short's comparison.json in the general shape (finding, metrics, verdict, table, charts,
headline; r1model.train.chains) and their verdicts on flat metrics."""
import json
from pathlib import Path

import pytest

from r1model.events import EventWriter
from r1model.train.chains import (
    L2S_METHODS, LONG2SHORT, R1_MINI, long2short_comparison, long2short_general, long2short_verdict, r1_mini_comparison,
    r1_mini_general, r1_mini_verdict,
)
from r1model.train.findings import CHAINS


def _evals(path: Path, benchmark_values: dict[str, dict[str, float]], config: dict | None = None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config or {"kind": "grpo", "evaluation": {}}))
    with EventWriter(path) as events:
        for benchmark, values in benchmark_values.items():
            for metric, value in values.items():
                events.eval(3, benchmark, metric, value, 4)


def _diff(acc, fmt, mix):
    return {"difference.accuracy": acc, "difference.format_rate": fmt, "difference.mixing_rate": mix}


def test_r1_mini_verdict_on_flat_metrics():
    assert r1_mini_verdict(_diff(0.0, 0.5, 0.0))["outcome"] == "reproduced"
    assert r1_mini_verdict(_diff(-0.04, 0.0, -0.2))["outcome"] == "reproduced"  # within the tolerance
    worse = r1_mini_verdict(_diff(-0.25, -0.1, 0.2))
    assert worse["outcome"] == "not reproduced"
    assert worse["reasons"] == ["format rate fell by 0.10", "mixing rate rose by 0.20", "accuracy fell by 0.25"]
    same = r1_mini_verdict(_diff(0.0, 0.0, 0.0))
    assert same["outcome"] == "inconclusive" and "no better" in same["reasons"][0]
    # a rate within one point is the same rate: one malformed answer in 800 is not a fall (r1-mini seed 1) ...
    noise = r1_mini_verdict(_diff(-0.003, -0.00125, -0.285))
    assert noise["outcome"] == "reproduced" and noise["reasons"] == ["mixing rate down 0.28", "accuracy -0.00"]
    # ... nor is a rate better by less than a point an improvement, and more than a point lower is a fall
    assert r1_mini_verdict(_diff(0.0, 0.005, -0.005))["outcome"] == "inconclusive"
    assert r1_mini_verdict(_diff(0.0, -0.02, -0.3))["reasons"] == ["format rate fell by 0.02"]
    assert r1_mini_verdict({})["outcome"] == "inconclusive"
    assert CHAINS["r1-mini"].verdict is r1_mini_verdict and CHAINS["r1-mini"].finding


def test_r1_mini_comparison_keeps_its_keys_and_adds_the_general_ones(tmp_path):
    dirs = dict(zip((s.name for s in R1_MINI.stages), R1_MINI.stage_dirs()))
    _evals(tmp_path / "stages" / dirs["eval-zero"], {"heldout": {"pass@1": 0.5, "format_rate": 0.25, "mean_length": 40.0}})
    _evals(tmp_path / "stages" / dirs["reasoning-rl"], {"heldout": {"pass@1": 0.625}})
    _evals(tmp_path / "stages" / dirs["eval-r1-mini"], {"heldout": {"pass@1": 0.75, "format_rate": 1.0, "mean_length": 30.0}})
    comparison, line = r1_mini_comparison(tmp_path, R1_MINI)
    assert comparison["baseline"]["stage"] == "eval-zero" and comparison["final"]["accuracy"] == 0.75  # old keys
    assert comparison["difference"]["format_rate"] == pytest.approx(0.75)
    metrics = comparison["metrics"]
    assert metrics["zero.accuracy"] == 0.5 and metrics["r1-mini.mean_length"] == 30.0
    assert metrics["difference.accuracy"] == pytest.approx(0.25) and metrics["difference.mixing_rate"] is None
    assert comparison["verdict"]["outcome"] == "reproduced" and comparison["finding"] == R1_MINI.finding
    assert comparison["headline"] == {"name": "r1_mini_minus_zero_accuracy", "value": pytest.approx(0.25)}
    assert line == "r1_mini_minus_zero_accuracy=0.2500"
    assert comparison["table"]["rows"][0][:3] == ["accuracy", 0.5, 0.75]
    stages = comparison["charts"][0]
    assert stages["series"][0]["y"][stages["series"][0]["x"].index("reasoning-rl")] == 0.625
    assert stages["series"][0]["y"][stages["series"][0]["x"].index("base")] is None
    json.dumps(comparison, allow_nan=False)


def test_an_old_r1_mini_comparison_gets_the_same_general_keys():
    old = {"baseline": {"accuracy": 0.5, "format_rate": 0.5}, "final": {"accuracy": 0.5, "format_rate": 0.25},
           "difference": {"accuracy": 0.0, "format_rate": -0.25}}
    general = r1_mini_general(old)
    assert general["metrics"]["difference.format_rate"] == -0.25
    assert general["verdict"]["outcome"] == "not reproduced"


def _l2s_metrics(**methods):
    out = {}
    for method, (acc, eff) in methods.items():
        out[f"{method}.accuracy"], out[f"{method}.token_efficiency"] = acc, eff
    return out


def test_long2short_verdict_needs_higher_efficiency_at_similar_accuracy():
    ok = long2short_verdict(_l2s_metrics(long=(0.5, 0.01), **{"length-penalty": (0.46, 0.03),
                                                             "shortest-rejection": (0.2, 0.05), "merge": (0.5, 0.01)}))
    assert ok["outcome"] == "reproduced" and ok["reasons"] == [
        "length-penalty: token efficiency 0.0300 vs 0.0100 at accuracy 0.46 (long 0.50)"]
    lost = long2short_verdict(_l2s_metrics(long=(0.5, 0.01), **{"length-penalty": (0.4, 0.03),
                                                               "shortest-rejection": (0.5, 0.009), "merge": (0.5, 0.01)}))
    assert lost["outcome"] == "not reproduced"
    assert "length-penalty: accuracy 0.40 is 0.10 below the long model's" in lost["reasons"]
    assert any(r.startswith("shortest-rejection: token efficiency") for r in lost["reasons"])
    same = _l2s_metrics(**{m: (0.5, 0.01) for m in L2S_METHODS})
    assert long2short_verdict(same)["outcome"] == "inconclusive"
    assert long2short_verdict(_l2s_metrics(long=(0.0, 0.0)))["outcome"] == "inconclusive"
    assert long2short_verdict(_l2s_metrics(long=(0.5, 0.01)))["reasons"][0].endswith("not evaluated")
    assert CHAINS["long2short"].verdict(same)["outcome"] == "inconclusive" and CHAINS["long2short"].finding


def test_long2short_comparison_has_the_general_keys_and_a_think_budget_chart(tmp_path):
    dirs = dict(zip((s.name for s in LONG2SHORT.stages), LONG2SHORT.stage_dirs()))
    scores = {"long": (0.5, 40.0), "length-penalty": (0.5, 16.0), "shortest-rejection": (0.25, 10.0), "merge": (0.5, 40.0)}
    for method, stage in L2S_METHODS.items():
        acc, length = scores[method]
        values = {"pass@1": acc, "mean_length": length, "token_efficiency": acc / length}
        _evals(tmp_path / "stages" / dirs[stage], {"heldout": values, "heldout@think<=8": {"pass@1": acc / 2, "mean_length": 9.0},
                                                   "heldout@think<=16": {"pass@1": acc, "mean_length": 15.0}},
               config={"kind": "evaluate", "evaluation": {"think_budgets": [8, 16]}})
    comparison, line = long2short_comparison(tmp_path, LONG2SHORT)
    assert comparison["best"] == "length-penalty" and "methods" in comparison  # old keys kept
    assert comparison["metrics"]["shortest-rejection.token_efficiency"] == pytest.approx(0.025)
    assert comparison["verdict"]["outcome"] == "reproduced"
    assert comparison["verdict"]["reasons"][0].startswith("length-penalty:")
    assert comparison["headline"] == {"name": "long2short_best_token_efficiency", "value": pytest.approx(0.5 / 16)}
    assert line.split("=")[0] == comparison["headline"]["name"]
    curve = next(c for c in comparison["charts"] if c["title"] == "accuracy vs think budget")
    long = next(s for s in curve["series"] if s["name"] == "long")
    assert long["x"] == [8, 16] and long["y"] == [0.25, 0.5]
    assert [row[0] for row in comparison["table"]["rows"]] == list(L2S_METHODS)
    assert long2short_general({"methods": comparison["methods"], "best": "length-penalty"})["metrics"] == comparison["metrics"]
