"""The mcts-vs-sampling finding (DeepSeek-R1 §4.2): settings, refusal, the value model, verdict, comparison, and
the quick chain end to end."""
import io
import json
import random

import pytest
import torch

from r1model.train.chains import ChainError, check_chain, get_chain, run_chain
from r1model.train.findings import CHAINS
from r1model.train.findings.mcts_vs_sampling import (
    CHAIN, METHODS, QUICK, budgets_of, comparison_of, search_settings, verdict,
)


def test_the_chain_is_registered_and_valid():
    assert CHAINS["mcts-vs-sampling"] is CHAIN and get_chain("mcts-vs-sampling") is CHAIN
    check_chain(CHAIN)
    assert [s.kind for s in CHAIN.stages] == ["run", "data"]
    assert CHAIN.stages[1].source.stage == "base" and dict(CHAIN.builders)["mcts-vs-sampling"].check is not None


def test_settings_defaults_quick_and_sets():
    full, quick = search_settings(False), search_settings(True)
    assert full["digits"] == [2, 3, 4] and quick["digits"] == QUICK["digits"]
    assert budgets_of(full) == [120, 240, 480] and budgets_of(quick)[-1] == quick["token_budget"]
    changed = search_settings(False, [("mcts.c_puct", 2.5), ("digits", [4, 2])])
    assert changed["mcts"]["c_puct"] == 2.5 and changed["digits"] == [2, 4]
    with pytest.raises(ValueError, match="mcts.width: no such search setting"):
        search_settings(False, [("mcts.width", 3)])
    with pytest.raises(ValueError, match="^digits: must be"):
        search_settings(False, [("digits", [])])
    with pytest.raises(ValueError, match="^value.steps: must be an integer >= 0"):
        search_settings(False, [("value.steps", -1)])


@pytest.mark.parametrize("key, value", [("mcts.branching", 8), ("mcts.max_depth", 12), ("token_budget", 200)])
def test_a_tree_too_costly_for_the_budget_is_refused_naming_the_fields(key, value):
    with pytest.raises(ValueError, match="worst-case tokens") as info:
        search_settings(False, [(key, value)])
    message = str(info.value)
    assert "mcts.branching" in message and "mcts.max_depth" in message and "token_budget" in message


def test_the_chain_refuses_a_too_costly_tree_before_any_stage_runs(tmp_path):
    with pytest.raises(ChainError, match=r"stage search: mcts.branching 64 .* worst-case tokens"):
        run_chain("mcts-vs-sampling", tmp_path / "run", quick=True, sets=[("search:mcts.branching", 64)],
                  progress_stream=io.StringIO())
    assert not (tmp_path / "run" / "chain.json").exists() and not (tmp_path / "run" / "stages").exists()


def test_the_value_model_learns_an_outcome_from_a_prefix_and_round_trips(tmp_path):
    from r1model.model.config import ModelConfig
    from r1model.model.value import ValueModel, fit_value_model, predict, value_errors

    torch.manual_seed(0)
    rng = random.Random(0)

    def example():  # the outcome is written in the prefix's first token; the rest is noise
        label = rng.random() < 0.5
        return [20 if label else 21] + [rng.randrange(30, 90) for _ in range(rng.randrange(2, 6))], float(label)

    train, heldout = [example() for _ in range(200)], [example() for _ in range(60)]
    model = ValueModel(ModelConfig.preset("tiny", num_nextn_predict_layers=0, num_hidden_layers=1))
    losses = fit_value_model(model, train, pad=0, steps=60, batch_size=16, learning_rate=1e-2, seed=0)
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10
    probs = predict(model, [ids for ids, _ in heldout], pad=0)
    errors = value_errors(probs, [y for _, y in heldout])
    assert errors["brier"] < 0.5 * errors["baseline_brier"] and errors["error_rate"] < 0.1
    loaded = ValueModel.load(model.save(tmp_path / "value.pt"))
    assert predict(loaded, [ids for ids, _ in heldout[:5]], pad=0) == pytest.approx(probs[:5], abs=1e-6)
    with pytest.raises(ValueError, match="empty sequence"):
        predict(model, [[]], pad=0)


def _metrics(mcts, best_of_n, majority, sampling=0.3, mcts_tokens=480.0, sample_tokens=470.0):
    return {"mcts.accuracy": mcts, "best_of_n_value.accuracy": best_of_n, "majority.accuracy": majority,
            "sampling.accuracy": sampling, "mcts.tokens": mcts_tokens, "best_of_n_value.tokens": sample_tokens}


def test_verdict_rule():
    assert verdict(_metrics(0.40, 0.55, 0.50))["outcome"] == "reproduced"
    assert verdict(_metrics(0.56, 0.55, 0.50))["outcome"] == "reproduced"  # within the margin: not better
    out = verdict(_metrics(0.70, 0.55, 0.60))
    assert out["outcome"] == "not reproduced" and "majority vote 0.600 (+0.100)" in out["reasons"][0]  # the better one
    assert verdict(_metrics(0.0, 0.0, 0.0, 0.0))["outcome"] == "inconclusive"
    assert verdict(_metrics(1.0, 1.0, 1.0, 1.0))["outcome"] == "inconclusive"
    assert verdict(_metrics(0.4, 0.5, 0.5, mcts_tokens=900.0))["outcome"] == "inconclusive"
    assert verdict(_metrics(None, 0.5, 0.5))["outcome"] == "inconclusive"
    assert "rule" in verdict({})


def _summary():
    def curve(points):
        return [{"budget": b, "accuracy": a, "tokens": t, "tokens_per_solved": t / a if a else None}
                for b, (a, t) in zip((240, 480), points)]

    size = lambda d, m: {"digits": d, "methods": {
        "mcts": curve([(0.1 * m, 250), (0.2 * m, 490)]), "best_of_n_value": curve([(0.3, 250), (0.5 * m, 500)]),
        "majority": curve([(0.3, 250), (0.45 * m, 500)]), "sampling": curve([(0.3, 30), (0.3, 30)])},
        "mcts_tree": {"nodes": 10 * d, "expansions": 3 * d, "answers": 1, "no_answer_rate": 0.1 * d,
                      "stopped": {"exhausted": d, "budget": 4 - d}}}
    return {"budgets": [240, 480], "sizes": {"2": size(2, 1.0), "3": size(3, 0.5)},
            "settings": {"token_budget": 480, "mcts": {"branching": 4, "max_depth": 5, "max_step_tokens": 20}},
            "value": {"heldout": {"brier": 0.2, "baseline_brier": 0.25, "error_rate": 0.3},
                      "heldout_by_step": {"1": {"brier": 0.22, "baseline_brier": 0.25}}}}


def test_comparison_has_the_general_shape_and_compares_at_the_budget():
    comparison = comparison_of(_summary(), CHAIN)
    assert {"finding", "metrics", "verdict", "table", "charts", "headline", "note"} <= set(comparison)
    metrics = comparison["metrics"]
    assert metrics["mcts.accuracy"] == pytest.approx((0.2 + 0.1) / 2)
    assert metrics["best_of_n_value.accuracy"] == pytest.approx((0.5 + 0.25) / 2)
    assert metrics["mcts_minus_best_sampling"] == pytest.approx(0.15 - 0.375)
    assert comparison["headline"] == {"name": "mcts_minus_best_sampling_accuracy", "value": metrics["mcts_minus_best_sampling"]}
    assert metrics["d3.mcts.nodes"] == 30 and metrics["value.brier"] == 0.2
    assert metrics["d3.full_tree_nodes"] == 4 + 16 + 64  # K = 4, three lines
    assert metrics["d2.mcts.exhausted_rate"] == 0.5 and metrics["mcts.exhausted_rate"] == pytest.approx((0.5 + 0.75) / 2)
    assert all(isinstance(v, (int, float)) or v is None for v in metrics.values())
    assert comparison["verdict"] == verdict(metrics) and comparison["verdict"]["outcome"] == "reproduced"
    assert len(comparison["table"]["rows"]) == 2 * len(METHODS)
    for chart in comparison["charts"]:
        assert all(len(s["x"]) == len(s["y"]) for s in chart["series"])
    assert comparison_of({}, CHAIN)["verdict"]["outcome"] == "inconclusive"


def test_quick_chain_runs_end_to_end(tmp_path, capsys):
    root = tmp_path / "run"
    assert run_chain("mcts-vs-sampling", root, quick=True, seed=1, progress_stream=io.StringIO()) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    comparison = json.loads((root / "comparison.json").read_text())
    assert line.startswith("mcts_minus_best_sampling_accuracy=")
    assert {"finding", "metrics", "verdict", "table", "charts", "headline", "note"} <= set(comparison)
    assert comparison["verdict"] == verdict(comparison["metrics"])
    settings = search_settings(True)
    stage = root / "stages" / "02-search"
    summary = json.loads((stage / "summary.json").read_text())
    assert (stage / "value_model.pt").is_file() and summary["seed"] == 1
    assert summary["value"]["train_rollouts"] == settings["value"]["problems"] * settings["value"]["samples"]
    assert summary["value"]["heldout"]["n"] > 0 and summary["value"]["heldout"]["brier"] is not None
    rows = [json.loads(line) for line in (stage / "data.jsonl").read_text().splitlines()]
    budget, k, length = settings["token_budget"], settings["mcts"]["branching"], settings["mcts"]["max_step_tokens"]
    for d in settings["digits"]:
        trees = [r for r in rows if r["digits"] == d and r["method"] == "mcts"]
        samples = [r for r in rows if r["digits"] == d and r["method"] == "samples"]
        assert len(trees) == len(samples) == settings["problems"]
        for tree in trees:
            # an expansion starts below the budget, so a tree passes it by one expansion at most
            assert 0 < tree["tokens"] < budget + k * length and tree["nodes"] >= 1
            assert tree["max_depth"] <= settings["mcts"]["max_depth"]
            assert tree["correct"] is False or tree["completion"] is not None
        for sample in samples:
            assert len(sample["tokens"]) == len(sample["correct"]) == len(sample["value"])
            assert all(0 <= v <= 1 for v in sample["value"])
        size = summary["sizes"][str(d)]
        for method in METHODS:
            assert [p["budget"] for p in size["methods"][method]] == budgets_of(settings)
        assert size["mcts_tree"]["nodes"] == pytest.approx(sum(t["nodes"] for t in trees) / len(trees))
    # the same command again reuses both stages and writes the same comparison
    assert run_chain("mcts-vs-sampling", root, quick=True, seed=1, progress_stream=io.StringIO()) == 0
    assert json.loads((root / "comparison.json").read_text()) == comparison
