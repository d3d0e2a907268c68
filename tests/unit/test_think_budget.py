"""The think budget at inference: the think is cut at B sampled tokens, `</think><answer>` is forced, and the
answer is generated after it."""
import json

import pytest

torch = pytest.importorskip("torch")

from r1model.generation.budget import FORCED_TEXT, generate_with_think_budget  # noqa: E402
from r1model.generation.engine import BuiltinEngine, Completion, SamplingParams  # noqa: E402
from r1model.train import modeling  # noqa: E402
from r1model.train.config import ModelSpec  # noqa: E402

torch.set_num_threads(1)
SMALL = {"hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16, "num_hidden_layers": 1,
         "num_attention_heads": 2, "q_lora_rank": 16, "kv_lora_rank": 16, "qk_nope_head_dim": 8,
         "qk_rope_head_dim": 8, "v_head_dim": 8, "num_nextn_predict_layers": 0}


@pytest.fixture(scope="module")
def tiny():
    return modeling.build_model(ModelSpec(source="tiny", overrides=SMALL), torch.device("cpu"), seed=0)


class Scripted:
    """An engine that writes a fixed completion per prompt, and `answer` after a forced `</think><answer>`."""

    def __init__(self, tokenizer, scripts: dict[str, str], answer: str):
        self.tok = tokenizer
        self.scripts = {tuple(tokenizer.encode(p)): tokenizer.encode(s) for p, s in scripts.items()}
        self.answer, self.forced = tokenizer.encode(answer), tokenizer.encode(FORCED_TEXT)
        self.calls = []

    def generate(self, prompts, params, generator=None):
        from r1model.model.tokenizer import ANSWER_END

        stops = {self.tok.eos_id, self.tok.token_id(ANSWER_END), *params.stop_token_ids}
        self.calls.append(params)
        out = []
        for p in prompts:
            key = next(k for k in self.scripts if tuple(p[:len(k)]) == k)
            done = p[len(key):]
            seq = self.answer if done[-len(self.forced):] == self.forced else self.scripts[key][len(done):]
            toks, finish = [], "length"
            for t in seq[:params.max_new_tokens]:
                toks.append(t)
                if t in stops:
                    finish = "stop"
                    break
            out.append(Completion(list(p), toks, self.tok.decode(toks), [-1.0] * len(toks), finish))
        return out


def test_a_long_think_is_cut_at_the_budget_and_the_answer_follows_the_forced_tags(tiny):
    _, tok = tiny
    long_think = "<think>1+2=3, 3+3=6, carry 0, so</think><answer>6</answer>"
    short_think = "<think>2+2</think><answer>4</answer>"  # closes its think in 6 tokens
    direct = "<answer>5</answer>"  # ends within the budget
    engine = Scripted(tok, {"A:": long_think, "B:": short_think, "C:": direct}, answer="7</answer>")
    prompts = [tok.encode(p) for p in ("A:", "B:", "C:")]
    out = generate_with_think_budget(engine, tok, prompts, SamplingParams(max_new_tokens=40, seed=3), budget=8)
    forced = tok.encode(FORCED_TEXT)
    a, b, c = out
    assert a.forced and a.think_tokens == 8
    assert a.token_ids == tok.encode(long_think)[:8] + forced + tok.encode("7</answer>")
    assert a.text == "<think>1+2=3, " + "</think><answer>7</answer>" and a.finish_reason == "stop"
    assert a.logprobs == [-1.0] * 8 + [0.0] * len(forced) + [-1.0] * len(tok.encode("7</answer>"))
    assert not b.forced and b.token_ids == tok.encode(short_think) and b.think_tokens == len(tok.encode("<think>2+2"))
    assert not c.forced and c.token_ids == tok.encode(direct) and len(engine.calls) == 2
    assert engine.calls[0].max_new_tokens == 8  # phase 1: the budget


def test_the_answer_keeps_the_rest_of_max_new_tokens_and_a_large_budget_is_plain_generation(tiny):
    _, tok = tiny
    engine = Scripted(tok, {"A:": "<think>" + "9" * 30 + "</think><answer>1</answer>"}, answer="1234567890</answer>")
    out = generate_with_think_budget(engine, tok, [tok.encode("A:")], SamplingParams(max_new_tokens=12), budget=8)
    # 8 sampled think tokens, the forced ones, then 12 − 8 = 4 answer tokens: cut there
    assert out[0].token_ids[8 + len(tok.encode(FORCED_TEXT)):] == tok.encode("1234") and out[0].finish_reason == "length"
    plain = generate_with_think_budget(engine, tok, [tok.encode("A:")], SamplingParams(max_new_tokens=12), budget=12)
    assert not plain[0].forced and plain[0].token_ids == tok.encode("<think>" + "9" * 30)[:12]
    with pytest.raises(ValueError, match="think budget"):
        generate_with_think_budget(engine, tok, [tok.encode("A:")], SamplingParams(), budget=0)


def test_the_builtin_engine_closes_the_think_at_the_budget_and_answers_from_there(tiny):
    model, tok = tiny
    engine = BuiltinEngine(model, tok)
    prompts = [tok.encode("User: 3+4\nAssistant: "), tok.encode("User: 12+9\nAssistant: ")]
    params = SamplingParams(temperature=0.0, max_new_tokens=16, ignore_eos=True)  # greedy; only </think> stops
    budget, forced = 4, tok.encode(FORCED_TEXT)
    out = generate_with_think_budget(engine, tok, prompts, params, budget=budget)
    for prompt, c in zip(prompts, out):
        assert c.think_tokens <= budget
        if c.forced:
            assert c.token_ids[budget:budget + len(forced)] == forced and FORCED_TEXT in c.text
            answer = c.token_ids[budget + len(forced):]
            assert 1 <= len(answer) <= params.max_new_tokens - budget
            # the answer is what the model generates after prompt + its think + the forced tags
            again = engine.generate([prompt + c.token_ids[:budget + len(forced)]],
                                    SamplingParams(temperature=0.0, max_new_tokens=len(answer), ignore_eos=True))[0]
            assert again.token_ids == answer
    assert any(c.forced for c in out)


# ------------------------------------------------------------------------------------------ evaluation

def test_token_efficiency_is_pass_at_1_per_mean_response_token():
    from r1model.evaluate.runner import score_generations
    from r1model.tasks import Problem

    problems = [Problem(id="a", problem="1+2", answer="3", task="addition"),
                Problem(id="b", problem="2+2", answer="4", task="addition")]
    right, wrong = "<think></think><answer>3</answer>", "<think></think><answer>5</answer>"
    completions = [Completion([1], [7] * 10, right, [0.0] * 10, "stop"), Completion([1], [7] * 30, wrong, [0.0] * 30, "stop")]
    summary = score_generations(problems, completions, 1).summary
    # pass@1 = (1 + 0) / 2 = 0.5; mean length (10 + 30) / 2 = 20 tokens; 0.5 / 20 = 0.025
    assert summary["pass@1"] == 0.5 and summary["mean_length"] == 20 and summary["token_efficiency"] == 0.025


def test_in_run_evaluation_emits_a_benchmark_per_think_budget(tiny, tmp_path):
    from r1model.events import EventWriter, read_events
    from r1model.tasks import Problem
    from r1model.train import evaluation
    from r1model.train.config import validate_run_config
    from r1model.train.context import RunContext

    model, tok = tiny
    problems = [Problem(id="a", problem="1+2", answer="3", task="addition")]
    config = validate_run_config({"template": "mini", "evaluation": {"temperature": 0.0, "max_new_tokens": 12,
                                                                     "think_budgets": [8, 3, 3]}})
    assert config.evaluation.think_budgets == [3, 8]
    data = type("Data", (), {"eval_problems": lambda self: problems})()
    with EventWriter(tmp_path) as events:
        ctx = RunContext(config, tmp_path, events, torch.device("cpu"))
        values = evaluation.evaluate_model(ctx, model, tok, BuiltinEngine(model, tok), data, step=0)
    evals = [e for e in read_events(tmp_path) if e["type"] == "eval"]
    assert {e["benchmark"] for e in evals} == {"heldout", "heldout@think<=3", "heldout@think<=8"}
    assert {"heldout@think<=3/pass@1", "heldout@think<=8/mean_length", "heldout/pass@1"} <= set(values)
    traces = [e for e in read_events(tmp_path) if e["type"] == "trace" and "think<=3" in e["group_id"]]
    assert traces and all(t["tokens"] <= 12 + len(tok.encode(FORCED_TEXT)) for t in traces)
    with pytest.raises(Exception, match="think budgets must be >= 1"):
        validate_run_config({"evaluation": {"think_budgets": [0]}})


def test_evaluate_cli_think_budgets_give_an_accuracy_vs_budget_curve(tiny, tmp_path, capsys):
    from r1model.evaluate.runner import evaluate_main
    from r1model.events import read_events

    model, tok = tiny
    modeling.save_model(model, tok, tmp_path / "ckpt")
    code = evaluate_main(["--checkpoint", str(tmp_path / "ckpt"), "--benchmark", "addition-test", "--n", "2",
                          "--greedy", "--max-new-tokens", "12", "--template", "mini", "--think-budgets", "4,2",
                          "--run-dir", str(tmp_path / "run")])
    assert code == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(printed["think_budgets"]) == {"2", "4"}
    assert set(printed["think_budgets"]["2"]) == {"pass@1", "mean_length", "token_efficiency", "truncated_ratio"}
    benchmarks = {e["benchmark"] for e in read_events(tmp_path / "run") if e["type"] == "eval"}
    assert benchmarks == {"addition-test", "addition-test@think<=2", "addition-test@think<=4"}
    assert (tmp_path / "run" / "evals" / "addition-test-think2-step0.jsonl").is_file()
    with pytest.raises(SystemExit):
        evaluate_main(["--checkpoint", str(tmp_path / "ckpt"), "--benchmark", "addition-test", "--think-budgets", "x"])
