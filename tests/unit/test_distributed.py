"""Data-parallel training under DeepSpeed on CPU: 2 ranks × gloo (DS_ACCELERATOR=cpu), torch's AdamW as the
client optimizer (nothing compiles). SFT and GRPO complete, rank 0 alone writes events and checkpoints, a
ZeRO-3 checkpoint loads like any other, 2 ranks give the 1-process weights, and resume is exact."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from r1model.events import read_events
from r1model.train.config import ConfigError, validate_run_config
from r1model.train.distributed import Distributed, deepspeed_config
from r1model.train.modeling import load_model

ROOT = Path(__file__).resolve().parents[2]
SMALL_MODEL = {
    "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16, "num_hidden_layers": 2,
    "num_attention_heads": 2, "q_lora_rank": 16, "kv_lora_rank": 16, "qk_nope_head_dim": 8,
    "qk_rope_head_dim": 8, "v_head_dim": 8, "num_nextn_predict_layers": 1,
}
try:
    import deepspeed  # noqa: F401

    HAVE_DEEPSPEED = True
except Exception:  # noqa: BLE001 - not installed (it is in the dev extras), or broken
    HAVE_DEEPSPEED = False
needs_deepspeed = pytest.mark.skipif(not HAVE_DEEPSPEED, reason="deepspeed is not installed (pip install -e .[dev])")


def config(kind: str, stage: int = 0, nproc: int = 2, **changes) -> dict:
    data = {
        "kind": kind,
        "model": {"source": "tiny", "overrides": SMALL_MODEL},
        "datasets": [{"task": "addition", "difficulty": {"digits": 2}, "eval_size": 4}],
        "template": "mini",
        "seed": 3,
        "deterministic": True,
        "total_steps": 2,
        "checkpoint_interval": 1,
        "supervised": {"batch_size": 8, "warmup_steps": 1},
        "grpo": {"group_size": 4, "prompts_per_step": 4, "max_new_tokens": 8, "learning_rate": 1e-3, "beta": 0.05},
        "evaluation": {"benchmarks": []},
        "distributed": {"backend": "deepspeed", "zero_stage": stage, "nproc_per_node": nproc},
    }
    data.update(changes)
    return data


def torchrun(tmp_path: Path, data: dict, run_dir: Path, nproc: int = 2) -> None:
    path = tmp_path / f"{run_dir.name}.json"
    path.write_text(json.dumps(data))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
         "-m", "r1model", "train", str(path), "--run-dir", str(run_dir), "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=420,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / "model.safetensors"))


def science(events: list[dict]) -> list:
    """Metrics less wall-clock values, traces and checkpoints: what a resumed run must reproduce."""
    out = []
    for e in events:
        if e["type"] == "metric":
            values = {k: v for k, v in e["values"].items() if not k.startswith(("time/", "throughput/")) and "per_s" not in k}
            out.append(("metric", e["step"], json.dumps(values, sort_keys=True)))
        elif e["type"] == "trace":
            out.append(("trace", e["step"], e["completion"], e["reward"]))
        elif e["type"] == "checkpoint":
            out.append(("checkpoint", e["step"]))
    return out


def assert_written_once(run_dir: Path, steps: int) -> list[dict]:
    """One event stream, seqs 0..n-1 without repeats (rank 1 wrote nothing), one checkpoint per step."""
    events = read_events(run_dir / "events.jsonl")
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert [e["step"] for e in events if e["type"] == "checkpoint"] == list(range(1, steps + 1))
    assert [e["phase"] for e in events if e["type"] == "status"][-1] == "done"
    assert sum(1 for e in events if e["type"] == "status" and e["phase"] == "done") == 1
    return events


# --- config and helpers (fast) ------------------------------------------------------------------------
def test_distributed_section_validates_and_names_fields():
    cfg = validate_run_config(config("sft", stage=3))
    assert cfg.distributed.zero_stage == 3 and cfg.distributed.nproc_per_node == 2
    assert validate_run_config({}).distributed.backend == "none"  # one process by default
    cases = [
        ({"distributed": {"nproc_per_node": 2}}, "needs backend 'deepspeed'"),
        ({"distributed": {"backend": "deepspeed", "zero_stage": 4}}, "distributed.zero_stage"),
        ({"distributed": {"backend": "deepspeed", "offload_params": "cpu"}}, "offload_params needs zero_stage 3"),
        ({"distributed": {"backend": "deepspeed", "offload_optimizer": "cpu"}}, "offload_optimizer needs zero_stage"),
        (config("grpo", grpo={"prompts_per_step": 3}), "grpo.prompts_per_step"),
        (config("sft", supervised={"batch_size": 6}, distributed={"backend": "deepspeed", "nproc_per_node": 2,
                                                                    "gradient_accumulation_steps": 2}),
         "supervised.batch_size"),
    ]
    for data, text in cases:
        with pytest.raises(ConfigError) as info:
            validate_run_config(data)
        assert text in str(info.value)
    schema = validate_run_config({}).model_json_schema()  # the lab's form is generated from it
    assert "distributed" in schema["properties"]


def test_shards_are_contiguous_and_their_union_is_the_batch():
    batch = list(range(12))
    shards = [Distributed("deepspeed", rank, 3, settings=None).shard(batch) for rank in range(3)]
    assert shards == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert Distributed().shard(batch) == batch
    with pytest.raises(ValueError):
        Distributed("deepspeed", 0, 5).shard(batch)


def test_deepspeed_config_from_settings():
    settings = validate_run_config({"kind": "sft", "distributed": {"backend": "deepspeed", "zero_stage": 3, "offload_optimizer": "cpu",
                                                    "offload_params": "cpu", "bf16": True}}).distributed
    ds = deepspeed_config(settings, 1.0, 2)
    assert ds["zero_optimization"] == {"stage": 3, "offload_optimizer": {"device": "cpu"}, "offload_param": {"device": "cpu"}}
    assert ds["bf16"] == {"enabled": True} and ds["gradient_clipping"] == 1.0 and ds["train_batch_size"] == 2
    plain = validate_run_config({"distributed": {"backend": "deepspeed"}}).distributed
    assert deepspeed_config(plain, 1.0, 2)["gradient_clipping"] == 0.0  # ZeRO-0 fp32: torch clips, as one process


def test_deepspeed_is_imported_lazily():
    code = ("import sys; import r1model.train.runner, r1model.train.distributed, r1model.train.grpo_trainer, "
            "r1model.train.supervised; print('deepspeed' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_several_ranks_without_a_backend_fail_clearly(tmp_path, monkeypatch):
    from r1model.train.runner import run

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    code = run(validate_run_config(config("sft", distributed={})), tmp_path / "run", install_signals=False)
    assert code == 1


# --- 2 ranks on CPU (slow) -----------------------------------------------------------------------------
@needs_deepspeed
@pytest.mark.slow
def test_sft_two_ranks_zero0_equals_one_process_and_zero3_checkpoint_loads(tmp_path):
    from r1model.model.deepseek_v3 import DeepSeekV3
    from r1model.train.runner import run

    zero0, zero3, single = tmp_path / "zero0", tmp_path / "zero3", tmp_path / "single"
    torchrun(tmp_path, config("sft", stage=0), zero0)
    torchrun(tmp_path, config("sft", stage=3), zero3)
    assert run(validate_run_config(config("sft", distributed={})), single, install_signals=False) == 0

    for run_dir in (zero0, zero3):
        assert_written_once(run_dir, 2)
        step2 = run_dir / "checkpoints" / "step-2"
        assert (step2 / "deepspeed").is_dir()  # each rank's optimizer partition, for exact resume
        model = DeepSeekV3.from_pretrained(step2)  # consolidated HF layout, ZeRO-3 too: no empty partitions
        assert all(p.numel() > 0 for p in model.parameters())
        assert (step2 / "config.json").read_text() == (single / "checkpoints" / "step-2" / "config.json").read_text()
    # The same global batch of 8: each rank takes 4 sequences, its loss is its token share of the global
    # token-weighted mean × 2, and the averaged gradient is the single process's up to float32 summation
    # order (~1e-7 relative). AdamW's first steps move a weight by about lr × g/|g| (lr 3e-3 at step 1): where
    # a gradient entry is near 0, rounding changes m/√v by a share of that step. Measured: 12 of 51,824 weights
    # differ by more than 1e-5, the largest by 2.8e-5 (1% of one step); atol 1e-4 (3%) says "the same update",
    # a wrong normalisation (×2, a rank's share dropped) moves weights by whole steps. ZeRO-3 is ZeRO-0's math.
    reference = weights(single / "checkpoints" / "step-2")
    for run_dir in (zero0, zero3):
        got = weights(run_dir / "checkpoints" / "step-2")
        assert got.keys() == reference.keys()
        for name, tensor in reference.items():
            torch.testing.assert_close(got[name], tensor, atol=1e-4, rtol=0, msg=f"{run_dir.name}: {name}")
    zero3_weights = weights(zero3 / "checkpoints" / "step-2")
    for name, tensor in weights(zero0 / "checkpoints" / "step-2").items():
        torch.testing.assert_close(zero3_weights[name], tensor, atol=1e-6, rtol=0, msg=name)
    losses = lambda d: [e["values"]["train/loss"] for e in read_events(d / "events.jsonl") if e["type"] == "metric"]  # noqa: E731
    assert losses(zero0) == pytest.approx(losses(single), rel=1e-5)


@needs_deepspeed
@pytest.mark.slow
def test_grpo_two_ranks_zero2_traces_gathered_and_resume_exact(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    data = config("grpo", stage=2, traces_per_step=4)
    torchrun(tmp_path, data, straight)
    events = assert_written_once(straight, 2)
    traces = [e for e in events if e["type"] == "trace"]
    assert len(traces) == 2 * 4 * 4  # every prompt of the step (both ranks' groups), G each
    metric = [e for e in events if e["type"] == "metric"][0]["values"]
    assert metric["groups/kept"] == 4.0  # rewards of both ranks' groups gathered
    # resume: the checkpoint of step 1 (written by 2 ranks, ZeRO-2 partitions) continues to the same step 2
    shutil.copytree(straight, resumed)
    shutil.rmtree(resumed / "checkpoints" / "step-2")
    torchrun(tmp_path, data, resumed)
    assert science(read_events(resumed / "events.jsonl")) == science(events)
    final = weights(resumed / "checkpoints" / "step-2")
    for name, tensor in weights(straight / "checkpoints" / "step-2").items():
        assert torch.equal(final[name], tensor), name


@needs_deepspeed
@pytest.mark.slow
def test_grpo_two_ranks_zero3_matches_zero2_and_its_checkpoint_loads(tmp_path):
    """ZeRO-3 partitions the parameters: the update runs each prompt+completion in one forward (one use of a
    layer per backward) — the same loss as ZeRO-2's shared-prefix update, and a consolidated checkpoint."""
    zero2, zero3 = tmp_path / "zero2", tmp_path / "zero3"
    torchrun(tmp_path, config("grpo", stage=2), zero2)
    torchrun(tmp_path, config("grpo", stage=3), zero3)
    first = {}
    for run_dir in (zero2, zero3):
        events = assert_written_once(run_dir, 2)
        first[run_dir.name] = [e for e in events if e["type"] == "metric"][0]["values"]
    for name in ("loss", "reward", "kl"):
        assert first["zero3"][name] == pytest.approx(first["zero2"][name], rel=1e-4, abs=1e-6), name
    model, _ = load_model(zero3 / "checkpoints" / "step-2", torch.device("cpu"))
    theirs = weights(zero2 / "checkpoints" / "step-2")
    assert set(weights(zero3 / "checkpoints" / "step-2")) == set(theirs)
    assert sum(p.numel() for p in model.parameters()) > 0


CURVE_STEPS = 4
# rewards that vary on a random model's completions: Kimi's length reward gives a wrong completion min(0, λ),
# λ by its length within its group, so the groups have advantages and every step a real update
CURVE_CHANGES = {"total_steps": CURVE_STEPS, "checkpoint_interval": 0, "sampling": {"max_new_tokens": 16},
                 "rewards": [{"name": "accuracy"}, {"name": "length"}]}


def curves(run_dir: Path) -> dict[str, list[float]]:
    events = [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "metric"]
    assert [e["step"] for e in events] == list(range(1, CURVE_STEPS + 1))  # every step, once
    return {name: [e["values"][name] for e in events]
            for name in ("loss", "reward", "accuracy", "kl", "grad_norm", "completions/mean_length")}


@needs_deepspeed
@pytest.mark.slow
def test_grpo_curves_of_two_ranks_zero2_and_zero3_match_one_process(tmp_path):
    """The same global batch (4 prompts × G 4) on 1 process, 2 ranks ZeRO-2 and 2 ranks ZeRO-3, 4 steps. Each
    sample is seeded by its prompt's global index (rollout_seeds), so the ranks draw the completions one
    process draws, and the update's gradient is the single-process gradient up to float32 summation order.
    Tolerance, every step: reward, accuracy and mean completion length equal (the same completions);
    grad_norm within rel 1e-5, kl within rel 1e-4 (float32 summation order; measured ≤ 1.1e-7 and ≤ 6.2e-6);
    loss within rel 1e-4 + abs 5e-8 (the on-policy loss is β·kl plus the group advantages' sum, ~1e-8 of
    float32 cancellation noise, measured abs ≤ 7.5e-9). A dropped rank share or a doubled normalisation
    moves grad_norm by tens of percent; ZeRO-3 counting each prompt's expert routing once per completion
    (its one-pass update) moved kl by 3e-3 at step 4 through the routing-bias update."""
    from r1model.train.runner import run

    single, zero2, zero3 = tmp_path / "single", tmp_path / "zero2", tmp_path / "zero3"
    assert run(validate_run_config(config("grpo", **CURVE_CHANGES, distributed={})), single, install_signals=False) == 0
    torchrun(tmp_path, config("grpo", stage=2, **CURVE_CHANGES), zero2)
    torchrun(tmp_path, config("grpo", stage=3, **CURVE_CHANGES), zero3)
    reference = curves(single)
    assert len(set(reference["reward"])) == CURVE_STEPS and min(reference["grad_norm"]) > 0.1  # the curves move
    for run_dir in (zero2, zero3):
        got = curves(run_dir)
        for name in ("reward", "accuracy", "completions/mean_length"):
            assert got[name] == reference[name], (run_dir.name, name)
        assert got["grad_norm"] == pytest.approx(reference["grad_norm"], rel=1e-5), run_dir.name
        assert got["kl"] == pytest.approx(reference["kl"], rel=1e-4, abs=1e-12), run_dir.name
        assert got["loss"] == pytest.approx(reference["loss"], rel=1e-4, abs=5e-8), run_dir.name


def test_worker_starts_torchrun_when_the_config_asks_for_ranks():
    from workers.supervisor import launch_prefix, trainer_ranks

    assert trainer_ranks(None) == 1 and trainer_ranks({"kind": "sft"}) == 1
    assert trainer_ranks({"distributed": {"backend": "deepspeed", "nproc_per_node": 4}}) == 4
    assert trainer_ranks({"distributed": {"backend": "none", "nproc_per_node": 4}}) == 1
    assert launch_prefix(("/venv/bin/python", "-m", "r1model"), 1) == ["/venv/bin/python", "-m", "r1model"]
    assert launch_prefix(("/venv/bin/python", "-m", "r1model"), 2) == [
        "/venv/bin/python", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "r1model"]
    assert launch_prefix(("r1model",), 2) == ["torchrun", "--standalone", "--nproc-per-node", "2", "--no-python", "r1model"]


@needs_deepspeed
@pytest.mark.slow
def test_transformers_model_sft_two_ranks_zero2_checkpoint_loads(tmp_path):
    from r1model.testing.fixtures import make_tiny_hf_model
    from r1model.train import modeling

    folder = make_tiny_hf_model(tmp_path / "qwen", "qwen2")
    run_dir = tmp_path / "hf"
    torchrun(tmp_path, config("sft", stage=2, model={"source": str(folder)}, template="r1-zero"), run_dir)
    assert_written_once(run_dir, 2)
    step2 = run_dir / "checkpoints" / "step-2"
    model, _ = modeling.load_model(step2, torch.device("cpu"))  # its own HF layout, as a single process saves it
    assert modeling.is_hf_model(model)
    assert any(not torch.equal(tensor, weights(folder)[name]) for name, tensor in weights(step2).items()
               if name in weights(folder))  # trained


@needs_deepspeed
@pytest.mark.slow
def test_transformers_model_zero3_checkpoint_loads_in_transformers(tmp_path):
    """ZeRO-3 partitions a transformers model's weights over the ranks; the checkpoint holds them gathered, in
    the model's own layout: AutoModelForCausalLM.from_pretrained loads every weight, none empty, trained."""
    transformers = pytest.importorskip("transformers")
    from r1model.testing.fixtures import make_tiny_hf_model

    folder = make_tiny_hf_model(tmp_path / "qwen", "qwen2")
    run_dir = tmp_path / "hf3"
    torchrun(tmp_path, config("sft", stage=3, model={"source": str(folder)}, template="r1-zero"), run_dir)
    assert_written_once(run_dir, 2)
    step2 = run_dir / "checkpoints" / "step-2"
    model = transformers.AutoModelForCausalLM.from_pretrained(step2)
    saved, start = weights(step2), weights(folder)
    state = model.state_dict()
    assert set(saved) <= set(state) and set(saved) == set(start)
    for name, tensor in saved.items():
        assert tensor.numel() > 0 and tensor.shape == start[name].shape, name
        assert torch.equal(state[name], tensor), name
    assert sum(not torch.equal(saved[name], start[name]) for name in saved) > len(saved) // 2  # trained
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.isfinite(model(ids).logits).all()


@needs_deepspeed
@pytest.mark.slow
def test_grpo_zero3_with_beta_0_trains_a_step_whose_every_advantage_is_zero(tmp_path):
    """β = 0 and accuracy alone on a random model: every group's rewards are equal, every advantage 0. One process
    skips such rows (they add nothing); under ZeRO-3 each rank still runs them, since a rank with no forward and
    backward would leave the other waiting in ZeRO-3's collectives (it used to stop with "a rank had no rows")."""
    run_dir = tmp_path / "zero3_beta0"
    data = config("grpo", stage=3, total_steps=1, rewards=[{"name": "accuracy"}])
    data["grpo"] = {**data["grpo"], "beta": 0.0}
    torchrun(tmp_path, data, run_dir)
    events = assert_written_once(run_dir, 1)
    [metric] = [e for e in events if e["type"] == "metric"]
    assert metric["values"]["reward"] == 0.0 and metric["values"]["grad_norm"] == 0.0
