"""The trainer's one door to r1model.model and r1model.rollout: build, load, save, run and sample.

Keeping every call into the model package here means the loops read as the algorithm, and a change of
the model API touches one file.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch

from r1model.model.config import ModelConfig
from r1model.model.tokenizer import R1Tokenizer
from r1model.train.config import ModelSpec


def is_checkpoint(source: str) -> bool:
    return Path(source).is_dir() and (Path(source) / "config.json").exists()


def build_model(spec: ModelSpec, device: torch.device, seed: int):
    """(model, tokenizer): a checkpoint folder loaded, or a preset freshly initialised from `seed`."""
    from r1model.model.deepseek_v3 import DeepSeekV3

    if is_checkpoint(spec.source):
        return load_model(spec.source, device)
    if Path(spec.source).exists():
        raise FileNotFoundError(f"model.source {spec.source!r} is a path without config.json (not a checkpoint)")
    config = ModelConfig.preset(spec.source, **spec.overrides)
    torch.manual_seed(seed)
    model = DeepSeekV3(config).to(device)
    return model, R1Tokenizer.build()


def load_model(folder: str | Path, device: torch.device):
    from r1model.model.deepseek_v3 import DeepSeekV3

    model = DeepSeekV3.from_pretrained(str(folder)).to(device)
    return model, R1Tokenizer.load(folder)


def save_model(model, tokenizer, folder: Path) -> None:
    """HF layout: config.json + model.safetensors (save_pretrained) and tokenizer.json."""
    model.save_pretrained(folder, tokenizer=tokenizer)


def running_state(model) -> dict[str, torch.Tensor]:
    """The buffers save_pretrained leaves out (non-persistent: the MoE gates' expert loads behind
    moe/max_violation, ...): a checkpoint keeps them with the trainer state, so a resumed run goes on with them."""
    saved = model.state_dict().keys()
    return {name: buffer.detach().cpu().clone() for name, buffer in model.named_buffers() if name not in saved}


def load_running_state(model, state: dict[str, torch.Tensor]) -> None:
    buffers = dict(model.named_buffers())
    with torch.no_grad():
        for name, value in state.items():
            if name in buffers and buffers[name].shape == value.shape:
                buffers[name].copy_(value)


def frozen_copy(model):
    """The reference model π_ref: a copy of the policy that never trains."""
    reference = copy.deepcopy(model)
    reference.eval()
    for param in reference.parameters():
        param.requires_grad_(False)
    return reference


def forward(model, input_ids, attention_mask=None, labels=None):
    """The model's output (.logits, .loss with labels: LM + MTP + balance losses)."""
    return model(input_ids, attention_mask=attention_mask, labels=labels)


def after_optimizer_step(model) -> None:
    """DeepSeekMoE aux-loss-free balancing: nudge each expert's routing bias after every optimizer step."""
    update = getattr(model, "update_expert_bias", None)
    if callable(update):
        update()


def moe_max_violation(model) -> float | None:
    """Expert load imbalance, max load / mean load − 1, averaged over the MoE layers (model.expert_load_stats)."""
    stats_fn = getattr(model, "expert_load_stats", None)
    if not callable(stats_fn):
        return None
    value = stats_fn().get("moe/max_violation")
    return None if value is None else float(value)


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text)


def eos_id(tokenizer) -> int:
    return tokenizer.eos_id


def pad_id(tokenizer) -> int:
    return tokenizer.pad_id


def make_engine(model, tokenizer, kind: str = "builtin"):
    """The rollout engine named by grpo.rollout_engine for `model`."""
    from r1model.rollout import BuiltinEngine, SpeculativeEngine

    if kind == "speculative":
        if not len(getattr(model, "mtp", ())):
            raise ValueError("grpo.rollout_engine: speculative decoding needs a model with an MTP module "
                             "(model num_nextn_predict_layers ≥ 1)")
        return SpeculativeEngine(model, tokenizer)
    return BuiltinEngine(model, tokenizer)


def left_pad(prompts: list[list[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt ids and attention mask (B, P), as the rollout engine lays prompts out."""
    from r1model.rollout.engine import left_pad as engine_left_pad

    return engine_left_pad(prompts, pad, device)


def sync_engine(engine, model) -> None:
    """Give the rollout engine the current weights (a no-op when it samples from the same module)."""
    update = getattr(engine, "update_weights", None)
    if callable(update):
        update(model)


def sampling_params(tokenizer, *, temperature: float, top_p: float, top_k: int, max_new_tokens: int, seed: int):
    """Sampling settings; the engine seeds a fresh generator from `seed`, so a step's samples depend only
    on (weights, prompts, seed) — what exact resume needs. The engine stops at eos and at </answer>."""
    from r1model.rollout import SamplingParams

    return SamplingParams(
        temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens,
        stop_token_ids=(tokenizer.eos_id,), seed=seed,
    )


def is_truncated(completion) -> bool:
    """Cut off by the token limit rather than ended by the model."""
    return completion.finish_reason == "length"
