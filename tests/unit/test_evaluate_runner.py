"""The evaluation runner: k samples per problem, pass@1 / cons@k / pass@k, samples kept, events written."""
import json

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from r1model.evaluate.runner import evaluate, evaluate_main  # noqa: E402
from r1model.evaluate.metrics import EVAL_METRICS  # noqa: E402
from r1model.events import read_events  # noqa: E402
from r1model.model import DeepSeekV3, ModelConfig, R1Tokenizer  # noqa: E402
from r1model.generation import Completion, GenerationEngine  # noqa: E402
from r1model.tasks import Problem  # noqa: E402


class ScriptedEngine(GenerationEngine):
    """Returns fixed completions in order: the runner's bookkeeping is tested, not the sampler."""

    def __init__(self, texts):
        self.texts = list(texts)
        self.calls = 0

    def generate(self, prompts, params, generator=None):
        out = []
        for prompt in prompts:
            text = self.texts[self.calls]
            self.calls += 1
            out.append(Completion(list(prompt), [0] * len(text), text, [0.0] * len(text),
                                  "length" if text.endswith("...") else "stop"))
        return out

    def update_weights(self, model):
        pass


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return DeepSeekV3(ModelConfig.preset("tiny")), R1Tokenizer.build()


PROBLEMS = [Problem(id="a", problem="1+2", answer="3", task="addition"),
            Problem(id="b", problem="2+2", answer="4", task="addition")]
SCRIPT = ["<think>1+2+0=3</think><answer>3</answer>", "<think></think><answer>3</answer>",
          "<think></think><answer>3</answer>", "garbage...",
          "<think></think><answer>5</answer>", "<think></think><answer>5</answer>",
          "<think></think><answer>4</answer>", "<think></think><answer>9</answer>"]


def test_scores_match_hand_computed_values_and_samples_are_kept(tiny):
    model, tokenizer = tiny
    result = evaluate(model, tokenizer, PROBLEMS, k=4, template="mini", engine=ScriptedEngine(SCRIPT))
    s = result.summary
    # a: 3 of 4 correct, majority 3; b: 1 of 4, majority 5 (wrong). pass@4: a 1, b 1.
    assert s["pass@1"] == pytest.approx((0.75 + 0.25) / 2)
    assert s["cons@k"] == pytest.approx(0.5)
    assert s["pass@k"] == pytest.approx(1.0)
    assert s["unparseable"] == 1 and s["samples"] == 8 and s["truncated_ratio"] == pytest.approx(1 / 8)
    assert [x["status"] for x in result.problems[0]["samples"]] == ["correct", "correct", "correct", "unparseable"]
    assert result.problems[1]["majority"] == "5"


def test_events_hold_eval_metrics_and_one_trace_per_sample(tiny, tmp_path):
    from r1model.events import EventWriter

    model, tokenizer = tiny
    with EventWriter(tmp_path) as events:
        evaluate(model, tokenizer, PROBLEMS, k=4, template="mini", engine=ScriptedEngine(SCRIPT), events=events,
                 step=7, benchmark="addition-test")
    evs = read_events(tmp_path)
    evals = {e["metric"]: e for e in evs if e["type"] == "eval"}
    assert set(evals) == set(EVAL_METRICS)
    assert evals["pass@1"]["value"] == pytest.approx(0.5) and evals["pass@1"]["step"] == 7
    assert evals["pass@1"]["benchmark"] == "addition-test" and evals["pass@1"]["n"] == 8  # judged samples
    assert evals["cons@k"]["value"] == pytest.approx(0.5) and evals["pass@k"]["value"] == pytest.approx(1.0)
    # well formed: the 7 completions with both tags (the truncated "garbage..." is not)
    assert evals["format_rate"]["value"] == pytest.approx(7 / 8)
    traces = [e for e in evs if e["type"] == "trace"]
    assert len(traces) == 8 and {t["source"] for t in traces} == {"eval"}
    assert [t["status"] for t in traces[:4]] == ["correct", "correct", "correct", "unparseable"]
    assert [t["gold"] for t in traces] == ["3"] * 4 + ["4"] * 4  # each sample carries its problem's reference answer


def test_real_tiny_model_sampling_is_seeded_and_greedy_takes_one_sample(tiny):
    model, tokenizer = tiny
    first = evaluate(model, tokenizer, PROBLEMS, k=2, max_new_tokens=8, template="mini", seed=3)
    again = evaluate(model, tokenizer, PROBLEMS, k=2, max_new_tokens=8, template="mini", seed=3)
    texts = lambda r: [s["completion"] for p in r.problems for s in p["samples"]]  # noqa: E731
    assert texts(first) == texts(again) and first.summary["samples"] == 4
    greedy = evaluate(model, tokenizer, PROBLEMS, k=8, max_new_tokens=8, template="mini", greedy=True)
    assert greedy.summary["k"] == 1 and greedy.summary["samples"] == 2


def test_evaluate_command_writes_events_samples_and_a_json_last_line(tiny, tmp_path, capsys):
    model, tokenizer = tiny
    model.save_pretrained(str(tmp_path / "ckpt"), tokenizer=tokenizer)
    rc = evaluate_main(["--checkpoint", str(tmp_path / "ckpt"), "--benchmark", "addition-test", "--n", "3",
                        "--k", "2", "--max-new-tokens", "8", "--run-dir", str(tmp_path / "run"), "--step", "5"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["benchmark"] == "addition-test" and summary["n"] == 3 and summary["samples"] == 6
    rows = (tmp_path / "run" / "evals" / "addition-test-step5.jsonl").read_text().splitlines()
    assert len(rows) == 3 and len(json.loads(rows[0])["samples"]) == 2
    events = read_events(tmp_path / "run")
    assert any(e["type"] == "eval" for e in events)
    statuses = [e["phase"] for e in events if e["type"] == "status"]
    assert statuses == ["eval", "done"]


def test_checkpoint_template_comes_from_its_run_config(tmp_path):
    from r1model.evaluate.runner import _template_of

    step = tmp_path / "run" / "checkpoints" / "step-10"
    step.mkdir(parents=True)
    assert _template_of(step) == "r1-zero"
    (tmp_path / "run" / "config.json").write_text(json.dumps({"template": "mini"}))
    assert _template_of(step) == "mini"


def test_unknown_benchmark_is_a_clear_error(tmp_path, capsys):
    assert evaluate_main(["--checkpoint", str(tmp_path), "--benchmark", "nope"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err


def test_a_truncated_completion_with_the_right_answer_scores_zero_unless_credited(tiny):
    model, tokenizer = tiny
    script = ["<think>1+2</think><answer>3</answer>...", "<think>1+2 is \\boxed{3} and...",
              "<think>2+2</think><answer>4</answer>", "<think>2+2</think><answer>4</answer>..."]
    strict = evaluate(model, tokenizer, PROBLEMS, k=2, template="mini", engine=ScriptedEngine(script))
    assert strict.summary["pass@1"] == pytest.approx((0 + 0.5) / 2) and strict.summary["unparseable"] == 3
    assert [x["status"] for x in strict.problems[0]["samples"]] == ["unparseable", "unparseable"]
    credited = evaluate(model, tokenizer, PROBLEMS, k=2, template="mini", engine=ScriptedEngine(script),
                        truncated_is_wrong=False)
    assert credited.summary["pass@1"] == 1.0 and credited.summary["unparseable"] == 0


def _in_run_eval_events(tiny, tmp_path, script, k, **config):
    from r1model.events import EventWriter
    from r1model.train import evaluation
    from r1model.train.config import validate_run_config
    from r1model.train.context import RunContext

    model, tokenizer = tiny
    config = validate_run_config({"template": "mini", "evaluation": {"samples_per_problem": k}, **config})
    with EventWriter(tmp_path) as events:
        ctx = RunContext(config, tmp_path, events, torch.device("cpu"))
        values = evaluation._evaluate(ctx, model, tokenizer, ScriptedEngine(script), "heldout", PROBLEMS, step=3)
    return values, read_events(tmp_path)


def test_in_run_evaluation_gives_the_evaluate_commands_numbers_under_the_same_names(tiny, tmp_path):
    model, tokenizer = tiny
    values, evs = _in_run_eval_events(tiny, tmp_path / "in-run", SCRIPT, 4)
    cli = evaluate(model, tokenizer, PROBLEMS, k=4, template="mini", engine=ScriptedEngine(SCRIPT))
    in_run = {e["metric"]: e["value"] for e in evs if e["type"] == "eval"}
    assert set(in_run) == set(EVAL_METRICS) and in_run == values
    assert in_run == pytest.approx({m: cli.summary[m] for m in EVAL_METRICS})
    metrics = next(e["values"] for e in evs if e["type"] == "metric")
    assert metrics["eval/heldout/pass@1"] == pytest.approx(0.5)
    traces = [e for e in evs if e["type"] == "trace"]
    assert len(traces) == 2 and {t["source"] for t in traces} == {"eval"}  # first sample of each problem


def test_in_run_evaluation_follows_truncated_is_wrong(tiny, tmp_path):
    script = ["<think>1+2</think><answer>3</answer>...", "<think>2+2</think><answer>4</answer>..."]
    strict, _ = _in_run_eval_events(tiny, tmp_path / "strict", script, 1)
    assert strict["pass@1"] == 0.0 and strict["truncated_ratio"] == 1.0
    credited, _ = _in_run_eval_events(tiny, tmp_path / "credited", script, 1, truncated_is_wrong=False)
    assert credited["pass@1"] == 1.0
