"""The distill-mini finding (DeepSeek-R1 §4.1): its chain's definition (equal RL budget, equal evaluation, every
student from its own base), the verdict, the comparison from stage evaluations, the distillation data filter,
students the chain refuses (field named, before the teacher trains), and the --quick chain end to end."""
import json
import os
from pathlib import Path

import pytest

from r1model.events import EventWriter
from r1model.train import filters
from r1model.train.chains import ChainError, check_chain, model_spec, run_chain, stage_config
from r1model.train.findings import CHAINS
from r1model.train.findings import distill_mini as dm
from r1model.train.init_model import ModelSpecError, check_spec, normalise_spec
from tests.trainer_cli import run_quick_chain

CHAIN = dm.CHAIN
STAGES = {stage.name: stage for stage in CHAIN.stages}
FAKE = {"model.source": "/somewhere/checkpoints/step-3", "datasets": "/somewhere/data.jsonl"}


def config(name: str, quick: bool = False):
    stage = STAGES[name]
    return stage_config(CHAIN, stage, quick=quick, inputs={k: v for k, v in FAKE.items() if k in stage.inputs()})


def dump(cfg) -> dict:
    data = cfg.model_dump()
    for key in ("name", "model"):
        data.pop(key)
    return data


# ------------------------------------------------------------------------------------------ definition

def test_the_chain_is_registered_valid_and_refuses_a_student_before_the_teacher_trains():
    assert CHAINS["distill-mini"] is CHAIN
    check_chain(CHAIN)
    names = [stage.name for stage in CHAIN.stages]
    assert max(names.index("qwen2-init"), names.index("llama-init")) < names.index("teacher-base")
    assert STAGES["qwen2-init"].kind == STAGES["llama-init"].kind == "model"
    assert STAGES["distill-data"].make == "accepted" and STAGES["distill-data"].source.stage == "teacher-samples"
    for student in dm.STUDENTS:
        assert STAGES[f"{student}-distill"].model.stage == STAGES[f"{student}-rl"].model.stage == f"{student}-base"
        assert STAGES[f"{student}-distill"].dataset.stage == "distill-data"
    assert STAGES["qwen2-base"].model.stage == "qwen2-init" and STAGES["builtin-base"].model is None


@pytest.mark.parametrize("quick", [False, True])
def test_each_student_gets_the_teachers_rl_budget_as_many_sft_sequences_and_the_same_evaluation(quick):
    teacher_rl = dump(config("teacher-rl", quick))
    evals = [dump(config(name, quick)) for name in STAGES if name.endswith("-eval")]
    assert len(evals) == 1 + 2 * len(dm.STUDENTS) and all(e == evals[0] for e in evals)
    assert evals[0]["evaluation"]["temperature"] == 0.0 and evals[0]["evaluation"]["benchmarks"] == ["heldout"]
    for student in dm.STUDENTS:
        rl, sft = config(f"{student}-rl", quick), config(f"{student}-distill", quick)
        assert dump(rl) == teacher_rl
        assert rl.total_steps * rl.grpo.prompts_per_step * rl.grpo.group_size == dm.rl_sequences(quick)
        assert sft.kind == "sft" and sft.total_steps * sft.supervised.batch_size == dm.rl_sequences(quick)
        base = config(f"{student}-base", quick)
        assert base.kind == "pretrain" and base.total_steps == dm.STUDENT_BASE_STEPS[quick]
        assert base.evaluation.benchmarks == ["heldout"] and base.evaluation.temperature == 0.0
    assert config("teacher-base", quick).total_steps > dm.STUDENT_BASE_STEPS[quick]
    assert config("builtin-base", quick).model.overrides["num_hidden_layers"] == 2  # smaller than the teacher's 4
    assert config("qwen2-base", quick).model.source == FAKE["model.source"]  # the model stage's folder


def test_a_model_stage_takes_the_chain_seed_and_only_its_own_sets():
    spec = model_spec(CHAIN, STAGES["llama-init"], seed=5, sets=[("llama-init:layers", 2), ("total_steps", 9)])
    assert spec["arch"] == "llama" and spec["seed"] == 5 and spec["layers"] == 2 and "total_steps" not in spec


def test_bad_model_specs_are_refused_naming_the_field(tmp_path):
    with pytest.raises(ModelSpecError, match="arch 'bert' cannot be built fresh"):
        normalise_spec({"arch": "bert"}, "stage x")
    with pytest.raises(ModelSpecError, match="hidden_size must be an integer"):
        normalise_spec({"hidden_size": 0}, "stage x")
    with pytest.raises(ModelSpecError, match="unknown field 'logits'"):
        normalise_spec({"logits": True}, "stage x")
    t5 = tmp_path / "t5"
    t5.mkdir()
    (t5 / "config.json").write_text(json.dumps({"model_type": "t5", "is_encoder_decoder": True}))
    with pytest.raises(ModelSpecError, match=r"source .*t5.*encoder-decoder, not a causal LM"):
        check_spec({"source": str(t5)}, "stage x")
    vit = tmp_path / "vit"
    vit.mkdir()
    (vit / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(ModelSpecError, match="'vit' is not a causal LM"):
        check_spec({"source": str(vit)}, "stage x")
    with pytest.raises(ModelSpecError, match="no config.json"):
        check_spec({"source": str(tmp_path / "nothing")}, "stage x")


def test_an_encoder_decoder_student_is_refused_before_any_stage_runs(tmp_path):
    t5 = tmp_path / "t5"
    t5.mkdir()
    (t5 / "config.json").write_text(json.dumps({"model_type": "t5", "is_encoder_decoder": True}))
    with pytest.raises(ChainError, match=r"stage qwen2-init: source .*encoder-decoder"):
        run_chain(CHAIN, tmp_path / "run", quick=True, sets=[("qwen2-init:source", str(t5))], install_signals=False)
    assert not (tmp_path / "run" / "stages").exists()


# ------------------------------------------------------------------------------------------ unusable students

def _bert_folder(path: Path) -> Path:
    from transformers import BertConfig, BertLMHeadModel

    from r1model.testing.fixtures import train_tokenizer

    tokenizer = train_tokenizer("qwen2", instruct=False)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64)  # is_decoder False: attends both ways
    BertLMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _word_level_folder(path: Path) -> Path:
    """A Qwen2 whose tokenizer knows a few words and maps the rest to [UNK]: it cannot write R1's text."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    from r1model.testing.fixtures import tiny_config

    vocab = {word: i for i, word in enumerate(["[UNK]", "</s>", "User", ":", "Assistant", "+", "="])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", eos_token="</s>", pad_token="</s>")
    AutoModelForCausalLM.from_config(tiny_config("qwen2", tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_a_bidirectional_student_fails_the_first_stage_naming_its_source_and_the_teacher_never_starts(tmp_path):
    pytest.importorskip("transformers")
    bert = _bert_folder(tmp_path / "bert")
    with open(os.devnull, "w") as quiet:
        code = run_chain(CHAIN, tmp_path / "run", quick=True, sets=[("qwen2-init:source", str(bert))],
                         install_signals=False, progress_stream=quiet)
    assert code == 1
    state = json.loads((tmp_path / "run" / "chain.json").read_text())
    stages = {s["name"]: s for s in state["stages"]}
    assert stages["qwen2-init"]["status"] == "failed"
    assert "source" in stages["qwen2-init"]["reason"] and "not a causal LM" in stages["qwen2-init"]["reason"]
    assert stages["teacher-base"]["status"] == "pending"


def test_a_tokenizer_that_cannot_write_the_text_is_refused_and_a_byte_level_one_is_not(tmp_path):
    pytest.importorskip("transformers")
    from r1model.train.init_model import create_model

    words = _word_level_folder(tmp_path / "words")
    with pytest.raises(ModelSpecError, match=r"source .*words.*cannot write R1's text back"):
        create_model({"source": str(words)}, tmp_path / "out-words", "stage qwen2-init")
    summary = create_model({"arch": "llama", "hidden_size": 64, "layers": 1, "seed": 3}, tmp_path / "out", "stage x")
    assert summary["model_type"] == "llama" and summary["vocab_size"] == 400 and summary["parameters"] > 0
    assert json.loads((tmp_path / "out" / "config.json").read_text())["num_hidden_layers"] == 1


# ------------------------------------------------------------------------------------------ data

def _sample(completion, status="correct", id="p1", truncated=False):
    return {"id": id, "problem": "3+4", "answer": "7", "prompt": "User: 3+4\nAssistant: ", "completion": completion,
            "status": status, "truncated": truncated}


def test_distillation_data_is_the_teachers_kept_text_once_per_problem_and_no_gold_answer(tmp_path):
    worked = "<think>3+4+0=7</think><answer>7</answer>"
    samples = [_sample(worked), _sample(worked), _sample("<think></think><answer>7</answer>"),
               _sample("<think>3+4=8</think><answer>8</answer>", status="wrong"),
               _sample("<think>3+4+0=7</think><answer>7", truncated=True),
               _sample("<answer>9</answer>", status="wrong", id="p2")]
    filters.write_jsonl(tmp_path / "rollouts.jsonl", samples)
    summary = filters.build_accepted(tmp_path / "rollouts.jsonl", tmp_path / "data.jsonl")
    rows = filters.read_jsonl(tmp_path / "data.jsonl")
    assert sorted(r["completion"] for r in rows) == sorted([worked, "<think></think><answer>7</answer>"])
    assert all(r["id"] == "p1" for r in rows)  # p2 had nothing kept and gets no gold direct answer
    assert summary["rows"] == 2 and summary["problems"] == 1 and summary["reasoning"] == 1
    assert summary["filters"]["kept"] == 3 and summary["filters"]["wrong"] == 2
    filters.write_jsonl(tmp_path / "bad.jsonl", samples[3:])
    with pytest.raises(ValueError, match="no distillation data"):
        filters.build_accepted(tmp_path / "bad.jsonl", tmp_path / "none.jsonl")


# ------------------------------------------------------------------------------------------ verdict and comparison

def metrics(teacher=0.8, **gaps):
    out = {"teacher_accuracy": teacher}
    for student in dm.STUDENTS:
        distilled, rl = gaps.get(student, (0.5, 0.2))
        out.update({f"{student}_distilled_accuracy": distilled, f"{student}_rl_accuracy": rl,
                    f"{student}_distill_minus_rl": None if distilled is None or rl is None else distilled - rl})
    return out


def test_verdict_needs_distillation_ahead_for_every_student_and_names_those_behind():
    assert dm.verdict(metrics())["outcome"] == "reproduced"
    behind = dm.verdict(metrics(llama=(0.3, 0.45), qwen2=(0.2, 0.2)))
    assert behind["outcome"] == "not reproduced" and len(behind["reasons"]) == 2
    assert behind["reasons"][0].startswith("qwen2: distillation − RL +0.000") and "ties" in behind["reasons"][0]
    assert behind["reasons"][1].startswith("llama: distillation − RL -0.150") and "RL beats" in behind["reasons"][1]
    assert dm.verdict(metrics(builtin=(0.5, None)))["outcome"] == "inconclusive"
    assert dm.verdict(metrics(teacher=0.0))["outcome"] == "inconclusive"
    assert dm.verdict(metrics(**{s: (0.1, 0.1) for s in dm.STUDENTS}))["outcome"] == "inconclusive"


def _eval_run(path: Path, accuracy: float, n: int = 10) -> None:
    path.mkdir(parents=True, exist_ok=True)
    with EventWriter(path) as events:
        events.eval(0, "heldout", "pass@1", accuracy, n)


def test_comparison_reads_each_students_evaluations_and_takes_the_smallest_gap(tmp_path):
    dirs = dict(zip((s.name for s in CHAIN.stages), CHAIN.stage_dirs()))
    scores = {"builtin": (0.2, 0.6, 0.3), "qwen2": (0.1, 0.5, 0.45), "llama": (0.0, 0.3, 0.4)}  # base, distilled, RL
    _eval_run(tmp_path / "stages" / dirs["teacher-eval"], 0.9)
    for student, (base, distilled, rl) in scores.items():
        _eval_run(tmp_path / "stages" / dirs[f"{student}-base"], base)
        _eval_run(tmp_path / "stages" / dirs[f"{student}-distilled-eval"], distilled)
        _eval_run(tmp_path / "stages" / dirs[f"{student}-rl-eval"], rl)
    comparison, line = dm.comparison(tmp_path, CHAIN)
    m = comparison["metrics"]
    assert m["teacher_accuracy"] == 0.9 and m["qwen2_base_accuracy"] == 0.1
    assert m["builtin_distill_minus_rl"] == pytest.approx(0.3) and m["llama_distill_minus_rl"] == pytest.approx(-0.1)
    assert comparison["headline"]["value"] == pytest.approx(-0.1) and line == "distill_minus_rl_min=-0.1000"
    assert comparison["verdict"]["outcome"] == "not reproduced" and comparison["verdict"] == dm.verdict(m)
    assert "Not reproduced: llama" in comparison["note"]
    assert [row[0] for row in comparison["table"]["rows"]] == ["teacher", *dm.STUDENTS]
    chart = comparison["charts"][0]
    assert {s["name"]: s["y"] for s in chart["series"]}["RL"] == [0.3, 0.45, 0.4]


# ------------------------------------------------------------------------------------------ end to end

@pytest.mark.slow
def test_quick_chain_completes_records_each_students_lineage_and_compares_every_student(tmp_path):
    run_dir = tmp_path / "distill"
    last, state, stages = run_quick_chain("distill-mini", run_dir)
    edges = {(e["from"], e["artifact"], e["to"], e["as"]) for e in state["lineage"]}
    assert ("teacher-samples", "rollouts", "distill-data", "source") in edges
    for student in dm.STUDENTS:
        assert (f"{student}-base", "checkpoint", f"{student}-distill", "model.source") in edges
        assert ("distill-data", "data", f"{student}-distill", "datasets") in edges
        assert (f"{student}-base", "checkpoint", f"{student}-rl", "model.source") in edges
        # the stage configs point where the lineage says
        sft = json.loads((run_dir / stages[f"{student}-distill"]["dir"] / "config.json").read_text())
        assert sft["model"]["source"] == str(run_dir / stages[f"{student}-base"]["artifacts"]["checkpoint"])
        assert sft["datasets"][0]["path"] == str(run_dir / stages["distill-data"]["artifacts"]["data"])
    for student, arch in dm.HF_STUDENTS.items():
        assert (f"{student}-init", "checkpoint", f"{student}-base", "model.source") in edges
        model = run_dir / stages[f"{student}-rl"]["artifacts"]["checkpoint"]
        assert json.loads((model / "config.json").read_text())["model_type"] == arch  # trained as transformers
    rows = filters.read_jsonl(run_dir / stages["distill-data"]["artifacts"]["data"])
    assert rows and all(not filters.rejection_reasons({**r, "status": "correct"}) for r in rows)
    comparison = json.loads((run_dir / "comparison.json").read_text())
    for student in dm.STUDENTS:
        for key in ("distilled_accuracy", "rl_accuracy", "base_accuracy"):
            assert 0.0 <= comparison["metrics"][f"{student}_{key}"] <= 1.0
        gap = comparison["metrics"][f"{student}_distill_minus_rl"]
        assert gap == pytest.approx(comparison["metrics"][f"{student}_distilled_accuracy"]
                                    - comparison["metrics"][f"{student}_rl_accuracy"])
        assert comparison["students"][student]["lineage"][f"{student}-distill"]["datasets"]["from"] == "distill-data"
    assert comparison["verdict"] == dm.verdict(comparison["metrics"])
    assert last.startswith("distill_minus_rl_min=")
