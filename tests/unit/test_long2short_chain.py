"""The long2short chain (Kimi k1.5 §2.4): definitions, equal compute, the comparison, and the quick run end to end."""
import json
from pathlib import Path

import pytest

from r1model.events import EventWriter
from r1model.train.chains import CHAINS, LONG2SHORT, L2S_METHODS, check_chain, long2short_comparison, stage_config
from tests.trainer_cli import run_quick_chain

INPUTS = {"model.source": "/somewhere/step-2", "datasets": "/somewhere/data.jsonl"}


def _config(name, quick=True):
    stage = next(s for s in LONG2SHORT.stages if s.name == name)
    inputs = {k: v for k, v in INPUTS.items() if k in stage.inputs()}
    return stage_config(LONG2SHORT, stage, quick=quick, inputs=inputs)


def test_long2short_is_a_valid_chain_with_a_merge_of_long_and_short():
    assert CHAINS["long2short"] is LONG2SHORT
    check_chain(LONG2SHORT)
    merge = next(s for s in LONG2SHORT.stages if s.name == "merge")
    assert merge.kind == "merge" and {k: v.stage for k, v in merge.inputs().items()} == {"merge.a": "long",
                                                                                          "merge.b": "short-sft"}
    data = next(s for s in LONG2SHORT.stages if s.name == "shortest-data")
    assert data.make == "shortest-correct" and data.source.stage == "long-samples"


@pytest.mark.parametrize("quick", [True, False])
def test_each_method_gets_equal_compute_and_the_rl_a_shorter_rollout_and_the_length_penalty(quick):
    long, rl, samples, sft = (_config(n, quick) for n in ("long", "length-rl", "long-samples", "short-sft"))
    assert rl.sampling.max_new_tokens < long.sampling.max_new_tokens == samples.sampling.max_new_tokens
    assert "length" in rl.reward_weights() and "length" not in long.reward_weights()
    rl_samples = rl.total_steps * rl.grpo.prompts_per_step * rl.grpo.group_size
    assert rl_samples == samples.total_steps * samples.grpo.prompts_per_step * samples.grpo.group_size
    assert rl_samples == sft.total_steps * sft.supervised.batch_size  # sequences trained on
    evals = [_config(stage, quick).evaluation for stage in L2S_METHODS.values()]
    assert all(e == evals[0] for e in evals) and evals[0].think_budgets and evals[0].temperature == 0


def test_full_sets_apply_to_every_run_stage_without_quick_and_a_user_set_still_wins():
    trained = [s.name for s in LONG2SHORT.stages if s.kind == "run" and s.dataset is None]
    assert {_config(name, quick=False).datasets[0].difficulty["digits"] for name in trained} == {2}
    assert {_config(name, quick=True).datasets[0].difficulty["digits"] for name in trained} == {1}
    assert _config("base", quick=False).total_steps == 300 and _config("base", quick=True).total_steps == 60
    stage = next(s for s in LONG2SHORT.stages if s.name == "eval-long")
    config = stage_config(LONG2SHORT, stage, sets=[("datasets.0.difficulty", {"digits": 3})],
                          inputs={"model.source": "/somewhere/step-2"})
    assert config.datasets[0].difficulty == {"digits": 3}


def _eval_run(path: Path, values: dict, budgets: dict) -> None:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"kind": "evaluate", "evaluation": {"think_budgets": [int(b) for b in budgets]}}))
    with EventWriter(path) as events:
        for benchmark, (accuracy, length) in [("heldout", values), *[(f"heldout@think<={b}", v) for b, v in budgets.items()]]:
            events.eval(0, benchmark, "pass@1", accuracy, 4)
            events.eval(0, benchmark, "mean_length", length, 4)
            events.eval(0, benchmark, "token_efficiency", accuracy / length, 4)


def test_comparison_ranks_methods_by_token_efficiency_and_counts_their_compute(tmp_path):
    dirs = dict(zip((s.name for s in LONG2SHORT.stages), LONG2SHORT.stage_dirs()))
    stages = tmp_path / "stages"
    scores = {"long": (0.5, 40.0), "length-penalty": (0.45, 15.0), "shortest-rejection": (0.5, 25.0), "merge": (0.4, 20.0)}
    for method, eval_stage in L2S_METHODS.items():
        _eval_run(stages / dirs[eval_stage], scores[method], {"8": (0.1, 9.0)})
    for name, config in (("length-rl", {"kind": "grpo", "total_steps": 2, "grpo": {"prompts_per_step": 4, "group_size": 4}}),
                         ("long-samples", {"kind": "rejection_sampling", "total_steps": 2, "grpo": {"prompts_per_step": 4, "group_size": 4}}),
                         ("short-sft", {"kind": "sft", "total_steps": 4, "supervised": {"batch_size": 8}})):
        (stages / dirs[name]).mkdir(parents=True)
        (stages / dirs[name] / "config.json").write_text(json.dumps(config))
    comparison, line = long2short_comparison(tmp_path, LONG2SHORT)
    methods = comparison["methods"]
    # token efficiency: long 0.5/40 = 0.0125, length-penalty 0.45/15 = 0.03, shortest 0.5/25 = 0.02, merge 0.4/20 = 0.02
    assert methods["length-penalty"]["token_efficiency"] == pytest.approx(0.03) and comparison["best"] == "length-penalty"
    assert comparison["difference"]["accuracy"] == pytest.approx(-0.05)
    assert comparison["difference"]["mean_length"] == pytest.approx(-25.0)
    assert methods["long"]["think_budgets"]["8"]["accuracy"] == 0.1
    assert methods["length-penalty"]["compute"] == {"sampled_completions": 32, "trained_sequences": 32}
    assert methods["shortest-rejection"]["compute"] == {"sampled_completions": 32, "trained_sequences": 32}
    assert methods["merge"]["compute"] == methods["shortest-rejection"]["compute"]
    assert methods["long"]["compute"] == {"sampled_completions": 0, "trained_sequences": 0}
    assert line == "long2short_best_token_efficiency=0.030000"


@pytest.mark.slow
def test_long2short_quick_runs_every_stage_and_compares_every_method(tmp_path):
    run_dir = tmp_path / "l2s"
    last, state, stages = run_quick_chain("long2short", run_dir)
    assert last.startswith("long2short_best_token_efficiency=")
    merged = run_dir / stages["merge"]["artifacts"]["checkpoint"]
    assert (merged / "model.safetensors").is_file() and json.loads((merged / "merge.json").read_text())["weight"] == 0.5
    assert {(x["from"], x["as"]) for x in state["lineage"] if x["to"] == "merge"} == {("long", "merge.a"),
                                                                                      ("short-sft", "merge.b")}
    comparison = json.loads((run_dir / "comparison.json").read_text())
    assert set(comparison["methods"]) == {"long", "length-penalty", "shortest-rejection", "merge"}
    for method in comparison["methods"].values():
        assert method["n"] > 0 and method["token_efficiency"] == pytest.approx(method["accuracy"] / method["mean_length"])
        assert set(method["think_budgets"]) == {"8", "16"}
    assert comparison["best"] in comparison["methods"] and comparison["headline"]["name"] == "long2short_best_token_efficiency"
