"""Hugging Face causal LMs (tiny random Qwen2 / Llama folders built here, no hub) as the policy of every job.

Each job kind runs end to end through the CLI's path (r1model.__main__.main: `train CONFIG --run-dir DIR`,
in-process); generation logprobs equal the trainer's teacher-forced ones; a Qwen2 fine-tuned here reloads in
transformers with the same logits; bad model sources fail with one line naming model.source.
"""
import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from r1model.__main__ import main  # noqa: E402
from r1model.events import read_events  # noqa: E402
from r1model.testing.fixtures import make_tiny_hf_model  # noqa: E402
from r1model.train import modeling  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def qwen(tmp_path_factory) -> Path:
    return make_tiny_hf_model(tmp_path_factory.mktemp("hf") / "tiny-qwen2-instruct", "qwen2")


@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> Path:
    return make_tiny_hf_model(tmp_path_factory.mktemp("hf") / "tiny-llama", "llama", instruct=False)


def job(kind: str, source, **changes) -> dict:
    config = {
        "kind": kind, "model": str(source), "seed": 1, "total_steps": 2, "checkpoint_interval": 0,
        "datasets": [{"task": "addition", "difficulty": {"digits": 1}, "eval_size": 2}],
        "grpo": {"group_size": 2, "prompts_per_step": 2, "max_new_tokens": 8, "learning_rate": 1e-3},
        "supervised": {"batch_size": 2, "warmup_steps": 0, "max_seq_len": 256},
        "evaluation": {"at_start": False, "max_new_tokens": 8},
    }
    for key, value in changes.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and isinstance(config.get(key), dict) else value
    return config


def train(tmp_path: Path, config: dict, name: str = "run") -> tuple[int, list[dict], Path]:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    run_dir = tmp_path / name
    code = main(["train", str(path), "--run-dir", str(run_dir), "--quiet"])
    return code, read_events(run_dir), run_dir


def final_status(events: list[dict]) -> dict:
    return [e for e in events if e["type"] == "status"][-1]


def metrics(events: list[dict], phase: str) -> list[dict]:
    return [e["values"] for e in events if e["type"] == "metric" and e.get("phase") == phase]


def test_grpo_two_steps_on_qwen2_writes_a_qwen2_checkpoint_transformers_loads(tmp_path, qwen):
    from transformers import AutoModelForCausalLM

    code, events, run_dir = train(tmp_path, job("grpo", qwen))
    assert code == 0, final_status(events)
    values = metrics(events, "grpo")
    assert len(values) == 2 and all("loss" in v and "reward" in v for v in values)
    checkpoint = run_dir / "checkpoints" / "step-2"
    assert json.loads((checkpoint / "config.json").read_text())["model_type"] == "qwen2"
    reloaded = AutoModelForCausalLM.from_pretrained(checkpoint)
    assert type(reloaded).__name__ == "Qwen2ForCausalLM"


def test_sft_on_qwen2_trains_the_completion_and_checkpoints_in_hf_layout(tmp_path, qwen):
    code, events, run_dir = train(tmp_path, job("sft", qwen, supervised={"learning_rate": 1e-3}))
    assert code == 0, final_status(events)
    losses = [v["train/loss"] for v in metrics(events, "sft")]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    assert (run_dir / "checkpoints" / "step-2" / "tokenizer_config.json").exists()


def test_rollout_on_qwen2_writes_every_sample(tmp_path, qwen):
    code, events, run_dir = train(tmp_path, job("rejection_sampling", qwen))
    assert code == 0, final_status(events)
    rows = [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 2  # steps × prompts × G
    assert all(r["prompt"].startswith("<|im_start|>system\n") for r in rows)  # an instruct model: chat prompts
    assert (run_dir / "accepted.jsonl").exists()


def test_evaluate_on_qwen2_reports_pass_at_1(tmp_path, qwen):
    code, events, _ = train(tmp_path, job("evaluate", qwen, total_steps=0))
    assert code == 0, final_status(events)
    evals = [e for e in events if e["type"] == "eval"]
    assert any(e.get("metric") == "pass@1" for e in evals)


@pytest.mark.parametrize("kind", ["sft", "rejection_sampling", "evaluate"])
def test_every_other_job_runs_on_llama(tmp_path, llama, kind):
    """SFT, rejection sampling and evaluate on the Llama fixture too (a base model: plain R1-Zero prompts)."""
    code, events, run_dir = train(tmp_path, job(kind, llama, **({"total_steps": 0} if kind == "evaluate" else {})))
    assert code == 0, final_status(events)
    if kind == "sft":
        assert json.loads((run_dir / "checkpoints" / "step-2" / "config.json").read_text())["model_type"] == "llama"
    elif kind == "rejection_sampling":
        rows = [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]
        assert len(rows) == 2 * 2 * 2 and not rows[0]["prompt"].startswith("<|im_start|>")
    else:
        assert any(e["type"] == "eval" and e.get("metric") == "pass@1" for e in events)


def test_grpo_smoke_on_llama(tmp_path, llama):
    code, events, run_dir = train(tmp_path, job("grpo", llama, grpo={"beta": 0.0}))
    assert code == 0, final_status(events)
    assert len(metrics(events, "grpo")) == 2
    assert json.loads((run_dir / "checkpoints" / "step-2" / "config.json").read_text())["model_type"] == "llama"


# ---- the interface: generation, teacher forcing, saving -----------------------------------------
def sample_completions(model, tokenizer, prompts, temperature=1.0, max_new_tokens=12, seed=3):
    engine = modeling.make_engine(model, tokenizer)
    params = modeling.sampling_params(tokenizer, temperature=temperature, top_p=1.0, top_k=0,
                                      max_new_tokens=max_new_tokens, seed=seed)
    return engine.generate(prompts, params)


@pytest.mark.parametrize("fixture", ["qwen", "llama"])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_generation_logprobs_equal_teacher_forced_ones(request, fixture, temperature):
    model, tokenizer = modeling.load_model(request.getfixturevalue(fixture), CPU)
    texts = ["What is 2+3?", "Solve 3x + 4 = 19 for x, then add 12 and 30 to it please."]
    prompts = [tokenizer.encode(modeling.prompt_text(tokenizer, t)) for t in texts]
    prompts = [prompts[0], prompts[1], prompts[0], prompts[1]]  # ragged, each prompt twice
    completions = sample_completions(model, tokenizer, prompts, temperature)
    assert len({tuple(c.token_ids) for c in completions}) > 1
    with torch.no_grad():
        forced, entropies = modeling.completion_logprobs(
            model, [c.prompt_ids for c in completions], [c.token_ids for c in completions], tokenizer.pad_id,
            temperature)
    for c, lp, ent in zip(completions, forced, entropies):
        assert torch.allclose(torch.tensor(c.logprobs), torch.tensor(lp), atol=1e-4)
        assert torch.allclose(torch.tensor(c.entropies), torch.tensor(ent), atol=1e-4)


def test_same_seed_same_completions(qwen):
    model, tokenizer = modeling.load_model(qwen, CPU)
    prompts = [tokenizer.encode("User: 1+1\nAssistant:")] * 3
    first = sample_completions(model, tokenizer, prompts, seed=5)
    again = sample_completions(model, tokenizer, prompts, seed=5)
    assert [c.token_ids for c in first] == [c.token_ids for c in again]


def script_logits(model, target: list[int]):
    """Make the model write `target` token by token (a hook on the head): one call per decoding step."""
    calls = {"n": 0}

    def hook(module, inputs, output):
        step = min(calls["n"], len(target) - 1)
        calls["n"] += 1
        forced = torch.full_like(output, -1e4)
        forced[..., target[step]] = 1e4
        return forced

    return model.hf.lm_head.register_forward_hook(hook)


@pytest.mark.parametrize("tags_special", [True, False])
def test_generation_stops_on_answer_close_as_text(tmp_path, tags_special):
    folder = make_tiny_hf_model(tmp_path / "qwen", "qwen2", tags_special=tags_special)
    model, tokenizer = modeling.load_model(folder, CPU)
    target = tokenizer.encode("<think>5 = 5</think><answer>5</answer> and more text after it")
    assert (len(tokenizer.encode("</answer>")) == 1) == tags_special
    handle = script_logits(model, target)
    try:
        [completion] = sample_completions(model, tokenizer, [tokenizer.encode("User: 2+3\nAssistant:")],
                                          max_new_tokens=40)
    finally:
        handle.remove()
    assert completion.finish_reason == "stop"
    assert completion.text.endswith("</answer>")
    assert completion.text == "<think>5 = 5</think><answer>5</answer>"


def test_generation_stops_on_eos_and_hides_it_from_the_text(qwen):
    model, tokenizer = modeling.load_model(qwen, CPU)
    target = tokenizer.encode("<think>x</think>") + [tokenizer.eos_id]
    handle = script_logits(model, target)
    try:
        [completion] = sample_completions(model, tokenizer, [tokenizer.encode("User: 2+3\nAssistant:")])
    finally:
        handle.remove()
    assert completion.finish_reason == "stop" and completion.token_ids[-1] == tokenizer.eos_id
    assert completion.text == "<think>x</think>"


def test_fine_tuned_qwen2_reloads_in_transformers_with_equal_logits(tmp_path, qwen):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = modeling.build_model(modeling.ModelSpec(source=str(qwen)), CPU, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = torch.tensor([tokenizer.encode("<think>12 + 30 = 42</think><answer>42</answer>")])
    for _ in range(3):
        optimizer.zero_grad()
        modeling.forward(model, ids, torch.ones_like(ids), labels=ids).loss.backward()
        optimizer.step()
    modeling.save_model(model, tokenizer, tmp_path / "tuned")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "tuned").eval()
    assert type(reloaded).__name__ == "Qwen2ForCausalLM"
    assert AutoTokenizer.from_pretrained(tmp_path / "tuned")("<answer>").input_ids == tokenizer.encode("<answer>")
    model.eval()
    with torch.no_grad():
        ours = modeling.forward(model, ids).logits
        theirs = reloaded(ids).logits
        before = AutoModelForCausalLM.from_pretrained(qwen)(ids).logits
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert not torch.allclose(before, theirs, atol=1e-3)  # the weights did change


# ---- prompts and tokenizers ---------------------------------------------------------------------
def test_prompt_format_auto_is_chat_for_an_instruct_model_and_plain_for_a_base(qwen, llama):
    from r1model.template import R1_SYSTEM_PROMPT, render_prompt

    _, instruct = modeling.load_model(qwen, CPU)
    _, base = modeling.load_model(llama, CPU)
    chat = modeling.prompt_text(instruct, "What is 2+3?")
    assert chat == (f"<|im_start|>system\n{R1_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n"
                    "<|im_start|>assistant\n")
    assert modeling.prompt_text(instruct, "What is 2+3?", prompt_format="plain") == render_prompt("What is 2+3?")
    assert modeling.prompt_text(base, "What is 2+3?") == render_prompt("What is 2+3?")
    assert modeling.prompt_text(base, "x", prompt_format="chat").startswith("<|begin_of_text|><|start_header_id|>system")


def test_chat_format_on_a_builtin_model_is_a_clear_error():
    from r1model.model import R1Tokenizer

    with pytest.raises(ValueError, match="prompt_format 'chat'.*no chat template"):
        modeling.prompt_text(R1Tokenizer.build(), "1+1", prompt_format="chat")


def test_pad_falls_back_to_eos(tmp_path):
    from r1model.model.hf import HFTokenizer
    from r1model.testing.fixtures import train_tokenizer

    hf = train_tokenizer("llama")
    hf.pad_token = None
    tokenizer = HFTokenizer(hf, "x")
    assert tokenizer.pad_id == tokenizer.eos_id == hf.eos_token_id


# ---- bad sources: one line naming model.source ---------------------------------------------------
def failure(tmp_path, source) -> str:
    code, events, _ = train(tmp_path, job("grpo", source), name="bad")
    assert code == 1
    status = final_status(events)
    assert status["phase"] == "failed"
    return status["message"]


def test_folder_without_config_json_names_model_source(tmp_path):
    (tmp_path / "empty-model").mkdir()
    message = failure(tmp_path, tmp_path / "empty-model")
    assert "model.source" in message and "without config.json" in message


def test_unsupported_model_type_names_model_source(tmp_path, qwen):
    import shutil

    folder = tmp_path / "odd"
    shutil.copytree(qwen, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "no_such_arch"}))
    message = failure(tmp_path, folder)
    assert "model.source" in message and "'no_such_arch'" in message and "not a causal LM" in message


def test_tokenizer_without_eos_names_model_source(tmp_path):
    folder = make_tiny_hf_model(tmp_path / "no-eos", "llama", eos=False)
    message = failure(tmp_path, folder)
    assert "model.source" in message and "no EOS token" in message


def test_hub_id_on_an_offline_node_names_the_id(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    message = failure(tmp_path, "some-org/some-model@v1")
    assert "model.source 'some-org/some-model@v1'" in message and "offline" in message


def test_hub_id_resolves_from_the_local_cache_without_the_network(tmp_path, monkeypatch, qwen):
    import shutil

    import huggingface_hub.constants

    cache = tmp_path / "hub-cache"
    repo = cache / "models--some-org--tiny-qwen"
    commit = "0" * 40
    shutil.copytree(qwen, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    model, tokenizer = modeling.build_model(modeling.ModelSpec(source="some-org/tiny-qwen"), CPU, seed=0)
    assert modeling.is_hf_model(model) and model.model_type == "qwen2"


def test_evaluate_cli_samples_an_hf_folder_with_its_chat_prompt(tmp_path, qwen):
    from r1model.evaluate.runner import evaluate_main

    code = evaluate_main(["--checkpoint", str(qwen), "--benchmark", "addition-test", "--n", "2", "--k", "2",
                          "--max-new-tokens", "6", "--run-dir", str(tmp_path / "eval")])
    assert code == 0
    traces = [e for e in read_events(tmp_path / "eval") if e["type"] == "trace"]
    assert len(traces) == 4 and all(t["prompt"].startswith("<|im_start|>system\n") for t in traces)


def test_grpo_on_qwen2_resumed_from_a_checkpoint_equals_the_uninterrupted_run(tmp_path, qwen):
    import shutil

    from safetensors.torch import load_file

    config = job("grpo", qwen, total_steps=4, checkpoint_interval=2, deterministic=True,
                 rewards=[{"name": "length", "weight": 1.0}],  # random text: rewards that differ in a group
                 grpo={"beta": 0.05, "num_iterations": 2, "minibatches": 2, "ref_refresh_interval": 3,
                       "max_new_tokens": 16})
    code, straight, run_dir = train(tmp_path, config, name="straight")
    assert code == 0, final_status(straight)
    shutil.copytree(run_dir, tmp_path / "resumed")
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "step-4")
    code, resumed, _ = train(tmp_path, config, name="resumed")
    assert code == 0, final_status(resumed)
    def learnt(values):
        return [{k: v for k, v in step.items() if not k.startswith(("time/", "throughput/"))} for step in values]

    assert learnt(metrics(resumed, "grpo"))[-2:] == learnt(metrics(straight, "grpo"))[-2:]
    assert all(step["grad_norm"] > 0 for step in metrics(straight, "grpo"))
    a = load_file(run_dir / "checkpoints" / "step-4" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "checkpoints" / "step-4" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_recipes_take_a_hub_id_as_the_model_they_need():
    from r1model.model.config import parse_hub_id
    from r1model.train.recipes import recipe_config

    assert parse_hub_id("Qwen/Qwen2.5-0.5B-Instruct@main") == ("Qwen/Qwen2.5-0.5B-Instruct", "main")
    assert parse_hub_id("runs/a/checkpoints/step-2") is None and parse_hub_id("tiny") is None
    config = recipe_config("rejection-sampling", model="Qwen/Qwen2.5-0.5B-Instruct", require_inputs=True)
    assert config.model.source == "Qwen/Qwen2.5-0.5B-Instruct"


@pytest.mark.parametrize("fixture", ["qwen", "llama"])
def test_shared_prompt_completion_logits_and_gradients_equal_full_forwards(request, fixture):
    from r1model.generation.engine import left_pad

    model, tokenizer = modeling.load_model(request.getfixturevalue(fixture), CPU)
    ids, mask = left_pad([tokenizer.encode("User: 1+2\nAssistant:"), tokenizer.encode("What is 12 + 30? Go")],
                         tokenizer.pad_id, CPU)
    torch.manual_seed(0)
    completions = torch.randint(5, 300, (4, 7))
    completion_mask = torch.ones_like(completions)
    completion_mask[1, 4:] = 0
    completion_mask[3, 2:] = 0
    group = torch.tensor([0, 0, 1, 1])
    results = []
    for share in (True, False):
        model.zero_grad()
        prefix = model.encode_prefix(ids, mask, share=share)
        assert (prefix.kv is not None) == share
        logits = model.completion_logits(prefix, group, completions, completion_mask)
        logits.pow(2).mean().backward()
        results.append((logits.detach(), [p.grad.clone() for p in model.parameters()]))
    (shared, shared_grads), (full, full_grads) = results
    assert torch.allclose(shared, full, atol=1e-4)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(shared_grads, full_grads))
    assert bool((shared[3, 2:] == 0).all())


def test_deepseek_v3_folders_load_into_the_builtin_model(tmp_path):
    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

    from r1model.model import DeepSeekV3, ModelConfig, R1Tokenizer
    from r1model.model.hf import HFTokenizer
    from r1model.generation import BuiltinEngine
    from r1model.testing.fixtures import train_tokenizer

    torch.manual_seed(0)
    DeepSeekV3(ModelConfig.preset("tiny")).save_pretrained(tmp_path / "ours", tokenizer=R1Tokenizer.build())
    model, tokenizer = modeling.load_model(tmp_path / "ours", CPU)
    assert isinstance(model, DeepSeekV3) and isinstance(tokenizer, R1Tokenizer)

    hf_tokenizer = train_tokenizer("qwen2")
    config = ModelConfig.preset("tiny", vocab_size=len(hf_tokenizer), num_nextn_predict_layers=0)
    DeepseekV3ForCausalLM(DeepseekV3Config(**config.to_hf_dict())).save_pretrained(tmp_path / "theirs")
    hf_tokenizer.save_pretrained(tmp_path / "theirs")
    model, tokenizer = modeling.build_model(modeling.ModelSpec(source=str(tmp_path / "theirs")), CPU, seed=0)
    assert isinstance(model, DeepSeekV3) and isinstance(tokenizer, HFTokenizer)
    engine = modeling.make_engine(model, tokenizer)
    assert isinstance(engine, BuiltinEngine)
    [completion] = sample_completions(model, tokenizer, [tokenizer.encode(modeling.prompt_text(tokenizer, "1+1"))])
    assert completion.token_ids


def test_an_hf_prefixed_source_is_the_hub_even_when_a_folder_of_that_name_exists(tmp_path, monkeypatch):
    """The lab passes hub models as hf:org/name@rev: a local folder org/name in the working directory
    must not be taken instead of the hub (offline here: the error names the hub id)."""
    from r1model.model.hf import ModelSourceError
    from r1model.train.modeling import resolve_source

    (tmp_path / "org" / "name").mkdir(parents=True)
    (tmp_path / "org" / "name" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    assert resolve_source("org/name") == ("folder", Path("org/name"))
    with pytest.raises(ModelSourceError, match="org/name"):
        resolve_source("hf:org/name")


def test_a_chat_template_that_fails_to_render_names_model_source(tmp_path, qwen):
    import shutil

    folder = tmp_path / "broken-template"
    shutil.copytree(qwen, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = "{{ raise_exception('this template takes no system turn or user turn') }}"
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    for extra in ("chat_template.jinja", "chat_template.json"):
        (folder / extra).unlink(missing_ok=True)
    code, events, _ = train(tmp_path, job("grpo", folder, prompt_format="chat"), name="bad")
    message = final_status(events)["message"]
    assert code == 1 and "model.source" in message and "chat template failed to render" in message
