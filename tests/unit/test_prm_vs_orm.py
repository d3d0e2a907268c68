"""The prm-vs-orm finding (DeepSeek-R1 §4.2): the process reward model learns step labels, the `prm` reward is the
minimum of its step scores (0 without an answer), the verdict follows its rule, and the quick chain runs every
stage: labels counted, PRM trained and scored on held-out steps, both GRPO runs at equal compute with true
accuracy and the PRM score logged, comparison.json in the general shape."""
import json
import random

import pytest

from r1model.model.config import ModelConfig
from r1model.tasks import get_task
from r1model.tasks.steps import label_steps, split_steps
from r1model.train.findings import CHAINS
from r1model.train.chains import check_chain, stage_config
from r1model.train.findings.prm_vs_orm import BASE_STEPS, CHAIN, FLAT, RL_STEPS, SAMPLE_STEPS, prm_vs_orm_verdict

torch = pytest.importorskip("torch")

from r1model.model.prm import ProcessRewardModel, step_scores  # noqa: E402
from r1model.model.tokenizer import R1Tokenizer  # noqa: E402
from r1model.rewards import compute_rewards  # noqa: E402
from r1model.train.prm import _examples, evaluate_prm, train_prm  # noqa: E402

SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, first_k_dense_replace=1,
             num_nextn_predict_layers=0)


def records(n=12, seed=0):
    """Golden addition traces and copies with one corrupted line, labelled by the checker."""
    rng = random.Random(seed)
    out = []
    for problem in get_task("addition").generate("train", n, seed=seed, digits=3, min_digits=3):
        lines = problem.solution.splitlines()
        bad = list(lines)
        i = rng.randrange(len(bad))
        left, right = bad[i].split("=")
        bad[i] = f"{left}={int(right) + 1}"
        for think, answer in ((lines, problem.answer), (bad, str(int(problem.answer) + 1))):
            completion = "<think>" + "\n".join(think) + f"</think><answer>{answer}</answer>"
            steps = label_steps("addition", problem, completion)
            out.append({"problem": problem.problem, "completion": completion,
                        "steps": [{"kind": s.step.kind, "text": s.step.text, "start": s.step.start, "end": s.step.end,
                                   "correct": s.correct} for s in steps]})
    return out


def test_the_prm_learns_its_training_steps():
    torch.manual_seed(0)
    tokenizer = R1Tokenizer.build()
    prm = ProcessRewardModel(ModelConfig(**SMALL))
    data = records()
    examples = _examples(data, tokenizer)
    before = evaluate_prm(prm, tokenizer, examples, data)
    training = train_prm(prm, tokenizer, examples, seed=0, epochs=1000, max_steps=120, batch_size=8, lr=3e-3)
    after = evaluate_prm(prm, tokenizer, examples, data)
    assert training["train_steps"] == 120 and training["last_loss"] < training["first_loss"] - 0.15
    assert before["heldout_balanced_accuracy"] == 0.5  # a zero head: every step 0.5, all called correct
    # beyond "every step is correct" (the majority rate): some wrong steps are caught
    assert after["heldout_step_accuracy"] > after["heldout_majority_accuracy"] + 0.05
    assert after["heldout_wrong_recall"] > 0.2 and after["heldout_balanced_accuracy"] > 0.6


def test_the_prm_reward_is_the_lowest_step_score_and_zero_without_an_answer(tmp_path):
    torch.manual_seed(1)
    tokenizer = R1Tokenizer.build()
    prm = ProcessRewardModel(ModelConfig(**SMALL))
    torch.nn.init.normal_(prm.head.weight, std=1.0)
    folder = prm.save(tmp_path / "prm", tokenizer, {"note": "random head"})
    problems = get_task("addition").generate("train", 3, seed=2, digits=2, min_digits=2)
    completions = [f"<think>{p.solution}</think><answer>{p.answer}</answer>" for p in problems[:2]]
    completions.append(f"<think>{problems[2].solution}</think><answer>")  # never answered
    truncated = [False, True, False]  # the second was cut: no answer either
    totals, parts = compute_rewards(completions, problems, {"prm": 1.0}, truncated=truncated,
                                    options={"prm": {"model": str(folder)}})
    loaded = ProcessRewardModel.load(folder)
    steps = split_steps(completions[0])
    expected = min(step_scores(loaded, tokenizer, [problems[0].problem], completions[:1], [steps])[0])
    assert totals[0] == pytest.approx(expected, abs=1e-6) and 0 < totals[0] < 1
    assert [r.status for r in parts["prm"]] == ["ok", "no_answer", "no_answer"] and totals[1:] == [0.0, 0.0]
    with pytest.raises(ValueError, match="prm reward needs `model`"):
        compute_rewards(completions, problems, {"prm": 1.0})


def test_the_verdict_follows_its_rule():
    base = {"orm.accuracy": 0.6, "orm.accuracy_gain": 0.4, "prm.accuracy": 0.3, "prm.accuracy_gain": 0.1,
            "prm.reward_gain": 0.05, "hacking": 0.0}
    assert prm_vs_orm_verdict(base)["outcome"] == "reproduced"  # PRM worse
    hacked = {**base, "prm.accuracy": 0.2, "prm.accuracy_gain": 0.0, "prm.reward_gain": 0.4, "hacking": 1.0}
    verdict = prm_vs_orm_verdict(hacked)
    assert verdict["outcome"] == "reproduced" and verdict["reasons"][0].startswith("reward hacking")
    surprise = {**base, "prm.accuracy": 0.6 + FLAT + 0.05, "prm.accuracy_gain": 0.45}
    assert prm_vs_orm_verdict(surprise)["outcome"] == "not reproduced"
    tie = {**base, "prm.accuracy": 0.6 + FLAT, "prm.accuracy_gain": 0.42}
    assert prm_vs_orm_verdict(tie)["outcome"] == "reproduced"
    idle = {**base, "orm.accuracy_gain": 0.0, "prm.accuracy_gain": 0.01, "prm.accuracy": 0.61}
    assert prm_vs_orm_verdict(idle)["outcome"] == "inconclusive"
    # neither improved on the base, but the PRM run fell well below ORM: a comparison all the same
    collapsed = {**base, "orm.accuracy": 0.08, "orm.accuracy_gain": -0.04, "prm.accuracy": 0.0, "prm.accuracy_gain": -0.12}
    assert prm_vs_orm_verdict(collapsed)["outcome"] == "reproduced"
    assert prm_vs_orm_verdict({**base, "prm.accuracy": None})["outcome"] == "inconclusive"
    # seeds' means: hacking in one seed of three is not "shows hacking"
    assert prm_vs_orm_verdict({**surprise, "hacking": 1 / 3, "prm.reward_gain": 0.3})["outcome"] == "not reproduced"


@pytest.mark.parametrize("quick", [False, True])
def test_the_full_scale_is_the_4_digit_task_and_both_rl_runs_get_the_same_compute(quick):
    check_chain(CHAIN)
    stages = {s.name: s for s in CHAIN.stages}
    base = stage_config(CHAIN, stages["base"], quick=quick, seed=0)
    samples = stage_config(CHAIN, stages["samples"], quick=quick, inputs={"model.source": "/runs/base/step-1"})
    orm = stage_config(CHAIN, stages["orm"], quick=quick, inputs={"model.source": "/runs/base/step-1",
                                                                  "rewards.2.model": "/runs/prm/step-1"})
    prm = stage_config(CHAIN, stages["prm-rl"], quick=quick, inputs={"model.source": "/runs/base/step-1",
                                                                     "rewards.0.model": "/runs/prm/step-1"})
    orm_dump, prm_dump = orm.model_dump(), prm.model_dump()
    assert {k for k, v in orm_dump.items() if prm_dump[k] != v} == {"name", "rewards"}
    assert {r["name"]: r["weight"] for r in orm_dump["rewards"]} == {"accuracy": 1.0, "format": 0.1, "prm": 0.0}
    assert {r["name"]: r["weight"] for r in prm_dump["rewards"]} == {"prm": 1.0, "accuracy": 0.0, "format": 0.0}
    assert orm.evaluation.at_start and orm.evaluation.temperature == 0.0
    assert base.datasets[0].difficulty == samples.datasets[0].difficulty == orm.datasets[0].difficulty
    if not quick:  # what `recipe run prm-vs-orm` does: the 4-digit task on an 800-step base
        assert base.kind == "pretrain" and base.total_steps == BASE_STEPS == 800
        assert base.datasets[0].difficulty == {"digits": 4, "min_digits": 4} and orm.datasets[0].eval_size == 200
        assert orm.total_steps == RL_STEPS and orm.evaluation.interval == 10
        traces = samples.total_steps * samples.grpo.prompts_per_step * samples.grpo.group_size
        assert samples.total_steps == SAMPLE_STEPS and traces == 1536 and samples.sampling.temperature == 1.0


@pytest.mark.slow
def test_quick_chain_labels_trains_and_compares_at_equal_compute(tmp_path, capsys):
    from r1model.events import read_events
    from r1model.train.chains import run_chain

    assert CHAINS["prm-vs-orm"] is CHAIN
    root = tmp_path / "chain"
    assert run_chain("prm-vs-orm", root, quick=True, seed=0, install_signals=False) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("prm_minus_orm_accuracy=")
    stages = {p.name.split("-", 1)[1]: p for p in (root / "stages").iterdir()}
    summary = json.loads((stages["prm"] / "summary.json").read_text())
    rows = [json.loads(line) for line in (stages["prm"] / "data.jsonl").read_text().splitlines()]
    assert summary["labels"] == summary["checker_calls"] == sum(len(r["steps"]) for r in rows) > 0
    assert summary["correct_labels"] == sum(s["correct"] for r in rows for s in r["steps"])
    assert {r["split"] for r in rows} <= {"train", "heldout"} and summary["train_steps"] >= 1
    scored = [s for r in rows if r["split"] == "heldout" for s in r["steps"] if "score" in s]
    assert len(scored) == summary["heldout_steps"]
    if scored:
        hits = sum((s["score"] >= 0.5) == s["correct"] for s in scored)
        assert summary["heldout_step_accuracy"] == pytest.approx(hits / len(scored))
    checkpoint = json.loads((root / "chain.json").read_text())["stages"][2]["artifacts"]["checkpoint"]
    prm_config = json.loads((stages["prm-rl"] / "config.json").read_text())
    assert prm_config["rewards"][0] == {"name": "prm", "weight": 1.0, "model": str(root / checkpoint),
                                        "warmup_steps": 0}
    def grpo_metrics(stage):
        return [e["values"] for e in read_events(stages[stage], types={"metric"}) if e.get("phase") == "grpo"]

    for stage in ("orm", "prm-rl"):  # the true accuracy beside the PRM score, every step of both runs
        metrics = grpo_metrics(stage)
        assert len(metrics) == 3 and all("accuracy" in m and 0.0 <= m["rewards/prm/mean"] <= 1.0 for m in metrics)
    prm_metrics = grpo_metrics("prm-rl")
    assert all(m["reward"] == pytest.approx(m["rewards/prm/mean"]) for m in prm_metrics)  # PRM only
    comparison = json.loads((root / "comparison.json").read_text())
    assert {"finding", "metrics", "verdict", "table", "charts", "headline", "note"} <= set(comparison)
    assert comparison["verdict"] == prm_vs_orm_verdict(comparison["metrics"])
    assert comparison["headline"]["value"] == comparison["metrics"]["prm_minus_orm_accuracy"]
    orm_row, prm_row = comparison["table"]["rows"]
    assert orm_row[-1] == prm_row[-1] > 0  # equal compute: the same sampled completions
    assert comparison["metrics"]["labels"] == summary["labels"]
