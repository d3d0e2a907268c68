"""distill-mini: DeepSeek-R1 §4.1 in miniature — distilling a strong reasoner into small dense students beats
running the same RL directly on those students.

    python -m r1model recipe run distill-mini --run-dir DIR [--quick] [--seed N]

Teacher: the built-in `tiny` model (4 layers, MTP off) pretrained on 2-digit sums (70% worked solutions), then Zero
RL (aha-mini's GRPO: accuracy + format), then rejection sampling (T 0.6, top-p 0.95); the data stage keeps its
accepted samples with r1model.train.filters.build_accepted (correct, well-formed, unmixed, untruncated, not
repetitive; the teacher's own text, no gold answers added).

Students (STUDENTS), each with a short pretraining of its own on the same corpus, so both routes start from the
same base: the built-in model at 2 layers (the `distill` recipe's student), a transformers Qwen2 and a
transformers Llama of about its size (written fresh by a model stage, r1model.train.init_model). From its base,
each student is (a) distilled: SFT on the teacher's accepted samples, and (b) RL'd: the teacher's GRPO config,
same steps, prompts and G. SFT sees as many sequences as the RL samples (steps × prompts × G). The teacher and
every student are evaluated alike (greedy, held-out problems, same length limit).

Distillation here is SFT on text, so a student's vocabulary may differ from the teacher's (the Qwen2 and Llama
students have their own byte-level BPE; the teacher the character tokenizer); logits are never matched. What
cannot work is refused naming the field: a student model stage whose `arch` cannot be built, or whose `source`
folder is not a decoder-only causal LM, has a tokenizer without EOS or one that cannot write R1's text back
(`--set qwen2-init:source=FOLDER` swaps in another student; r1model.train.init_model).

comparison.json: the general shape (r1model.train.chains); metrics per student `<s>_distilled_accuracy`,
`<s>_rl_accuracy`, `<s>_distill_minus_rl`, `<s>_base_accuracy`, and `teacher_accuracy`; the headline is the
smallest distill − RL gap over the students.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from r1model.train.chains import Chain, From, Stage, _eval_values

STUDENTS = ("builtin", "qwen2", "llama")
HF_STUDENTS = {"qwen2": "qwen2", "llama": "llama"}  # student -> transformers arch
BENCHMARK = "heldout"

# full scale / --quick
DIGITS = {False: 2, True: 1}
TEACHER_BASE_STEPS = {False: 300, True: 60}
STUDENT_BASE_STEPS = {False: 80, True: 4}
BASE_BATCH = {False: 64, True: 16}
RL = {False: {"total_steps": 30, "prompts_per_step": 16, "group_size": 8},
      True: {"total_steps": 2, "prompts_per_step": 4, "group_size": 4}}
SFT_BATCH = {False: 32, True: 8}
SAMPLES = {False: {"total_steps": 6, "prompts_per_step": 32, "group_size": 8},
           True: {"total_steps": 2, "prompts_per_step": 8, "group_size": 8}}
MAX_NEW_TOKENS = {False: 48, True: 40}
EVAL_SIZE = {False: 200, True: 4}
HF_SIZE = {"hidden_size": 128, "layers": 3, "head_dim": 32}  # ~0.5 M parameters; the built-in student ~0.6 M

_TINY = {"source": "tiny", "overrides": {"num_nextn_predict_layers": 0}}
_BUILTIN_STUDENT = {"source": "tiny", "overrides": {"num_hidden_layers": 2, "num_nextn_predict_layers": 0}}


def _common(quick: bool, kind: str, name: str) -> dict:
    return {
        "kind": kind, "name": name, "model": dict(_TINY),
        "datasets": [{"task": "addition", "difficulty": {"digits": DIGITS[quick], "min_digits": DIGITS[quick]},
                      "eval_size": EVAL_SIZE[quick]}],
        "template": "mini", "prompt_format": "plain", "threads": 1, "checkpoint_interval": 0, "keep_checkpoints": 1,
        "evaluation": {"benchmarks": [], "at_start": False},
    }


def _eval_settings(quick: bool) -> dict:
    """Every model evaluated alike: greedy on the held-out problems, the same length limit."""
    return {"interval": 0, "at_start": False, "benchmarks": [BENCHMARK], "samples_per_problem": 1,
            "temperature": 0.0, "top_p": 1.0, "max_new_tokens": MAX_NEW_TOKENS[quick]}


def _pretrain(steps: dict, model: dict, evaluate: bool):
    def build(quick: bool) -> dict:
        config = _common(quick, "pretrain", "base")
        config.update(model=dict(model), total_steps=steps[quick], supervised={
            "batch_size": BASE_BATCH[quick], "learning_rate": 3e-3, "lr_schedule": "cosine",
            "warmup_steps": 5 if quick else 50, "worked_fraction": 0.7,
            "completion_only_loss": True, "max_seq_len": 128})
        if evaluate:  # the student's base, evaluated as the distilled and RL'd students are
            config["evaluation"] = {**_eval_settings(quick), "at_start": False}
        return config
    return build


def _group_job(quick: bool, kind: str, name: str, sizes: dict, format_weight: float, **grpo) -> dict:
    """A job sampling groups (GRPO or rollout) at `sizes[quick]` (total_steps, prompts_per_step, group_size), with
    accuracy + format_weight × format rewards and the other `grpo` settings."""
    size = sizes[quick]
    config = _common(quick, kind, name)
    config.update(
        total_steps=size["total_steps"],
        rewards=[{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": format_weight}],
        grpo={"group_size": size["group_size"], "prompts_per_step": size["prompts_per_step"], **grpo})
    return config


def _zero_rl(quick: bool) -> dict:
    """aha-mini's GRPO (accuracy + 0.1 format, β 0, lr 1e-4, T 1): the teacher's RL and each student's."""
    config = _group_job(quick, "grpo", "zero-rl", RL, 0.1, learning_rate=1e-4, lr_schedule="constant", beta=0.0,
                        num_iterations=1, minibatches=1, temperature=1.0, max_new_tokens=MAX_NEW_TOKENS[quick],
                        loss_aggregation="grpo")
    config["traces_per_step"] = 1
    return config


def rl_sequences(quick: bool) -> int:
    return RL[quick]["total_steps"] * RL[quick]["prompts_per_step"] * RL[quick]["group_size"]


def _rejection_sampling(quick: bool) -> dict:
    return _group_job(quick, "rollout", "teacher-samples", SAMPLES, 0.5, temperature=0.6, top_p=0.95,
                      max_new_tokens=MAX_NEW_TOKENS[quick])


def _distill(quick: bool) -> dict:
    """SFT of a student on the teacher's accepted samples: as many sequences as the RL samples."""
    config = _common(quick, "sft", "distill")
    config.update(total_steps=rl_sequences(quick) // SFT_BATCH[quick], supervised={
        "batch_size": SFT_BATCH[quick], "learning_rate": 1e-3, "lr_schedule": "cosine",
        "warmup_steps": 1 if quick else 10, "worked_fraction": 0.0, "completion_only_loss": True, "max_seq_len": 128})
    return config


def _evaluate(quick: bool) -> dict:
    config = _common(quick, "evaluate", "evaluate")
    config.update(total_steps=0, evaluation={**_eval_settings(quick), "at_start": True})
    return config


def _hf_student(arch: str):
    def spec(quick: bool) -> dict:
        return {"arch": arch, **HF_SIZE, "init_std": 0.02}
    return spec


def student_stages(student: str) -> tuple[Stage, ...]:
    """A student's route: (its model,) its base, distillation, RL, and the two evaluations."""
    stages: list[Stage] = []
    if student in HF_STUDENTS:
        stages.append(Stage(f"{student}-init", f"a fresh transformers {HF_STUDENTS[student]} of about the built-in "
                            "student's size (byte-level BPE of its own)", init=_hf_student(HF_STUDENTS[student])))
        base = Stage(f"{student}-base", f"the {student} student's short pretraining",
                     build=_pretrain(STUDENT_BASE_STEPS, {"source": "tiny"}, evaluate=True),
                     model=From(f"{student}-init"))
    else:
        base = Stage(f"{student}-base", "the built-in student (2 layers, the distill recipe's) pretrained briefly",
                     build=_pretrain(STUDENT_BASE_STEPS, _BUILTIN_STUDENT, evaluate=True))
    stages += [
        base,
        Stage(f"{student}-distill", f"distil: SFT of the {student} base on the teacher's accepted samples",
              build=_distill, model=From(f"{student}-base"), dataset=From("distill-data", "data")),
        Stage(f"{student}-rl", f"RL on the {student} base: the teacher's GRPO, same budget", build=_zero_rl,
              model=From(f"{student}-base")),
        Stage(f"{student}-distilled-eval", f"evaluate the distilled {student}", build=_evaluate,
              model=From(f"{student}-distill")),
        Stage(f"{student}-rl-eval", f"evaluate the RL'd {student}", build=_evaluate, model=From(f"{student}-rl")),
    ]
    return tuple(stages)


# the HF students' model stages come first, so a student the chain cannot use stops it before the teacher trains
_INITS = tuple(s for student in STUDENTS for s in student_stages(student) if s.init is not None)
_TEACHER = (
    Stage("teacher-base", "pretrain the tiny preset (4 layers) on addition", build=_pretrain(TEACHER_BASE_STEPS, _TINY,
                                                                                                evaluate=False)),
    Stage("teacher-rl", "the teacher: Zero RL (GRPO, accuracy + format) on its base", build=_zero_rl,
          model=From("teacher-base")),
    Stage("teacher-samples", "rejection sampling of the teacher (T 0.6, top-p 0.95)", build=_rejection_sampling,
          model=From("teacher-rl")),
    Stage("distill-data", "the teacher's accepted samples (rejection filters)", make="accepted",
          source=From("teacher-samples", "rollouts")),
    Stage("teacher-eval", "evaluate the teacher", build=_evaluate, model=From("teacher-rl")),
)
_STUDENT_ROUTES = tuple(s for student in STUDENTS for s in student_stages(student) if s.init is None)


# ---------------------------------------------------------------------------------------------- verdict

RULE = ("Reproduced when, for every student architecture (built-in, Qwen2, Llama), the student distilled from the "
        "teacher scores a higher held-out accuracy than the same student after the teacher's RL; a teacher that "
        "solves nothing, a missing evaluation or identical scores everywhere is inconclusive.")


def verdict(metrics: dict) -> dict:
    """R1 §4.1's claim on flat metrics (one seed's or the seeds' means), by RULE."""
    out: dict[str, Any] = {"outcome": "inconclusive", "reasons": [], "rule": RULE}
    missing = [s for s in STUDENTS if metrics.get(f"{s}_distill_minus_rl") is None]
    if missing:
        return {**out, "reasons": [f"{s}: distilled or RL'd accuracy missing" for s in missing]}
    teacher = metrics.get("teacher_accuracy")
    if teacher is not None and teacher <= 0:
        return {**out, "reasons": ["the teacher solves none of the held-out problems: nothing to distil"]}
    gaps = {s: metrics[f"{s}_distill_minus_rl"] for s in STUDENTS}
    if all(gap == 0 for gap in gaps.values()):
        return {**out, "reasons": ["distillation and RL score the same for every student"]}

    def line(s: str) -> str:
        d, r = metrics.get(f"{s}_distilled_accuracy"), metrics.get(f"{s}_rl_accuracy")
        scores = f" (distilled {d:.3f}, RL {r:.3f})" if d is not None and r is not None else ""
        return f"{s}: distillation − RL {gaps[s]:+.3f}{scores}"

    behind = [s for s in STUDENTS if gaps[s] <= 0]
    if behind:
        return {**out, "outcome": "not reproduced",
                "reasons": [f"{line(s)}: RL {'beats' if gaps[s] < 0 else 'ties'} distillation" for s in behind]}
    return {**out, "outcome": "reproduced", "reasons": [line(s) for s in STUDENTS]}


# ---------------------------------------------------------------------------------------------- comparison

def _stage_dirs(root: Path, chain: Chain) -> dict[str, Path]:
    return {stage.name: root / "stages" / d for stage, d in zip(chain.stages, chain.stage_dirs())}


def _parameters(folder: Path) -> int | None:
    """Parameters in a checkpoint's model.safetensors, read from its header (no torch)."""
    path = folder / "model.safetensors"
    try:
        with path.open("rb") as handle:
            header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
    except (OSError, ValueError):
        return None
    total = 0
    for name, entry in header.items():
        if name != "__metadata__":
            count = 1
            for size in entry["shape"]:
                count *= size
            total += count
    return total


def _model_info(stage_dir: Path) -> dict:
    """model_type, vocabulary and parameters of a run stage's checkpoint."""
    info: dict[str, Any] = {"model_type": None, "vocab_size": None, "parameters": None}
    for folder in sorted((stage_dir / "checkpoints").glob("step-*"))[-1:]:
        config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
        info.update(model_type=config.get("model_type"), vocab_size=config.get("vocab_size"),
                    parameters=_parameters(folder))
    return info


def _lineage(root: Path, student: str) -> dict:
    """Which stage's artifact each of the student's stages took (chain.json's lineage)."""
    state_path = root / "chain.json"
    links = json.loads(state_path.read_text()).get("lineage", []) if state_path.is_file() else []
    out: dict[str, dict] = {}
    for link in links:
        if link.get("to", "").startswith(f"{student}-"):
            out.setdefault(link["to"], {})[link["as"]] = {"from": link["from"], "artifact": link["artifact"]}
    return out


def comparison(root: Path, chain: Chain) -> tuple[dict, str]:
    """comparison.json (general shape, r1model.train.chains) and the closing name=value line."""
    dirs = _stage_dirs(root, chain)
    quick = bool(json.loads((root / "chain.json").read_text()).get("options", {}).get("quick")) \
        if (root / "chain.json").is_file() else False
    teacher = _eval_values(dirs["teacher-eval"], BENCHMARK)
    metrics: dict[str, float | None] = {"teacher_accuracy": teacher["accuracy"]}
    info = _model_info(dirs["teacher-rl"])  # the teacher is RL'd: its accuracy goes in the RL column
    rows: list[list] = [["teacher", info["model_type"], info["parameters"], info["vocab_size"], None, None,
                         teacher["accuracy"], None]]
    students: dict[str, dict] = {}
    for s in STUDENTS:
        distilled = _eval_values(dirs[f"{s}-distilled-eval"], BENCHMARK)["accuracy"]
        rl = _eval_values(dirs[f"{s}-rl-eval"], BENCHMARK)["accuracy"]
        base = _eval_values(dirs[f"{s}-base"], BENCHMARK)["accuracy"]
        gap = None if distilled is None or rl is None else distilled - rl
        metrics.update({f"{s}_distilled_accuracy": distilled, f"{s}_rl_accuracy": rl, f"{s}_distill_minus_rl": gap,
                        f"{s}_base_accuracy": base})
        info = _model_info(dirs[f"{s}-base"])
        students[s] = {**info, "base_accuracy": base, "distilled_accuracy": distilled, "rl_accuracy": rl,
                       "distill_minus_rl": gap, "lineage": _lineage(root, s)}
        rows.append([s, info["model_type"], info["parameters"], info["vocab_size"], base, distilled, rl, gap])
    data_summary_path = dirs["distill-data"] / "summary.json"
    data_summary = json.loads(data_summary_path.read_text()) if data_summary_path.is_file() else {}
    gaps = [metrics[f"{s}_distill_minus_rl"] for s in STUDENTS]
    headline = min(gaps) if all(g is not None for g in gaps) else None
    result = verdict(metrics)
    note = (f"Held-out {BENCHMARK} pass@1, greedy, ≤ {MAX_NEW_TOKENS[quick]} new tokens, {EVAL_SIZE[quick]} "
            f"{DIGITS[quick]}-digit sums; every student's RL and its distillation start from the same base (its own "
            f"{STUDENT_BASE_STEPS[quick]}-step pretraining; the teacher's base had {TEACHER_BASE_STEPS[quick]}). "
            f"RL: {RL[quick]['total_steps']} GRPO steps × {RL[quick]['prompts_per_step']} prompts × "
            f"G {RL[quick]['group_size']} = {rl_sequences(quick)} sampled sequences, as the teacher's; distillation: "
            f"SFT on {rl_sequences(quick)} sequences of the teacher's {data_summary.get('rows', '?')} accepted samples "
            "(text, so vocabularies may differ).")
    if result["outcome"] == "not reproduced":
        note += (" Not reproduced: " + "; ".join(result["reasons"]) + ". A student whose own base already solves "
                 "part of the problems gets RL signal from its first steps, while a teacher barely better than the "
                 "student has little to pass on; see the teacher's and the bases' accuracies.")
    elif result["outcome"] == "inconclusive":
        note += " Inconclusive: " + "; ".join(result["reasons"]) + "."
    comparison = {
        "finding": chain.finding, "metrics": metrics, "verdict": result,
        "table": {"columns": ["model", "model_type", "parameters", "vocabulary", "base accuracy", "distilled accuracy",
                              "RL accuracy", "distilled − RL"], "rows": rows},
        "charts": [{"title": "held-out accuracy per student", "x_label": "student", "y_label": "pass@1",
                    "series": [{"name": name, "x": list(STUDENTS), "y": [metrics[f"{s}_{key}"] for s in STUDENTS]}
                               for name, key in (("base", "base_accuracy"), ("distilled", "distilled_accuracy"),
                                                 ("RL", "rl_accuracy"))]
                    + [{"name": "teacher", "x": list(STUDENTS), "y": [teacher["accuracy"]] * len(STUDENTS)}]}],
        "headline": {"name": "distill_minus_rl_min", "value": headline},
        "note": note,
        "teacher": {"accuracy": teacher["accuracy"], "n": teacher["n"], "data": data_summary},
        "students": students,
        "compute": {"rl_sampled_sequences": rl_sequences(quick), "sft_sequences": rl_sequences(quick)},
    }
    return comparison, f"distill_minus_rl_min={'nan' if headline is None else f'{headline:.4f}'}"


CHAIN = Chain(
    name="distill-mini",
    description="DeepSeek-R1 §4.1 in miniature: a teacher (tiny base → Zero RL → rejection sampling → filtered "
    "accepted samples) distilled by SFT into three small students — the built-in model at 2 layers, a transformers "
    "Qwen2 and a Llama of its size, each with its own short pretraining — against the same RL on each student's "
    "base; every model evaluated alike; comparison.json: distilled − RL accuracy per student.",
    stages=_INITS + _TEACHER + _STUDENT_ROUTES,
    summarise=lambda root, chain: comparison(root, chain),
    finding="Distilling a strong reasoner into small dense students (Qwen, Llama) beats running the same RL "
    "directly on those students (DeepSeek-R1 §4.1).",
    verdict=verdict,
)
