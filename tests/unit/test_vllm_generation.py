"""The vLLM rollout engine's parts that need no vLLM: truncated importance sampling (hand-computed), the
logprob-agreement check with a fake engine, the completions-API request/response mapping, the config."""
import math
from dataclasses import replace

import pytest
import torch

from r1model.generation.engine import Completion, SamplingParams
from r1model.generation.logprob_check import LogprobCheck, LogprobMismatch, logprob_diff
from r1model.train.grpo import policy_loss, tis_weights

torch.set_num_threads(1)


# --- truncated importance sampling ---------------------------------------------------------------
def test_tis_weight_is_the_ratio_capped_and_one_off_the_mask():
    train = torch.tensor([[math.log(0.5), math.log(0.9), math.log(0.1)]])
    sampler = torch.tensor([[math.log(0.25), math.log(0.1), math.log(0.2)]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    w = tis_weights(train, sampler, mask, cap=2.0)
    # 0.5/0.25 = 2 (at the cap), 0.9/0.1 = 9 -> capped at 2, off the mask 1
    assert w[0].tolist() == pytest.approx([2.0, 2.0, 1.0])
    w = tis_weights(train, sampler, torch.ones(1, 3), cap=10.0)
    assert w[0].tolist() == pytest.approx([2.0, 9.0, 0.5])
    assert not w.requires_grad
    with pytest.raises(ValueError):
        tis_weights(train, sampler, mask, cap=0)


def test_policy_loss_with_is_weight_matches_hand_computation():
    # on-policy (ρ = 1), one sequence of two tokens, A = 1, grpo aggregation: loss = −mean_t(w_t · 1)
    logp = torch.tensor([[math.log(0.5), math.log(0.4)]], requires_grad=True)
    old = logp.detach().clone()
    adv, mask = torch.tensor([1.0]), torch.ones(1, 2)
    w = torch.tensor([[0.5, 2.0]])
    loss, _ = policy_loss(logp, old, adv, mask, is_weight=w)
    assert float(loss.detach()) == pytest.approx(-(0.5 + 2.0) / 2)
    loss.backward()
    # d/dlogp of −w·exp(logp − old)·A / T at ρ = 1 is −w/T
    assert logp.grad[0].tolist() == pytest.approx([-0.25, -1.0])
    plain, _ = policy_loss(logp.detach(), old, adv, mask)
    assert float(plain) == pytest.approx(-1.0)


def test_is_weight_leaves_the_kl_term_alone():
    logp = torch.tensor([[math.log(0.5)]])
    ref = torch.tensor([[math.log(0.25)]])
    adv, mask = torch.tensor([0.0]), torch.ones(1, 1)  # A = 0: only the KL term remains
    a, _ = policy_loss(logp, logp, adv, mask, beta=0.1, ref_logp=ref)
    b, _ = policy_loss(logp, logp, adv, mask, beta=0.1, ref_logp=ref, is_weight=torch.tensor([[3.0]]))
    assert float(a) == pytest.approx(float(b)) and float(a) > 0


# --- the logprob-agreement check ---------------------------------------------------------------------
def _teacher(prompts, completions):
    """The 'trainer': logprob of token t is −t/10."""
    return [[-t / 10 for t in c] for c in completions]


class FakeEngine:
    """Returns the trainer's logprobs perturbed by `offset` (a stale or lower-precision engine)."""

    def __init__(self, offset):
        self.offset = offset

    def generate(self, prompts, params, generator=None):
        out = []
        for i, p in enumerate(prompts):
            tokens = [1 + i, 2 + i, 3]
            out.append(Completion(list(p), tokens, "", [-t / 10 + self.offset * (-1) ** k for k, t in enumerate(tokens)],
                                  "stop"))
        return out


def test_logprob_diff_is_mean_and_max_abs():
    assert logprob_diff([[0.0, -1.0], [-2.0]], [[0.1, -1.3], [-2.0]]) == pytest.approx((0.4 / 3, 0.3))
    with pytest.raises(ValueError):
        logprob_diff([[0.0]], [[0.0, 1.0]])


def test_check_reports_the_diff_and_runs_at_start_and_every_k_steps():
    check = LogprobCheck(interval=3, max_diff=0.1)
    engine = FakeEngine(0.02)
    done = [s for s in range(5, 12) if check(s, engine.generate([[7], [8]], SamplingParams()), _teacher)]
    assert done == [5, 6, 9]  # the first step seen (a resume at 5 too), then every 3rd
    values = LogprobCheck(interval=3)(1, engine.generate([[7]], SamplingParams()), _teacher)
    assert values["rollout/logprob_diff"] == pytest.approx(0.02)
    assert values["rollout/logprob_diff_max"] == pytest.approx(0.02)


def test_check_refuses_to_go_on_past_the_threshold():
    check = LogprobCheck(interval=1, max_diff=0.1, engine_name="vLLM")
    check(1, FakeEngine(0.05).generate([[7]], SamplingParams()), _teacher)
    with pytest.raises(LogprobMismatch, match=r"vLLM's logprobs differ .* by 0\.5 .*logprob_max_diff = 0\.1"):
        check(2, FakeEngine(0.5).generate([[7]], SamplingParams()), _teacher)
    # max_diff 0: a report, never a stop
    assert LogprobCheck(max_diff=0)(1, FakeEngine(5.0).generate([[7]], SamplingParams()), _teacher)[
        "rollout/logprob_diff"] == pytest.approx(5.0)


# --- the trainer with an engine whose logprobs are off by a known amount -----------------------------
SMALL_MODEL = {"hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16, "num_hidden_layers": 2,
               "num_attention_heads": 2, "q_lora_rank": 16, "kv_lora_rank": 16, "qk_nope_head_dim": 8,
               "qk_rope_head_dim": 8, "v_head_dim": 8, "num_nextn_predict_layers": 0}


class ShiftedEngine:
    """The built-in engine, its logprobs shifted by `offset` (an engine with other numerics)."""

    name = "shifted engine"

    def __init__(self, inner, offset):
        self.inner, self.offset = inner, offset

    def update_weights(self, model):
        self.inner.update_weights(model)

    def generate(self, prompts, params, generator=None):
        return [replace(c, logprobs=[x + self.offset for x in c.logprobs], entropies=[])
                for c in self.inner.generate(prompts, params, generator)]


def _trainer(tmp_path, offset, **grpo):
    from r1model.events import EventWriter
    from r1model.train import modeling
    from r1model.train.config import validate_run_config
    from r1model.train.context import RunContext
    from r1model.train.data import DataSource
    from r1model.train.grpo_trainer import GRPOTrainer

    config = validate_run_config({
        "model": {"source": "tiny", "overrides": SMALL_MODEL}, "template": "mini",
        "datasets": [{"task": "addition", "difficulty": {"digits": 1}}],
        "grpo": {"group_size": 2, "prompts_per_step": 2, "max_new_tokens": 6, "beta": 0.0, "temperature": 1.0,
                 "rollout_engine": "vllm", **grpo},
    })
    ctx = RunContext(config, tmp_path, EventWriter(tmp_path), torch.device("cpu"))
    model, tokenizer = modeling.build_model(config.model, ctx.device, seed=0)
    engine = ShiftedEngine(modeling.make_engine(model, tokenizer), offset)
    return GRPOTrainer(ctx, model, tokenizer, DataSource(config), engine=engine)


def test_trainer_reports_logprob_diff_and_tis_weights(tmp_path):
    trainer = _trainer(tmp_path, -0.1, tis_cap=2.0, logprob_check_interval=2, logprob_max_diff=0.5)
    values = trainer.step(1)
    assert values["rollout/logprob_diff"] == pytest.approx(0.1, abs=1e-4)
    # w = exp(log π_train − (log π_train − 0.1)) = e^0.1 on every token (below the cap)
    if "rollout/tis_weight_mean" in values:  # absent only if every advantage was 0 (nothing trained)
        assert values["rollout/tis_weight_mean"] == pytest.approx(math.exp(0.1), abs=1e-3)
        assert values["rollout/tis_capped"] == 0.0
    assert "rollout/logprob_diff" not in trainer.step(3)  # not due: every 2nd step
    assert "rollout/logprob_diff" in trainer.step(4)


def test_trainer_stops_when_the_engine_disagrees(tmp_path):
    from r1model.train.context import TrainingFailed

    trainer = _trainer(tmp_path, 0.3, logprob_max_diff=0.1)
    with pytest.raises(TrainingFailed, match="shifted engine's logprobs differ"):
        trainer.step(1)


def test_vllm_engine_refuses_the_builtin_model_and_starts_nothing_until_used(tmp_path):
    from r1model.generation.vllm_engine import VLLMServerEngine, completion_request, group_prompts, parse_choices
    from r1model.train import modeling
    from r1model.train.config import ModelSpec

    model, tokenizer = modeling.build_model(ModelSpec(source="tiny", overrides=SMALL_MODEL), torch.device("cpu"), 0)
    with pytest.raises(ValueError, match="needs a transformers model"):
        modeling.make_engine(model, tokenizer, "vllm")
    assert group_prompts([[1], [2], [1]]) == [([1], [0, 2]), ([2], [1])]
    body = completion_request([5, 6], 3, SamplingParams(temperature=0.7, top_k=4, max_new_tokens=9), 11, {2})
    assert body["prompt"] == [5, 6] and body["n"] == 3 and body["seed"] == 11 and body["logprobs"] == 0
    assert body["stop"] == ["</answer>"] and body["stop_token_ids"] == [2] and body["return_token_ids"]
    response = {"choices": [{"index": 1, "token_ids": [7], "logprobs": {"token_logprobs": [-0.5]}, "finish_reason": "length"},
                            {"index": 0, "token_ids": [8, 2], "logprobs": {"token_logprobs": [-1.0, -2.0]},
                             "finish_reason": "stop"}]}
    assert parse_choices(response, 2) == [([8, 2], [-1.0, -2.0], "stop"), ([7], [-0.5], "length")]
    engine = VLLMServerEngine(model, tokenizer, workdir=tmp_path)
    assert engine.server is None and not (tmp_path / "weights").exists()


# --- the server process's lifetime and settings on a CPU-only vLLM ---------------------------------------------
def test_the_server_launcher_ends_the_server_when_its_parent_is_killed(tmp_path):
    """The server runs in its own session (stop() ends its process group), so the supervisor's kill of the trainer's
    group does not reach it: the launcher asks Linux to SIGTERM it when the trainer dies, SIGKILL included."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from r1model.generation.vllm_engine import _PARENT_DEATH

    if not sys.platform.startswith("linux"):
        pytest.skip("parent-death signals are a Linux feature")
    pid_file = tmp_path / "server.pid"
    trainer = (  # stands in for the trainer: starts a long "server" through the launcher, then waits
        "import os, subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-c', {_PARENT_DEATH!r}, str(os.getpid()), '/bin/sleep', '120'],"
        " start_new_session=True)\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", trainer])
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    server = int(pid_file.read_text())
    time.sleep(0.5)  # the launcher has exec'd sleep
    assert open(f"/proc/{server}/cmdline", "rb").read().split(b"\0")[0] == b"/bin/sleep"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            state = open(f"/proc/{server}/stat").read().split()[2]
        except FileNotFoundError:
            break
        if state == "Z":  # ended, waiting for init to reap it
            break
        time.sleep(0.05)
    else:
        os.kill(server, signal.SIGKILL)
        pytest.fail("the server outlived its killed parent")


def test_a_cpu_only_vllm_runs_without_chunked_prefill_and_batches_the_whole_context(tmp_path, monkeypatch):
    import json

    from r1model.generation import vllm_engine

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2", "max_position_embeddings": 4096}))
    monkeypatch.setattr(vllm_engine.torch.cuda, "is_available", lambda: False)
    assert vllm_engine.cpu_prefill_settings(tmp_path, None) == {"enable_chunked_prefill": False,
                                                                "max_num_batched_tokens": 4096}
    assert vllm_engine.cpu_prefill_settings(tmp_path, 512)["max_num_batched_tokens"] == 2048
    server = vllm_engine.VLLMServer(tmp_path, sys_python(), port=1)
    command = server.command()
    assert "--no-enable-chunked-prefill" in command
    assert command[command.index("--max-num-batched-tokens") + 1] == "4096"
    monkeypatch.setattr(vllm_engine.torch.cuda, "is_available", lambda: True)
    assert vllm_engine.cpu_prefill_settings(tmp_path, None) == {}
    assert "--no-enable-chunked-prefill" not in vllm_engine.VLLMServer(tmp_path, sys_python(), port=1).command()


def sys_python() -> str:
    import sys

    return sys.executable
