"""A measured base budget (config.base.probe, r1model/train/base_probe.py): probe steps, the stop rule, a base that
stops at a passing probe (and stays stopped on resume), a base that never passes pretrains to the cap at the
schedule's last learning rate; aha-mini measures its base, the chains built on its base keep a fixed one."""
import os
import shutil
from pathlib import Path

import pytest
import torch

from r1model.events import read_events
from r1model.train.base_probe import is_probe_step, passes, probe_budget
from r1model.train.checkpoint import list_checkpoints
from r1model.train.config import BaseProbe, ConfigError, validate_run_config
from r1model.train.runner import run

torch.set_num_threads(1)
SMALL_MODEL = {
    "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16, "num_hidden_layers": 2,
    "num_attention_heads": 2, "q_lora_rank": 16, "kv_lora_rank": 16, "qk_nope_head_dim": 8,
    "qk_rope_head_dim": 8, "v_head_dim": 8, "num_nextn_predict_layers": 0,
}


def small_config(probe: dict, steps: int = 6) -> dict:
    return {
        "kind": "grpo",
        "model": {"source": "tiny", "overrides": SMALL_MODEL},
        "base": {"steps": steps, "checkpoint_interval": 2, "probe": probe},
        "datasets": [{"task": "addition", "difficulty": {"digits": 2}, "eval_size": 4}],
        "template": "mini",
        "rewards": [{"name": "accuracy", "weight": 1.0}],
        "seed": 3,
        "total_steps": 1,
        "supervised": {"batch_size": 8, "warmup_steps": 1, "learning_rate": 1e-3, "min_lr_ratio": 0.1},
        "grpo": {"group_size": 2, "prompts_per_step": 2, "max_new_tokens": 8},
        "evaluation": {"temperature": 0.0},
    }


def _run(config: dict, run_dir: Path) -> list[dict]:
    code = run(validate_run_config(config), run_dir, progress_stream=open(os.devnull, "w"), install_signals=False)
    events = read_events(run_dir)
    assert code == 0, [e.get("message") for e in events if e["type"] in ("status", "log")][-3:]
    return events


def probes(events: list[dict]) -> dict[int, dict]:
    return {e["step"]: e["values"] for e in events
            if e["type"] == "metric" and e.get("phase") == "pretrain" and "probe/pass@1" in e["values"]}


def pretrain_steps(events: list[dict]) -> list[int]:
    return [e["step"] for e in events if e["type"] == "metric" and e.get("phase") == "pretrain"
            and "train/loss" in e["values"]]


def test_probe_steps_start_at_first_then_every_interval_and_include_the_cap():
    probe = BaseProbe(first=800, interval=100, extra_steps=800)
    assert probe_budget(1200, probe) == 2000 and probe_budget(1200, None) == 1200
    assert [s for s in range(1, 2001) if is_probe_step(s, 1200, probe)] == list(range(800, 2001, 100))
    at_end = BaseProbe(interval=10, extra_steps=15)  # first: null = at the schedule's end
    assert [s for s in range(1, 100) if is_probe_step(s, 30, at_end)] == [30, 40, 45]


def test_the_stop_rule_is_sampled_pass_at_1_against_min_accuracy():
    probe = BaseProbe(min_accuracy=0.2)
    assert passes({"pass@1": 0.2, "worked_ratio": 0.3}, probe)
    assert not passes({"pass@1": 0.199, "worked_ratio": 0.9}, probe)


def test_bad_probe_settings_name_the_field():
    for key, value in (("min_accuracy", 1.5), ("interval", 0), ("extra_steps", -1), ("typo", 1)):
        with pytest.raises(ConfigError, match=rf"base\.probe\.{key}"):
            validate_run_config(small_config({key: value}))


def test_a_passing_probe_stops_the_base_and_a_resume_keeps_it_stopped(tmp_path):
    run_dir = tmp_path / "run"
    events = _run(small_config({"first": 2, "interval": 2, "extra_steps": 4, "min_accuracy": 0.0,
                                "problems": 3, "samples_per_problem": 2, "max_new_tokens": 8}), run_dir)
    assert list(probes(events)) == [2] and max(pretrain_steps(events)) == 2
    assert [step for step, _ in list_checkpoints(run_dir / "base" / "checkpoints")] == [2]
    assert any(e["type"] == "log" and "base probe at step 2" in e["message"] and "stops here" in e["message"]
               for e in events)
    assert any(e["type"] == "eval" and e["step"] == 0 for e in events)  # the main job started from that base
    # lose the main job: the resumed run starts from the stopped base, it does not pretrain on
    shutil.rmtree(run_dir / "checkpoints")
    events = _run(small_config({"first": 2, "interval": 2, "extra_steps": 4, "min_accuracy": 0.0,
                                "problems": 3, "samples_per_problem": 2, "max_new_tokens": 8}), run_dir)
    assert max(pretrain_steps(events)) == 2 and events[-1]["phase"] == "done"


def test_a_base_no_probe_passes_pretrains_to_the_cap_at_the_schedules_last_rate(tmp_path):
    run_dir = tmp_path / "run"
    events = _run(small_config({"interval": 2, "extra_steps": 3, "min_accuracy": 1.0, "problems": 3,
                                "samples_per_problem": 1, "max_new_tokens": 8}, steps=4), run_dir)
    assert list(probes(events)) == [4, 6, 7]  # from the schedule's end (first: null), every 2, and the cap
    assert pretrain_steps(events) == list(range(1, 8))
    assert list_checkpoints(run_dir / "base" / "checkpoints")[-1][0] == 7
    lr = {e["step"]: e["values"]["train/lr"] for e in events
          if e["type"] == "metric" and e.get("phase") == "pretrain" and "train/lr" in e["values"]}
    assert lr[1] > lr[4] and all(lr[s] == pytest.approx(1e-4) for s in (4, 5, 6, 7))  # 0.1 × peak past the schedule


def test_aha_mini_measures_its_base_and_the_chains_on_its_base_keep_a_fixed_budget():
    from r1model.train.chains import _recipe_base
    from r1model.train.findings.weak_base import BUDGETS, CHAIN as WEAK_BASE
    from r1model.train.recipes import recipe_config

    probe = recipe_config("aha-mini").base.probe
    assert recipe_config("aha-mini").base.steps == 1200
    # stops at the cosine's end at the latest: ≤ 15 CPU-min a seed
    assert (probe.min_accuracy, probe.temperature, probe.first, probe.extra_steps) == (0.2, 1.0, 800, 0)
    assert recipe_config("aha-mini", quick=True).base.probe is not None  # the quick path probes too
    base = _recipe_base("aha-mini")(False)  # long2short's, weak-base's and the findings' base stage
    assert base["kind"] == "pretrain" and base["total_steps"] == 1200 and "probe" not in base
    assert validate_run_config(base).base.probe is None
    stage = next(s for s in WEAK_BASE.stages if s.name == "base")
    assert dict(stage.sets)["total_steps"] == BUDGETS[-1]  # a fixed budget of its own: no probe
    # a stage that starts aha-mini's GRPO from a checkpoint runs no base, probed or not
    assert recipe_config("aha-mini", model="/some/checkpoint").base.steps == 0
