"""Chains of recipes (r1model.train.chains) and the SFT-data filters (r1model.train.filters).

Golden cases for the rejection filters and the ~3:1 mix; the r1-mini chain end to end through the CLI at
--quick sizes on 1-digit sums (every stage completed, lineage and comparison written); a chain whose second
stage dies after its first checkpoint, resumed: the first stage is not re-run, the second resumes from its own
checkpoint, the chain completes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from r1model.__main__ import main
from r1model.train import filters
from r1model.train.chains import CHAINS, R1_MINI, Chain, ChainError, From, Stage, check_chain, run_chain, stage_config
from tests.trainer_cli import chain_state, run_quick_chain

ROOT = Path(__file__).resolve().parents[2]


def sample(completion, status="correct", truncated=False, id="p1", **extra):
    return {"id": id, "problem": "3+4", "answer": "7", "prompt": "User: 3+4\nAssistant: ",
            "completion": completion, "status": status, "truncated": truncated, **extra}


CLEAN = "<think>3+4+0=7</think><answer>7</answer>"


# ------------------------------------------------------------------------------------------ golden filters

def test_a_correct_worked_sample_is_kept():
    assert filters.rejection_reasons(sample(CLEAN)) == []
    assert filters.is_reasoning(sample(CLEAN))
    assert not filters.is_reasoning(sample("<think></think><answer>7</answer>"))


def test_a_correct_but_language_mixed_sample_is_rejected():
    mixed = sample("<think>3 plus 4 is seven 是 7</think><answer>7</answer>")  # 3 of 4 words English
    assert filters.rejection_reasons(mixed) == ["mixed"]
    # a threshold below 1 lets a mostly-English think through
    assert filters.rejection_reasons(mixed, min_language=0.7) == []
    assert filters.rejection_reasons(sample("<think>所以 答案 是 7</think><answer>7</answer>"), min_language=0.7) == ["mixed"]


def test_a_truncated_sample_is_rejected_even_if_marked_correct():
    cut = sample("<think>3+4+0=7</think><answer>7", truncated=True)
    assert "truncated" in filters.rejection_reasons(cut)
    assert "truncated" in filters.rejection_reasons(sample(CLEAN, truncated=True))


def test_a_repetitive_sample_is_rejected():
    loop = sample("<think>" + "\n".join(["3+4+0=7"] * 8) + "</think><answer>7</answer>")
    assert filters.rejection_reasons(loop) == ["repetitive"]


def test_wrong_and_malformed_samples_are_rejected():
    assert filters.rejection_reasons(sample("<think>3+4+0=8</think><answer>8</answer>", status="wrong")) == ["wrong"]
    assert "malformed" in filters.rejection_reasons(sample("the answer is <answer>7</answer>"))
    # a trace event says `correct` instead of `status`
    assert filters.rejection_reasons({"completion": CLEAN, "correct": True, "truncated": False}) == []
    assert filters.rejection_reasons({"completion": CLEAN, "correct": None}) == ["wrong"]


def test_the_most_readable_sample_per_problem_is_the_shortest_worked_one():
    pool = [sample("<think></think><answer>7</answer>"),
            sample("<think>4+3+0=7 so 7</think><answer>7</answer>"),
            sample(CLEAN),
            sample(CLEAN),  # the same text twice counts once
            sample("<think>3 plus 4 所以 7</think><answer>7</answer>"),
            sample("<think>x</think><answer>8</answer>", status="wrong"),
            sample("<think>9+0+0=9</think><answer>9</answer>", id="p2", problem="9+0", answer="9")]
    chosen = filters.select_readable(pool, per_problem=2)
    assert [s["completion"] for s in chosen] == [CLEAN, "<think>4+3+0=7 so 7</think><answer>7</answer>",
                                               "<think>9+0+0=9</think><answer>9</answer>"]


@pytest.mark.parametrize("n_reasoning, n_plain, expected", [
    (30, 20, (30, 10)),  # plenty of direct answers: all reasoning, a third as many plain
    (30, 5, (15, 5)),  # few direct answers: reasoning cut to 3 × them
    (31, 40, (31, 10)),
    (6, 0, (6, 0)),  # none at all: the ratio cannot be kept, reasoning alone
    (0, 10, (0, 0)),
])
def test_the_mix_keeps_about_three_reasoning_samples_per_direct_answer(n_reasoning, n_plain, expected):
    reasoning = [sample(CLEAN, id=f"r{i}") for i in range(n_reasoning)]
    plain = [sample("<think></think><answer>7</answer>", id=f"d{i}") for i in range(n_plain)]
    mixed = filters.mix_reasoning(reasoning, plain, seed=1)
    counts = (sum(filters.is_reasoning(s) for s in mixed), sum(not filters.is_reasoning(s) for s in mixed))
    assert counts == expected
    assert len({s["id"] for s in mixed}) == len(mixed)  # each sample once


def test_sft_data_from_rollouts_mixes_kept_samples_with_direct_answers(tmp_path):
    rollouts = tmp_path / "rollouts.jsonl"
    pool = []
    for i in range(12):
        pool.append(sample(f"<think>{i}+4+0={i + 4}</think><answer>{i + 4}</answer>", id=f"p{i}", problem=f"{i}+4",
                           answer=str(i + 4)))
        pool.append(sample(f"<think>{i} plus 4 是 {i + 4}</think><answer>{i + 4}</answer>", id=f"p{i}"))
        pool.append(sample(f"<think>{i}+4</think><answer>{i + 5}</answer>", status="wrong", id=f"p{i}"))
    rollouts.write_text("".join(json.dumps(s) + "\n" for s in pool))
    summary = filters.build_sft_data(rollouts, tmp_path / "sft.jsonl")
    rows = filters.read_jsonl(tmp_path / "sft.jsonl")
    assert summary["reasoning"] == 12 and summary["non_reasoning"] == 4 and len(rows) == 16
    assert summary["filters"] == {"total": 36, "kept": 12, "mixed": 12, "wrong": 12}
    assert all(set(r) >= {"prompt", "completion", "problem", "answer"} for r in rows)
    assert not any("是" in r["completion"] for r in rows)
    direct = [r for r in rows if "<think></think>" in r["completion"]]
    assert all(r["completion"] == f"<think></think><answer>{r['answer']}</answer>" for r in direct)

    summary = filters.build_cold_start(rollouts, tmp_path / "cold.jsonl")
    cold = filters.read_jsonl(tmp_path / "cold.jsonl")
    assert summary["rows"] == len(cold) == 12 and all(filters.is_reasoning(r) for r in cold)

    rollouts.write_text(json.dumps(sample(CLEAN, status="wrong")) + "\n")
    with pytest.raises(ValueError, match="no cold-start data"):
        filters.build_cold_start(rollouts, tmp_path / "none.jsonl")


# ------------------------------------------------------------------------------------------ definitions

def test_definitions_import_without_torch():
    script = ("import sys, r1model.train.chains, r1model.train.filters; "
              "print(any(m == 'torch' or m.startswith('torch.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_r1_mini_is_a_valid_chain_whose_inputs_come_from_earlier_stages():
    check_chain(R1_MINI)
    names = [s.name for s in R1_MINI.stages]
    assert names[0] == "base" and names[-3:] == ["final-rl", "eval-zero", "eval-r1-mini"]
    assert R1_MINI.compare == ("eval-zero", "eval-r1-mini")
    by_name = {s.name: s for s in R1_MINI.stages}
    assert by_name["eval-zero"].model == From("zero") and by_name["eval-r1-mini"].model == From("final-rl")
    assert by_name["cold-start-sft"].model == From("base") and by_name["sft"].model == From("base")
    assert by_name["sft"].dataset == From("sft-data", "data")
    bad = Chain("bad", "", (Stage("a", recipe="r1-zero", model=From("b")), Stage("b", recipe="r1-zero")))
    with pytest.raises(ChainError, match="not an earlier stage"):
        check_chain(bad)


def test_stage_config_takes_inputs_last_and_stage_prefixed_sets_only_for_that_stage(tmp_path):
    stage = next(s for s in R1_MINI.stages if s.name == "reasoning-rl")
    sets = [("grpo.beta", 0.0), ("reasoning-rl:total_steps", 7), ("zero:total_steps", 9), ("model.source", "tiny")]
    config = stage_config(R1_MINI, stage, quick=True, seed=3, sets=sets, inputs={"model.source": str(tmp_path)})
    assert config.model.source == str(tmp_path) and config.base.steps == 0  # a checkpoint: no base pretraining
    assert config.total_steps == 7 and config.grpo.beta == 0.0 and config.seed == 3
    assert {r.name for r in config.rewards} == {"accuracy", "format", "language"}
    sft = next(s for s in R1_MINI.stages if s.name == "sft")
    config = stage_config(R1_MINI, sft, quick=True, inputs={"model.source": "m", "datasets": "d.jsonl"})
    assert config.kind == "sft" and [d.path for d in config.datasets] == ["d.jsonl"]
    base = stage_config(R1_MINI, R1_MINI.stages[0], quick=True, sets=[("base:total_steps", 11)])
    assert base.kind == "pretrain" and base.total_steps == 11  # the user's set wins over the quick scale
    assert base.datasets[0].difficulty == {"digits": 1}  # the chain's quick scale
    full = stage_config(R1_MINI, R1_MINI.stages[0])
    assert full.total_steps == 400 and full.model.source == "tiny-bpe" and full.supervised.worked_fraction == 1.0
    assert full.datasets[0].difficulty == {"digits": 2, "min_digits": 2, "language": "en+zh", "code_switch": 0.3}


def test_r1_mini_full_scale_gives_zero_and_r1_mini_the_same_rl_steps_and_quick_keeps_its_own():
    by_name = {s.name: s for s in R1_MINI.stages}

    def config(name, quick=False, sets=()):
        stage = by_name[name]
        inputs = {"model.source": "m"} if stage.model else {}
        inputs |= {"datasets": "d.jsonl"} if stage.dataset else {}
        return stage_config(R1_MINI, stage, quick=quick, seed=0, sets=sets, inputs=inputs)

    zero, reasoning, final = config("zero"), config("reasoning-rl"), config("final-rl")
    assert zero.total_steps == reasoning.total_steps + final.total_steps == 60
    for rl in (zero, reasoning, final):
        assert (rl.grpo.group_size, rl.grpo.prompts_per_step, rl.grpo.beta, rl.sampling.max_new_tokens) == (8, 16, 0.0, 64)
        assert rl.datasets[0].difficulty["language"] == "en+zh"
    samples = config("zero-samples")
    assert samples.total_steps * samples.grpo.prompts_per_step * samples.grpo.group_size == 1024
    assert config("sft").supervised.learning_rate == config("cold-start-sft").supervised.learning_rate == 3e-4
    assert config("eval-zero").evaluation.samples_per_problem == 4 and config("eval-zero").datasets[0].eval_size == 200
    # --quick keeps the quick scale (the full sets are not applied), and a user's stage set wins over the full one
    assert config("zero", quick=True).total_steps == 2 and config("base", quick=True).model.source == "tiny"
    assert config("zero", sets=[("zero:total_steps", 5)]).total_steps == 5


def test_resuming_with_other_options_is_refused(tmp_path):
    (tmp_path / "chain.json").write_text(json.dumps({"chain": "r1-mini", "options": {"quick": True, "seed": None,
                                                                                    "sets": []}}))
    with pytest.raises(ChainError, match="same options"):
        run_chain("r1-mini", tmp_path, quick=False)
    with pytest.raises(ChainError, match="no stage 'nope'"):
        run_chain("r1-mini", tmp_path / "other", sets=[("nope:total_steps", 1)])


def test_a_chain_directory_from_before_the_chain_gained_stages_resumes_with_them_pending(tmp_path):
    from r1model.train.chains import _State, chain_plan

    options = {"quick": True, "seed": None, "sets": []}
    old = chain_plan(R1_MINI)["stages"][:10]  # r1-mini before eval-zero / eval-r1-mini
    for entry in old:
        entry.update(status="completed", reason=None, artifacts={"checkpoint": "x"}, attempts=1)
    (tmp_path / "chain.json").write_text(json.dumps({"chain": "r1-mini", "options": options, "status": "completed",
                                                     "stages": old, "compare": ["zero", "final-rl"], "lineage": []}))
    state = _State(R1_MINI, tmp_path, options)
    stored = json.loads((tmp_path / "chain.json").read_text())
    assert [e["name"] for e in stored["stages"]] == [s.name for s in R1_MINI.stages]
    assert [e["status"] for e in stored["stages"][-3:]] == ["completed", "pending", "pending"]
    assert stored["status"] == "pending" and stored["compare"] == ["eval-zero", "eval-r1-mini"]
    assert state.stage(11)["name"] == "eval-r1-mini"
    # stages that differ other than by new ones at the end are refused, naming both lists
    other = tmp_path / "other"
    other.mkdir()
    renamed = [{**e, "name": "old-" + e["name"]} if e["name"] == "sft" else e for e in old]
    (other / "chain.json").write_text(json.dumps({"chain": "r1-mini", "options": options, "stages": renamed}))
    with pytest.raises(ChainError, match="old-sft.*use another --run-dir"):
        _State(R1_MINI, other, options)


def test_cli_lists_and_shows_chains(capsys):
    assert main(["recipe", "list"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("r1-mini"))
    assert "[chain: base → zero → " in line
    assert main(["recipe", "show", "r1-mini"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [s["dir"] for s in plan["stages"]][:2] == ["stages/01-base", "stages/02-zero"]
    assert plan["stages"][1]["inputs"] == {"model.source": {"stage": "base", "artifact": "checkpoint"}}
    assert main(["recipe", "run", "r1-mini", "--run-dir", "x", "--model", "m"]) == 2
    assert "is a chain" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ running

@pytest.mark.slow
def test_r1_mini_quick_runs_every_stage_and_records_lineage(tmp_path):
    run_dir = tmp_path / "r1-mini"
    last, state, stages = run_quick_chain("r1-mini", run_dir)
    assert len(stages) == len(R1_MINI.stages)
    for name in ("base", "zero", "cold-start-sft", "reasoning-rl", "sft", "final-rl"):
        checkpoint = run_dir / stages[name]["artifacts"]["checkpoint"]
        assert (checkpoint / "model.safetensors").is_file()
        assert json.loads((run_dir / stages[name]["dir"] / "config.json").read_text())["name"] == f"r1-mini:{name}"
    edges = {(e["from"], e["artifact"], e["to"], e["as"]) for e in state["lineage"]}
    assert ("base", "checkpoint", "zero", "model.source") in edges
    assert ("zero-samples", "rollouts", "cold-start-data", "source") in edges
    assert ("cold-start-data", "data", "cold-start-sft", "datasets") in edges
    assert ("base", "checkpoint", "sft", "model.source") in edges
    assert ("sft-data", "data", "sft", "datasets") in edges
    assert ("sft", "checkpoint", "final-rl", "model.source") in edges
    # each stage's config points at what the lineage says
    sft_config = json.loads((run_dir / stages["sft"]["dir"] / "config.json").read_text())
    assert sft_config["model"]["source"] == str(run_dir / stages["base"]["artifacts"]["checkpoint"])
    assert sft_config["datasets"][0]["path"] == str(run_dir / stages["sft-data"]["artifacts"]["data"])
    # the rejection-sampled data passed the filters and mixes ~3:1
    rows = filters.read_jsonl(run_dir / stages["sft-data"]["artifacts"]["data"])
    assert rows and all(not filters.rejection_reasons({**r, "status": "correct"}) for r in rows)
    summary = stages["sft-data"]["summary"]
    assert summary["reasoning"] + summary["non_reasoning"] == len(rows)
    assert summary["non_reasoning"] <= round(summary["reasoning"] / 3)
    comparison = json.loads((run_dir / "comparison.json").read_text())
    assert comparison["baseline"]["stage"] == "eval-zero" and comparison["final"]["stage"] == "eval-r1-mini"
    for side in ("baseline", "final"):
        assert 0.0 <= comparison[side]["accuracy"] <= 1.0 and comparison[side]["format_rate"] is not None
        assert comparison[side]["mixing_rate"] == 0.0  # the char tokenizer writes ASCII only
    assert "'char'" in comparison["note"]  # the tokenizer of the model the final evaluation ran
    diff = comparison["difference"]["accuracy"]
    assert diff == pytest.approx(comparison["final"]["accuracy"] - comparison["baseline"]["accuracy"])
    assert f"r1_mini_minus_zero_accuracy={diff:.4f}" == last


@pytest.mark.slow
def test_a_chain_whose_second_stage_died_resumes_from_that_stage(tmp_path, monkeypatch):
    from r1model.train.grpo_trainer import GRPOTrainer

    real_step, calls = GRPOTrainer.step, []

    def dies_once_at_step_2(self, step):
        calls.append((self.ctx.config.name, step))
        if step == 2 and self.ctx.config.name == "r1-mini:zero" and not hasattr(dies_once_at_step_2, "done"):
            dies_once_at_step_2.done = True
            raise RuntimeError("injected fault: worker lost")
        return real_step(self, step)

    monkeypatch.setattr(GRPOTrainer, "step", dies_once_at_step_2)
    from r1model.train.recipes import parse_set

    sets = [parse_set("zero:checkpoint_interval=1")]
    run_dir = tmp_path / "chain"
    log = open(os.devnull, "w")
    assert run_chain("r1-mini", run_dir, quick=True, sets=sets, progress_stream=log, install_signals=False) == 1
    state = chain_state(run_dir)
    base, zero = state["stages"][0], state["stages"][1]
    assert state["status"] == "failed" and "zero" in state["reason"] and "injected fault" in state["reason"]
    assert base["status"] == "completed" and zero["status"] == "failed" and "injected fault" in zero["reason"]
    assert all(s["status"] == "pending" for s in state["stages"][2:])
    base_events = run_dir / base["dir"] / "events.jsonl"
    before = (base_events.read_bytes(), base_events.stat().st_mtime_ns)
    assert (run_dir / zero["dir"] / "checkpoints" / "step-1").is_dir()

    calls.clear()
    assert run_chain("r1-mini", run_dir, quick=True, sets=sets, progress_stream=log, install_signals=False) == 0
    state = chain_state(run_dir)
    assert state["status"] == "completed" and all(s["status"] == "completed" for s in state["stages"])
    assert (base_events.read_bytes(), base_events.stat().st_mtime_ns) == before  # the base was not re-run
    assert state["stages"][0]["attempts"] == 1 and state["stages"][1]["attempts"] == 2
    assert ("r1-mini:zero", 1) not in calls and ("r1-mini:zero", 2) in calls  # resumed after step 1
    from r1model.events import read_events

    statuses = read_events(run_dir / zero["dir"], types=("status",))
    assert any(s["phase"] == "starting" and "resuming from" in s["message"] and "step-1" in s["message"]
               for s in statuses)
    assert statuses[-1]["phase"] == "done"
    assert (run_dir / "comparison.json").is_file()



def test_failed_stage_reason_resume_and_a_missing_artifact_rebuilt(tmp_path, monkeypatch):
    """The resume rules without training: a fake run stage writes rollouts.jsonl, a data stage filters them."""
    import r1model.train.chains as chains

    runs = []
    pool = {"status": "wrong"}

    def fake_run_stage(chain, stage, stage_dir, *args):
        runs.append(stage.name)
        stage_dir.mkdir(parents=True, exist_ok=True)
        rows = [sample(CLEAN, id=f"p{i}", status=pool["status"]) for i in range(6)]
        (stage_dir / "rollouts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return "completed", None

    monkeypatch.setattr(chains, "_run_stage", fake_run_stage)
    chain = Chain("two", "", (Stage("samples", recipe="rejection-sampling"),
                              Stage("cold", make="cold-start", source=From("samples", "rollouts"))))
    run_dir, log = tmp_path / "c", open(os.devnull, "w")
    assert run_chain(chain, run_dir, progress_stream=log) == 1
    state = chain_state(run_dir)
    assert state["status"] == "failed" and state["reason"].startswith("stage 2/2 cold failed: ")
    assert "no cold-start data" in state["stages"][1]["reason"] and state["stages"][0]["status"] == "completed"
    assert state["stages"][0]["artifacts"] == {"rollouts": "stages/01-samples/rollouts.jsonl"}

    (run_dir / "stages/01-samples/rollouts.jsonl").write_text(json.dumps(sample(CLEAN)) + "\n")  # fixed by hand
    assert run_chain(chain, run_dir, progress_stream=log) == 0
    state = chain_state(run_dir)
    assert runs == ["samples"] and state["status"] == "completed"  # the first stage was reused
    assert state["stages"][1]["attempts"] == 2 and state["stages"][1]["summary"]["rows"] == 1
    assert state["lineage"] == [{"from": "samples", "artifact": "rollouts", "to": "cold", "as": "source",
                                 "path": "stages/01-samples/rollouts.jsonl"}]

    (run_dir / "stages/01-samples/rollouts.jsonl").unlink()  # a later stage's input is gone: re-run the stage
    pool["status"] = "correct"
    assert run_chain(chain, run_dir, progress_stream=log) == 0
    state = chain_state(run_dir)
    assert runs == ["samples", "samples"] and state["status"] == "completed"
    assert state["stages"][1]["attempts"] == 3 and state["stages"][1]["summary"]["rows"] == 6  # rebuilt from new samples
