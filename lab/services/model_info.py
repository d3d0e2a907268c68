"""What a model folder is, read without torch: config.json, the tokenizer files and the safetensors headers.

A safetensors file starts with 8 bytes (little-endian header length N), then N bytes of JSON naming each
tensor's dtype and shape: the parameter count is the sum of the shapes' products, exact, without reading a
single weight. A sharded model lists its files in model.safetensors.index.json. Active parameters of a
mixture-of-experts model are an estimate from its config (the routed experts a token does not use are
left out). Only files inside the folder are read (a symlink out of it is ignored).
"""
from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

MAX_HEADER_BYTES = 100 * 1024 * 1024  # a safetensors header bigger than this is not one
MAX_JSON_BYTES = 20 * 1024 * 1024  # config.json, tokenizer_config.json, the shard index
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx")
# (routed experts, experts per token, hidden width of one routed expert) under the names architectures use
EXPERT_KEYS = ("n_routed_experts", "num_experts", "num_local_experts")


def _inside(path: Path, folder: Path) -> bool:
    real, root = os.path.realpath(path), os.path.realpath(folder)
    return real == root or real.startswith(root + os.sep)


def _file(folder: Path, name: str) -> Path | None:
    """folder/name when it is a regular file inside the folder, else None."""
    if not name or os.path.isabs(name) or ".." in Path(name).parts:
        return None
    path = folder / name
    return path if path.is_file() and _inside(path, folder) else None


def _json(folder: Path, name: str):
    path = _file(folder, name)
    if path is None or path.stat().st_size > MAX_JSON_BYTES:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def safetensors_parameters(path: Path) -> int:
    """The number of parameters in one safetensors file, from its header; ValueError when it is not one."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise ValueError(f"{path.name}: shorter than a safetensors header")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER_BYTES or length > os.fstat(handle.fileno()).st_size - 8:
            raise ValueError(f"{path.name}: header length {length} does not fit the file")
        header = json.loads(handle.read(length).decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"{path.name}: header is not a JSON object")
    total = 0
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        shape = tensor.get("shape") if isinstance(tensor, dict) else None
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ValueError(f"{path.name}: tensor {name!r} has no valid shape")
        total += math.prod(shape)
    return total


def _weight_files(folder: Path) -> tuple[list[Path], str | None]:
    """The safetensors files of the model (the shards the index names, or model.safetensors), or an error."""
    index = _json(folder, "model.safetensors.index.json")
    if isinstance(index, dict) and isinstance(index.get("weight_map"), dict):
        names = sorted({v for v in index["weight_map"].values() if isinstance(v, str)})
        files = [_file(folder, name) for name in names]
        if not names or any(f is None for f in files):
            return [], "a shard the index names is missing"
        return files, None
    single = _file(folder, "model.safetensors")
    if single is not None:
        return [single], None
    return [], "no safetensors weights"


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _experts(config: dict) -> dict | None:
    routed = next((_int(config.get(k)) for k in EXPERT_KEYS if _int(config.get(k))), None)
    per_token = _int(config.get("num_experts_per_tok")) or _int(config.get("moe_topk"))
    if not routed or not per_token or routed <= 1:
        return None
    out = {"routed": routed, "per_token": per_token}
    shared = _int(config.get("n_shared_experts"))
    if shared:
        out["shared"] = shared
    return out


def _inactive_estimate(config: dict, experts: dict) -> int | None:
    """Parameters of the routed experts one token does not use, from the config: per MoE layer
    (routed − per_token) experts of 3 · hidden · expert_width (a SwiGLU MLP: gate, up, down)."""
    hidden, layers = _int(config.get("hidden_size")), _int(config.get("num_hidden_layers"))
    width = _int(config.get("moe_intermediate_size"))
    if width is None and "num_local_experts" in config:  # Mixtral: every expert is a full MLP
        width = _int(config.get("intermediate_size"))
    if not hidden or not layers or not width:
        return None
    moe_layers = layers - (_int(config.get("first_k_dense_replace")) or 0)
    step = _int(config.get("moe_layer_freq")) or _int(config.get("decoder_sparse_step")) or 1
    moe_layers = max(0, math.ceil(moe_layers / step))
    return moe_layers * (experts["routed"] - experts["per_token"]) * 3 * hidden * width


def read_model_info(folder: str | Path) -> dict:
    """{"architecture", "model_type", "hidden_size", "layers", "context_length", "vocab_size", "experts",
    "parameters", "active_parameters", "active_is_estimate", "tokenizer", "chat_template", "problems"}:
    what the Models page shows. Values it cannot read are None and a line in "problems"."""
    folder = Path(folder)
    problems: list[str] = []
    config = _json(folder, "config.json")
    if not isinstance(config, dict):
        problems.append("no readable config.json")
        config = {}
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    # a multimodal config keeps the language model's sizes in text_config
    merged = {**text, **{k: v for k, v in config.items() if k != "text_config" and v is not None}}
    architectures = config.get("architectures")
    architecture = architectures[0] if isinstance(architectures, list) and architectures and isinstance(architectures[0], str) else None
    experts = _experts(merged)

    parameters = None
    files, missing = _weight_files(folder)
    if missing:
        problems.append(missing)
    else:
        try:
            parameters = sum(safetensors_parameters(f) for f in files)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            problems.append(f"unreadable safetensors header ({exc})")
    active, estimate = parameters, False
    if experts and parameters is not None:
        inactive = _inactive_estimate(merged, experts)
        active, estimate = (parameters - inactive, True) if inactive is not None and inactive < parameters else (None, True)

    tokenizer_config = _json(folder, "tokenizer_config.json")
    tokenizer = any(_file(folder, name) for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model"))
    template = isinstance(tokenizer_config, dict) and bool(tokenizer_config.get("chat_template"))
    template = template or _file(folder, "chat_template.jinja") is not None or _file(folder, "chat_template.json") is not None
    return {
        "architecture": architecture or (config.get("model_type") if isinstance(config.get("model_type"), str) else None),
        "model_type": config.get("model_type") if isinstance(config.get("model_type"), str) else None,
        "hidden_size": _int(merged.get("hidden_size")) or _int(merged.get("d_model")) or _int(merged.get("n_embd")),
        "layers": _int(merged.get("num_hidden_layers")) or _int(merged.get("n_layer")),
        "context_length": next((_int(merged.get(k)) for k in CONTEXT_KEYS if _int(merged.get(k))), None),
        "vocab_size": _int(merged.get("vocab_size")),
        "experts": experts,
        "parameters": parameters,
        "active_parameters": active,
        "active_is_estimate": estimate,
        "tokenizer": tokenizer,
        "chat_template": template,
        "problems": problems,
    }
