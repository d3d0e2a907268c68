"""The weak-base finding (r1model/train/findings/weak_base.py): the verdict rule on golden metrics, a stage
taking a given step's checkpoint of an earlier stage (From step=), and the --quick chain end to end."""
import json
import os
import statistics

import pytest

from r1model.train import chains
from r1model.train.chains import Chain, ChainError, From, Stage, check_chain, run_chain, stage_config
from r1model.train.findings import CHAINS
from r1model.train.findings.weak_base import BUDGETS, CHAIN, QUICK_BUDGETS, RL_STEPS, weak_base_verdict
from tests.trainer_cli import run_quick_chain


def metrics(rows):
    """{steps: (sampled skill, gain points)} -> flat metrics as comparison.json holds them."""
    out = {}
    for steps, (skill, gain) in rows.items():
        out[f"base_sampled_accuracy@{steps}"] = skill
        out[f"gain_points@{steps}"] = gain
        out[f"base_greedy_accuracy@{steps}"] = 0.0
    return out


# ------------------------------------------------------------------------------------------ the verdict rule

def test_gain_rising_with_skill_then_falling_is_reproduced():
    # the aha-mini story: too weak to be rewarded, then a big jump, then a base that already answers directly
    verdict = weak_base_verdict(metrics({600: (0.0, 0.5), 800: (0.04, 12.0), 1000: (0.12, 53.5), 1200: (0.30, 22.0)}))
    assert verdict["outcome"] == "reproduced"
    assert "+53.5 at the 1000-step base" in verdict["reasons"][0] and "1200-step" in verdict["reasons"][1]


def test_a_weak_base_gaining_as_much_as_the_best_is_not_reproduced():
    verdict = weak_base_verdict(metrics({600: (0.01, 45.0), 800: (0.05, 50.0), 1000: (0.10, 55.0), 1200: (0.2, 52.0)}))
    assert verdict["outcome"] == "not reproduced" and "weakest base, 600-step" in verdict["reasons"][0]


def test_a_dip_on_the_way_up_is_not_reproduced():
    verdict = weak_base_verdict(metrics({600: (0.0, 30.0), 800: (0.05, 5.0), 1000: (0.1, 60.0)}))
    assert verdict["outcome"] == "not reproduced" and any("dips" in r for r in verdict["reasons"])


def test_bases_are_ordered_by_skill_not_by_steps():
    # the 600-step checkpoint happens to sample better than the 800-step one: it is the stronger base
    rising = metrics({600: (0.08, 40.0), 800: (0.02, 2.0), 1000: (0.15, 60.0)})
    assert weak_base_verdict(rising)["outcome"] == "reproduced"
    assert "800-step" in weak_base_verdict(rising)["reasons"][0]


def test_no_gain_or_too_few_bases_is_inconclusive():
    assert weak_base_verdict(metrics({15: (0.0, 0.0), 30: (0.06, 0.0), 45: (0.0, 0.0)}))["outcome"] == "inconclusive"
    assert weak_base_verdict(metrics({600: (0.0, 0.0), 1200: (0.3, 90.0)}))["outcome"] == "inconclusive"
    assert weak_base_verdict({"gain_points@600": None, "max_gain_points": 80.0})["outcome"] == "inconclusive"


def test_the_verdict_applies_to_seed_means():
    seeds = [metrics({600: (0.0, 1.0), 1000: (0.1, 90.0), 1200: (0.3, 22.0)}),
             metrics({600: (0.0, 3.0), 1000: (0.02, 4.0), 1200: (0.1, 99.0)})]
    means = {key: statistics.fmean(seed[key] for seed in seeds) for key in seeds[0]}
    assert weak_base_verdict(means)["outcome"] == "reproduced"  # 2.0 → 47.0 → 60.5


# ------------------------------------------------------------------------------------------ From(step=)

def test_the_chain_is_registered_and_its_rl_stages_start_from_their_budgets_checkpoint():
    assert CHAINS["weak-base"] is CHAIN
    check_chain(CHAIN)
    rl = sorted((s for s in CHAIN.stages if s.name.startswith("rl-")), key=lambda s: int(s.name[3:]))
    assert [s.model.key() for s in rl] == [f"checkpoint@{b}" for b in BUDGETS]
    assert [s.model.key(quick=True) for s in rl] == [f"checkpoint@{b}" for b in QUICK_BUDGETS]
    base = stage_config(CHAIN, CHAIN.stages[0])
    assert base.total_steps == BUDGETS[-1] and all(b % base.checkpoint_interval == 0 for b in BUDGETS)
    assert base.keep_checkpoints >= BUDGETS[-1] // base.checkpoint_interval
    quick = stage_config(CHAIN, CHAIN.stages[0], quick=True)
    assert all(b % quick.checkpoint_interval == 0 for b in QUICK_BUDGETS) and quick.total_steps == QUICK_BUDGETS[-1]
    config = stage_config(CHAIN, rl[0], inputs={"model.source": "/x/step-300"})
    assert config.model.source == "/x/step-300" and config.base.steps == 0
    # every budget gets the same RL, evaluated at its step 0 (the base's greedy skill) and its end only
    assert config.total_steps == RL_STEPS and config.evaluation.interval == 0 and config.evaluation.at_start


def test_a_step_is_only_for_checkpoints():
    bad = Chain("bad", "", (Stage("a", recipe="aha-mini"), Stage("b", recipe="aha-mini", model=From("a", "rollouts", step=2))))
    with pytest.raises(ChainError, match="step"):
        check_chain(bad)


def test_a_stage_takes_the_checkpoint_at_its_step_and_fails_naming_a_missing_one(tmp_path, monkeypatch):
    def fake_run_stage(chain, stage, stage_dir, quick, seed, sets, inputs, *args):
        for step in (2, 4, 6):  # complete checkpoints, and one half-written
            folder = stage_dir / "checkpoints" / f"step-{step}"
            folder.mkdir(parents=True)
            (folder / "config.json").write_text("{}")
            (folder / "trainer_state.json").write_text(json.dumps({"step": step, "source": inputs.get("model.source")}))
        (stage_dir / "checkpoints" / "step-8").mkdir()
        return "completed", None

    monkeypatch.setattr(chains, "_run_stage", fake_run_stage)
    chain = Chain("steps", "", (Stage("base", recipe="aha-mini"),
                                Stage("mid", recipe="aha-mini", model=From("base", step=4, quick_step=2)),
                                Stage("last", recipe="aha-mini", model=From("base"))))
    log = open(os.devnull, "w")
    assert run_chain(chain, tmp_path / "full", progress_stream=log) == 0
    state = json.loads((tmp_path / "full" / "chain.json").read_text())
    edges = {(e["artifact"], e["to"]): e["path"] for e in state["lineage"]}
    assert edges == {("checkpoint@4", "mid"): "stages/01-base/checkpoints/step-4",
                     ("checkpoint", "last"): "stages/01-base/checkpoints/step-6"}
    assert run_chain(chain, tmp_path / "quick", quick=True, progress_stream=log) == 0
    state = json.loads((tmp_path / "quick" / "chain.json").read_text())
    assert state["stages"][1]["inputs"]["model.source"]["path"] == "stages/01-base/checkpoints/step-2"

    missing = Chain("missing", "", (Stage("base", recipe="aha-mini"),
                                    Stage("mid", recipe="aha-mini", model=From("base", step=8))))
    assert run_chain(missing, tmp_path / "missing", progress_stream=log) == 1
    state = json.loads((tmp_path / "missing" / "chain.json").read_text())
    assert state["stages"][1]["reason"] == "stage base produced no checkpoint@8 for model.source"


# ------------------------------------------------------------------------------------------ --quick end to end

@pytest.mark.slow
def test_quick_weak_base_runs_every_budget_from_its_own_checkpoint(tmp_path):
    run_dir = tmp_path / "weak-base"
    last, _, stages = run_quick_chain("weak-base", run_dir, timeout=600)
    assert len(stages) == len(CHAIN.stages)
    weights = set()
    for budget, steps in zip(BUDGETS, QUICK_BUDGETS):
        checkpoint = run_dir / stages["base"]["artifacts"][f"checkpoint@{steps}"]
        weights.add((checkpoint / "model.safetensors").read_bytes())
        for name in (f"probe-{budget}", f"rl-{budget}"):  # both stages of a budget read that checkpoint
            config = json.loads((run_dir / stages[name]["dir"] / "config.json").read_text())
            assert config["model"]["source"] == str(checkpoint)
    assert len(weights) == len(BUDGETS)  # four different bases
    comparison = json.loads((run_dir / "comparison.json").read_text())
    assert set(comparison) >= {"finding", "metrics", "verdict", "table", "charts", "headline", "note"}
    rows = comparison["table"]["rows"]
    assert [row[0] for row in rows] == list(QUICK_BUDGETS)
    for row in rows:
        steps, greedy, sampled, after, gain = row[0], row[1], row[2], row[5], row[6]
        assert all(0.0 <= v <= 1.0 for v in (greedy, sampled, after))
        assert gain == pytest.approx(100 * (after - greedy))
        assert comparison["metrics"][f"gain_points@{steps}"] == gain
        assert comparison["metrics"][f"base_sampled_accuracy@{steps}"] == sampled
    assert comparison["verdict"] == weak_base_verdict(comparison["metrics"])
    assert comparison["verdict"]["outcome"] == "inconclusive"  # 2 GRPO steps move nothing
    headline = comparison["headline"]
    assert headline["name"] == "weak_base_gain_rise_points"
    assert last == f"weak_base_gain_rise_points={headline['value']:.1f}"
