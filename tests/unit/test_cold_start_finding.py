"""The cold-start-vs-zero finding (r1model/train/findings/cold_start.py, DeepSeek-R1 §2.3.1): steps and CPU-minutes
to the target on golden curves (never reached → None, not 0), the verdict, comparison.json from written events,
the two RL arms configured alike, and the --quick chain end to end through the CLI."""
import json
from pathlib import Path

import pytest

from r1model.events import EventWriter
from r1model.train.chains import check_chain, stage_config
from r1model.train.findings import CHAINS, MODULES
from r1model.train.findings import cold_start
from r1model.train.findings.cold_start import (CHAIN, cpu_minutes_to, steps_to_target, summarise,
                                               supervised_cpu_minutes, verdict)
from tests.trainer_cli import run_quick_chain


# ------------------------------------------------------------------------------------------ golden curves

@pytest.mark.parametrize("curve, target, expected", [
    ([(0, 0.0), (5, 0.2), (10, 0.55), (15, 0.4), (20, 0.7)], 0.5, 10),  # the first step at or above, not the last
    ([(0, 0.1), (5, 0.5)], 0.5, 5),  # equal counts as reached
    ([(0, 0.6), (5, 0.2)], 0.5, 0),  # reached before any RL step
    ([(0, 0.0), (5, 0.3), (10, 0.49)], 0.5, None),  # never reached: None, not 0
    ([], 0.5, None),
    ([(10, 0.9), (0, 0.0), (5, 0.6)], 0.5, 5),  # unsorted input
])
def test_steps_to_target_on_golden_curves(curve, target, expected):
    assert steps_to_target(curve, target) == expected


def test_cpu_minutes_to_a_step_sums_steps_up_to_it_and_is_none_when_never_reached():
    seconds = {1: 30.0, 2: 30.0, 3: 60.0, 4: 60.0}
    assert cpu_minutes_to(seconds, 2) == pytest.approx(1.0)
    assert cpu_minutes_to(seconds, 4) == pytest.approx(3.0)
    assert cpu_minutes_to(seconds, 0) == 0.0
    assert cpu_minutes_to(seconds, None) is None


# ------------------------------------------------------------------------------------------ verdict

def metrics(zero, cold, zero_cpu=None, cold_cpu=None):
    return {"target_accuracy": 0.5, "zero_steps_to_target": zero, "cold_start_steps_to_target": cold,
            "zero_cpu_min_to_target": zero_cpu, "cold_start_total_cpu_min_to_target": cold_cpu}


def test_fewer_rl_steps_is_reproduced_and_the_reasons_say_whether_total_cpu_was_fewer_too():
    fewer = verdict(metrics(30, 10, zero_cpu=1.0, cold_cpu=0.5))
    assert fewer["outcome"] == "reproduced" and "also in fewer total CPU-minutes" in fewer["reasons"][1]
    dearer = verdict(metrics(30, 10, zero_cpu=1.0, cold_cpu=1.5))
    assert dearer["outcome"] == "reproduced" and "but not in fewer total CPU-minutes" in dearer["reasons"][1]


@pytest.mark.parametrize("zero, cold, outcome", [
    (None, 20, "reproduced"),  # Zero never got there within its budget
    (10, 10, "not reproduced"),
    (10, 25, "not reproduced"),
    (10, None, "not reproduced"),
    (None, None, "inconclusive"),
    (0, 0, "inconclusive"),  # both started above the target
    (12.5, 7.5, "reproduced"),  # seed means
])
def test_verdict_of_steps_to_target(zero, cold, outcome):
    assert verdict(metrics(zero, cold))["outcome"] == outcome


# ------------------------------------------------------------------------------------------ comparison.json

def _rl_run(path: Path, accuracy: list[tuple[int, float]], cpu_per_step: float, worked: float,
            entropy: float = 0.2, zero_std: float = 0.3) -> None:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"kind": "grpo", "total_steps": 20, "evaluation": {"interval": 5}}))
    with EventWriter(path) as events:
        for step in range(1, 21):
            events.metric(step, {"time/step": 9.0, "time/cpu": cpu_per_step, "entropy": entropy,
                                 "frac_reward_zero_std": zero_std}, phase="grpo")
        for step, value in accuracy:
            for metric, number in (("pass@1", value), ("format_rate", 1.0), ("worked_ratio", worked),
                                   ("mean_length", 10.0)):
                events.eval(step, "heldout", metric, number, 200)


def test_summarise_reads_steps_and_cpu_to_target_from_the_runs_events(tmp_path, monkeypatch):
    monkeypatch.setattr(cold_start, "TARGET", 0.5)
    dirs = dict(zip((s.name for s in CHAIN.stages), CHAIN.stage_dirs()))
    stages = tmp_path / "stages"
    _rl_run(stages / dirs["zero"], [(0, 0.0), (5, 0.1), (10, 0.3), (15, 0.55), (20, 0.6)], cpu_per_step=3.0, worked=0.8)
    _rl_run(stages / dirs["cold-start-rl"], [(0, 0.2), (5, 0.5), (10, 0.6), (15, 0.7), (20, 0.7)], cpu_per_step=6.0,
            worked=1.0)
    sft = stages / dirs["cold-start-sft"]
    sft.mkdir(parents=True)
    (sft / "config.json").write_text(json.dumps({"kind": "sft", "total_steps": 2, "supervised": {"batch_size": 16}}))
    with EventWriter(sft) as events:
        events.metric(1, {"train/loss": 1.0, "time/train_cpu": 12.0}, phase="sft")
        events.metric(2, {"train/loss": 0.9, "time/train_cpu": 18.0}, phase="sft")
    assert supervised_cpu_minutes(sft) == pytest.approx(0.5)

    comparison, line = summarise(tmp_path, CHAIN)
    m = comparison["metrics"]
    assert m["target_accuracy"] == 0.5
    assert (m["zero_steps_to_target"], m["cold_start_steps_to_target"]) == (15, 5)
    assert m["zero_cpu_min_to_target"] == pytest.approx(15 * 3.0 / 60)  # time/cpu, not the wall time/step
    assert m["cold_start_rl_cpu_min_to_target"] == pytest.approx(5 * 6.0 / 60)
    assert m["cold_start_sft_cpu_min"] == pytest.approx(0.5)
    assert m["cold_start_total_cpu_min_to_target"] == pytest.approx(1.0)
    assert (m["zero_start_accuracy"], m["cold_start_final_accuracy"]) == (0.0, 0.7)
    assert m["zero_final_worked_ratio"] == 0.8 and m["cold_start_final_format_rate"] == 1.0
    assert m["rl_steps_saved"] == 10 and line == "cold_start_rl_steps_saved=10"
    assert comparison["headline"] == {"name": "cold_start_rl_steps_saved", "value": 10}
    assert all(v is None or isinstance(v, (int, float)) for v in m.values())  # flat: what the lab averages
    # 0.5 CPU-min of SFT + 0.5 of RL = 1.0 against Zero's 0.75
    assert comparison["verdict"] == verdict(m) and comparison["verdict"]["outcome"] == "reproduced"
    assert "but not in fewer total CPU-minutes" in comparison["verdict"]["reasons"][1]
    accuracy_chart = comparison["charts"][0]
    zero_series = accuracy_chart["series"][0]
    assert zero_series["x"] == [0, 5, 10, 15, 20] and zero_series["y"] == [0.0, 0.1, 0.3, 0.55, 0.6]
    table = comparison["table"]
    assert len(table["rows"]) == 2 and all(len(row) == len(table["columns"]) for row in table["rows"])
    assert "0.5" in comparison["note"] and "32 of the task's own worked solutions" in comparison["note"]


def test_an_arm_that_never_reaches_the_target_has_null_steps_and_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(cold_start, "TARGET", 0.5)
    dirs = dict(zip((s.name for s in CHAIN.stages), CHAIN.stage_dirs()))
    stages = tmp_path / "stages"
    _rl_run(stages / dirs["zero"], [(0, 0.0), (10, 0.2), (20, 0.4)], cpu_per_step=3.0, worked=0.5)
    _rl_run(stages / dirs["cold-start-rl"], [(0, 0.1), (10, 0.5), (20, 0.6)], cpu_per_step=3.0, worked=1.0)
    comparison, line = summarise(tmp_path, CHAIN)
    m = comparison["metrics"]
    assert m["zero_steps_to_target"] is None and m["zero_cpu_min_to_target"] is None
    assert m["cold_start_steps_to_target"] == 10
    assert m["cold_start_sft_cpu_min"] is None and m["cold_start_total_cpu_min_to_target"] is None  # no SFT events
    assert m["rl_steps_saved"] is None and line == "cold_start_rl_steps_saved=nan"
    assert comparison["verdict"]["outcome"] == "reproduced"


def test_a_slower_cold_start_is_not_reproduced_and_the_note_says_why_from_entropy_and_flat_groups(tmp_path,
                                                                                                  monkeypatch):
    monkeypatch.setattr(cold_start, "TARGET", 0.3)
    dirs = dict(zip((s.name for s in CHAIN.stages), CHAIN.stage_dirs()))
    stages = tmp_path / "stages"
    _rl_run(stages / dirs["zero"], [(0, 0.0), (10, 0.35), (20, 0.5)], cpu_per_step=3.0, worked=1.0, entropy=0.2,
            zero_std=0.3)
    _rl_run(stages / dirs["cold-start-rl"], [(0, 0.2), (10, 0.25), (20, 0.3)], cpu_per_step=3.0, worked=1.0,
            entropy=0.05, zero_std=0.45)
    comparison, line = summarise(tmp_path, CHAIN)
    m = comparison["metrics"]
    assert (m["zero_steps_to_target"], m["cold_start_steps_to_target"], m["rl_steps_saved"]) == (10, 20, -10)
    assert (m["zero_mean_entropy"], m["cold_start_mean_entropy"]) == (0.2, 0.05)
    assert (m["zero_zero_std_share"], m["cold_start_zero_std_share"]) == (0.3, 0.45)
    assert comparison["verdict"]["outcome"] == "not reproduced" and line == "cold_start_rl_steps_saved=-10"
    assert "Not reproduced" in comparison["note"] and "entropy 0.050 vs Zero's 0.200" in comparison["note"]


# ------------------------------------------------------------------------------------------ the chain

def test_the_chain_is_registered_and_both_rl_arms_get_the_same_rl():
    assert "cold_start" in MODULES and CHAINS["cold-start-vs-zero"] is CHAIN
    check_chain(CHAIN)
    stages = {s.name: s for s in CHAIN.stages}
    assert stages["zero"].model.stage == "base" and stages["cold-start-sft"].model.stage == "base"
    assert stages["cold-start-rl"].model.stage == "cold-start-sft"
    for quick in (True, False):
        zero = stage_config(CHAIN, stages["zero"], quick=quick, inputs={"model.source": "/runs/base/step-1"})
        cold = stage_config(CHAIN, stages["cold-start-rl"], quick=quick, inputs={"model.source": "/runs/sft/step-1"})
        differ = {k for k, v in zero.model_dump().items() if cold.model_dump()[k] != v}
        assert differ == {"model", "name"}  # same budget, rewards, sampling and evaluation schedule
        assert zero.evaluation.interval > 0 and zero.evaluation.at_start
        sft = stage_config(CHAIN, stages["cold-start-sft"], quick=quick, inputs={"model.source": "/runs/base/step-1"})
        assert sft.kind == "sft" and sft.datasets[0].task == "addition"  # the task's own worked solutions
        examples = sft.total_steps * sft.supervised.batch_size
        assert examples == (32 if quick else 320)
    assert zero.total_steps == cold_start.RL_STEPS and zero.datasets[0].difficulty == {"digits": 4, "min_digits": 4}
    assert stage_config(CHAIN, stages["base"]).total_steps == cold_start.BASE_STEPS  # the full scale's base
    assert stage_config(CHAIN, stages["base"], quick=True).total_steps == 60


@pytest.mark.slow
def test_quick_chain_completes_with_lineage_and_a_comparison_from_its_runs(tmp_path):
    run_dir = tmp_path / "cold"
    last, state, stages = run_quick_chain("cold-start-vs-zero", run_dir)
    assert len(stages) == 4
    edges = {(e["from"], e["to"], e["as"]) for e in state["lineage"]}
    assert edges == {("base", "zero", "model.source"), ("base", "cold-start-sft", "model.source"),
                     ("cold-start-sft", "cold-start-rl", "model.source")}
    cold_config = json.loads((run_dir / stages["cold-start-rl"]["dir"] / "config.json").read_text())
    assert cold_config["model"]["source"] == str(run_dir / stages["cold-start-sft"]["artifacts"]["checkpoint"])

    comparison = json.loads((run_dir / "comparison.json").read_text())
    m = comparison["metrics"]
    assert m["target_accuracy"] == cold_start.QUICK_TARGET
    for arm, stage in (("zero", "zero"), ("cold_start", "cold-start-rl")):
        curve = cold_start.eval_curve(run_dir / stages[stage]["dir"])
        assert [s for s, _ in curve] == [0, 2, 4]  # at start and every QUICK_EVAL_INTERVAL steps
        assert m[f"{arm}_steps_to_target"] == steps_to_target(curve, m["target_accuracy"])
        assert m[f"{arm}_final_accuracy"] == curve[-1][1] and m[f"{arm}_rl_steps"] == 4
        assert m[f"{arm}_rl_cpu_min"] > 0  # the GRPO steps' time/cpu
        assert 0.0 <= m[f"{arm}_final_format_rate"] <= 1.0
    assert m["cold_start_sft_cpu_min"] > 0
    # the cold start teaches the worked form: before any RL step the cold-started model shows its steps more often
    worked = {stage: cold_start.eval_curve(run_dir / stages[stage]["dir"], "worked_ratio")[0]
              for stage in ("zero", "cold-start-rl")}
    assert worked["zero"][0] == worked["cold-start-rl"][0] == 0 and worked["cold-start-rl"][1] > worked["zero"][1]
    assert comparison["verdict"] == verdict(m)
    assert last == (
        f"cold_start_rl_steps_saved={'nan' if m['rl_steps_saved'] is None else m['rl_steps_saved']}")
