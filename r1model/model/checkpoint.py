"""HF DeepseekV3 checkpoint folders: config.json, model.safetensors (HF key names), tokenizer.json.

Our module names already are transformers' below ``model.``; the mapping only adds that prefix, moves the
MTP modules to ``model.layers.{num_hidden_layers + k}`` and, on load, accepts what other writers produce:
fused experts (transformers 5.x in-memory ``mlp.experts.gate_up_proj`` / ``down_proj``), FP8 weights with
``weight_scale_inv``, and the copies of embedding/head that the official checkpoint stores in MTP layers.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from r1model.model.config import CONFIG_NAME, ModelConfig
from r1model.model.fp8 import dequantize_blocks

WEIGHTS_NAME = "model.safetensors"


def to_hf_key(key: str, num_hidden_layers: int) -> str:
    if key.startswith("lm_head."):
        return key
    m = re.match(r"mtp\.(\d+)\.(.*)", key)
    if m:
        return f"model.layers.{num_hidden_layers + int(m.group(1))}.{m.group(2)}"
    return "model." + key


def from_hf_key(key: str, num_hidden_layers: int) -> str:
    if key.startswith("lm_head."):
        return key
    if not key.startswith("model."):
        return key  # reported as unexpected
    rest = key[len("model."):]
    m = re.match(r"layers\.(\d+)\.(.*)", rest)
    if m and int(m.group(1)) >= num_hidden_layers:
        return f"mtp.{int(m.group(1)) - num_hidden_layers}.{m.group(2)}"
    return rest


def hf_state_dict(model) -> dict[str, torch.Tensor]:
    """The model's weights under HF key names (fp32, contiguous; a tied head is written once)."""
    n = model.config.num_hidden_layers
    out = {}
    for key, value in model.state_dict().items():
        if key == "lm_head.weight" and model.config.tie_word_embeddings:
            continue
        out[to_hf_key(key, n)] = value.detach().to("cpu").contiguous()
    return out


def save_pretrained(model, directory: str | Path, tokenizer=None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_NAME).write_text(json.dumps(model.config.to_hf_dict(), indent=2, sort_keys=True))
    save_file(hf_state_dict(model), str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    if tokenizer is not None:
        tokenizer.save(directory)
    return directory


def read_config(directory: str | Path) -> ModelConfig:
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no config.json")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    try:
        return ModelConfig.from_hf_dict(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def read_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    """model.safetensors, or every shard of model.safetensors.index.json."""
    directory = Path(directory)
    single = directory / WEIGHTS_NAME
    if single.is_file():
        return load_file(str(single))
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        weights: dict[str, torch.Tensor] = {}
        for shard in shards:
            weights.update(load_file(str(directory / shard)))
        return weights
    raise FileNotFoundError(f"{directory}: no {WEIGHTS_NAME}")


def normalize_hf_weights(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Dequantise FP8 weights and split fused expert tensors into per-expert HF keys."""
    out: dict[str, torch.Tensor] = {}
    for key, value in weights.items():
        if key.endswith(".weight_scale_inv"):
            continue
        scale = weights.get(key + "_scale_inv")
        if scale is not None:  # FP8 checkpoint: 128x128 block scales, multiplied (despite the name)
            value = dequantize_blocks(value, scale)
        m = re.match(r"(.*\.mlp\.experts)\.(gate_up_proj|down_proj)(\.weight)?$", key)
        if m and value.dim() == 3:
            prefix, kind = m.group(1), m.group(2)
            for e in range(value.shape[0]):
                if kind == "gate_up_proj":  # (E, 2I, d): gate rows first, then up
                    gate, up = value[e].chunk(2, dim=0)
                    out[f"{prefix}.{e}.gate_proj.weight"] = gate
                    out[f"{prefix}.{e}.up_proj.weight"] = up
                else:  # (E, d, I)
                    out[f"{prefix}.{e}.down_proj.weight"] = value[e]
            continue
        out[key] = value.float() if value.is_floating_point() else value
    return out


def load_hf_weights(model, weights: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Copy HF-named weights into the model; raise ValueError listing missing/unexpected keys by name."""
    n = model.config.num_hidden_layers
    weights = normalize_hf_weights(weights)
    expected = model.state_dict()
    ours: dict[str, torch.Tensor] = {}
    unexpected = []
    for key, value in weights.items():
        name = from_hf_key(key, n)
        if name in expected:
            ours[name] = value
        elif re.match(r"mtp\.\d+\.(embed_tokens|shared_head\.head)\.weight$", name) or "rotary_emb" in name:
            continue  # the official checkpoint repeats the shared embedding / head inside each MTP layer
        else:
            unexpected.append(key)
    missing = [to_hf_key(k, n) for k in expected if k not in ours
               and not (k == "lm_head.weight" and model.config.tie_word_embeddings)]
    if missing or unexpected:
        raise ValueError(f"{source}: weights do not match the config. "
                         f"Missing keys ({len(missing)}): {_names(missing)}. "
                         f"Unexpected keys ({len(unexpected)}): {_names(unexpected)}")
    wrong = [f"{to_hf_key(k, n)} {tuple(v.shape)} != {tuple(expected[k].shape)}"
             for k, v in ours.items() if v.shape != expected[k].shape]
    if wrong:
        raise ValueError(f"{source}: shape mismatch: {_names(wrong)}")
    model.load_state_dict(ours, strict=False)


def load_pretrained(cls, directory: str | Path, **config_overrides):
    """Build the model from config.json and load model.safetensors.

    A checkpoint without any MTP weights (transformers drops them) loads with num_nextn_predict_layers = 0.
    """
    directory = Path(directory)
    config = read_config(directory)
    weights = read_weights(directory)
    mtp_prefix = f"model.layers.{config.num_hidden_layers}."
    if config.num_nextn_predict_layers and not any(k.startswith(mtp_prefix) for k in weights):
        warnings.warn(f"{directory}: no MTP weights; loading with num_nextn_predict_layers=0", stacklevel=2)
        config_overrides.setdefault("num_nextn_predict_layers", 0)
    if config_overrides:
        config = config.replace(**config_overrides)
    model = cls(config)
    load_hf_weights(model, weights, source=str(directory / WEIGHTS_NAME))
    return model


def _names(keys: list[str], limit: int = 20) -> str:
    if not keys:
        return "none"
    shown = ", ".join(keys[:limit])
    return shown + (f", ... and {len(keys) - limit} more" if len(keys) > limit else "")
