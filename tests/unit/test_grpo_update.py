"""The GRPO update runs length-bucketed micro-batches: it must equal one padded batch exactly."""
import copy

import pytest
import torch

import r1model.train.grpo_trainer as grpo_trainer
from r1model.events import EventWriter
from r1model.train import modeling
from r1model.train.config import validate_run_config
from r1model.train.context import RunContext
from r1model.train.data import DataSource

torch.set_num_threads(1)
SMALL_MODEL = {"hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16, "num_hidden_layers": 2,
               "num_attention_heads": 2, "q_lora_rank": 16, "kv_lora_rank": 16, "qk_nope_head_dim": 8,
               "qk_rope_head_dim": 8, "v_head_dim": 8, "num_nextn_predict_layers": 0}


def _update_once(tmp_path, aggregation, single_batch, monkeypatch):
    config = validate_run_config({
        "model": {"source": "tiny", "overrides": SMALL_MODEL}, "template": "mini",
        "datasets": [{"task": "addition", "difficulty": {"digits": 2}}],
        "grpo": {"group_size": 4, "prompts_per_step": 2, "max_new_tokens": 12, "beta": 0.1, "num_iterations": 2,
                 "minibatches": 2, "loss_aggregation": aggregation, "learning_rate": 1e-2},
    })
    if single_batch:
        monkeypatch.setattr(grpo_trainer, "length_buckets", lambda rows, length=None: [list(rows)])
    ctx = RunContext(config, tmp_path, EventWriter(tmp_path), torch.device("cpu"))
    model, tokenizer = modeling.build_model(config.model, ctx.device, seed=0)
    trainer = grpo_trainer.GRPOTrainer(ctx, model, tokenizer, DataSource(config), reference=modeling.frozen_copy(model))
    prompts = [tokenizer.encode(f"User: {a}+{a}\nAssistant: ") for a in (1, 22, 333, 4444) for _ in range(2)]
    # completions of very different lengths, so the buckets differ from one padded batch
    lengths = [1, 12, 2, 11, 3, 10, 4, 9]
    completions = [type("C", (), {"token_ids": [5 + (k % 7) for k in range(n)]})() for n in lengths]
    advantages = torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.0, 1.5])
    values = trainer._update(1, list(range(8)), prompts, completions, advantages)
    return values, [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("aggregation", ["grpo", "dapo", "dr_grpo"])
def test_bucketed_update_equals_one_padded_batch(tmp_path, monkeypatch, aggregation):
    bucketed, params_a = _update_once(tmp_path / "a", aggregation, False, monkeypatch)
    single, params_b = _update_once(tmp_path / "b", aggregation, True, monkeypatch)
    for name in ("loss", "kl", "entropy", "grad_norm", "clip_ratio/low_mean", "clip_ratio/high_mean"):
        assert bucketed[name] == pytest.approx(single[name], rel=1e-4, abs=1e-6), name
    # after 4 AdamW steps (lr 1e-2) the weights agree to a small fraction of one step: Adam's normalisation
    # magnifies float-rounding differences of near-zero gradients, nothing more
    assert max(float((a - b).abs().max()) for a, b in zip(params_a, params_b)) < 0.02 * 1e-2
    assert bucketed["kl"] > 0  # the second epoch moved the policy away from the reference
