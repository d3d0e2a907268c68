"""A chain's model stage: a fresh transformers causal LM (or a given model folder, checked) written as a
checkpoint for the next stages to pretrain, fine-tune or RL.

    spec = {"arch": "qwen2", "hidden_size": 128, "layers": 3, "seed": 0}   # a fresh tiny Qwen2
    spec = {"source": "/models/my-student"}                               # a folder, copied after the checks
    check_spec(spec, "chain distill-mini stage qwen2-init")               # no torch; ValueError naming the field
    summary = create_model(spec, out_folder, "...")                       # writes out_folder (HF layout)

A fresh model is r1model.testing.fixtures' tiny config of `arch` at the given size with its byte-level BPE
tokenizer (trained here on a small corpus of R1 text and arithmetic; tags as special tokens), built base-style:
EOS is end-of-text, so prompt_format auto renders the same plain template as for the built-in model.

A model that a text-SFT student needs and does not have is refused, the field named: not a causal LM (an
encoder-decoder, or a model whose earlier predictions change when a later token does: BERT without
is_decoder), a tokenizer without EOS, or a tokenizer that cannot write R1's text back unchanged (decode of
encode). Vocabularies may differ from the teacher's: the student learns the teacher's text, not its logits.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from r1model.model.config import read_folder_config

FRESH_ARCHS = ("qwen2", "llama")
SPEC_KEYS = {"arch", "hidden_size", "layers", "head_dim", "vocab_size", "init_std", "seed", "source"}
DEFAULTS = {"arch": "qwen2", "hidden_size": 128, "layers": 3, "head_dim": 32, "vocab_size": 400,
            "init_std": 0.02, "seed": 0, "source": None}


class ModelSpecError(ValueError):
    """A model stage's spec (or the folder it names) cannot make a student; the message names the field."""


def _int(spec: dict, key: str, where: str, low: int = 1) -> int:
    value = spec[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ModelSpecError(f"{where}: {key} must be an integer >= {low}, got {value!r}")
    return value


def normalise_spec(spec: dict, where: str) -> dict:
    """The spec with defaults filled in and every field checked (no torch)."""
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise ModelSpecError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(SPEC_KEYS))})")
    spec = {**DEFAULTS, **spec}
    if spec["source"] is None:
        if spec["arch"] not in FRESH_ARCHS:
            raise ModelSpecError(f"{where}: arch {spec['arch']!r} cannot be built fresh (one of "
                                 f"{', '.join(FRESH_ARCHS)}; give source=FOLDER for another causal LM)")
        for key in ("hidden_size", "layers", "head_dim", "vocab_size"):
            _int(spec, key, where)
        _int(spec, "seed", where, low=0)
        if spec["hidden_size"] % spec["head_dim"]:
            raise ModelSpecError(f"{where}: hidden_size {spec['hidden_size']} is not a multiple of head_dim "
                                 f"{spec['head_dim']}")
        std = spec["init_std"]
        if not isinstance(std, (int, float)) or isinstance(std, bool) or std <= 0:
            raise ModelSpecError(f"{where}: init_std must be a number > 0, got {spec['init_std']!r}")
    elif not isinstance(spec["source"], str) or not spec["source"]:
        raise ModelSpecError(f"{where}: source must be a model folder path, got {spec['source']!r}")
    return spec


def check_spec(spec: dict, where: str) -> dict:
    """normalise_spec, and for a source folder: it exists, has a config.json whose model_type is a decoder-only
    causal LM transformers (or the built-in model) knows. ModelSpecError naming the field."""
    spec = normalise_spec(spec, where)
    if spec["source"] is not None:
        _check_source_config(Path(spec["source"]), f"{where}: source {spec['source']!r}")
    return spec


def _check_source_config(folder: Path, where: str) -> str:
    try:
        config, model_type = read_folder_config(folder)
    except ValueError as exc:
        raise ModelSpecError(f"{where}: {exc}") from None
    if model_type == "deepseek_v3":
        return model_type
    if config.get("is_encoder_decoder"):
        raise ModelSpecError(f"{where}: model_type {model_type!r} is an encoder-decoder, not a causal LM; "
                             "distillation here is SFT of a decoder-only causal LM on the teacher's text")
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ModelSpecError(f"{where}: model_type {model_type!r} is not a causal LM (transformers has no "
                             "AutoModelForCausalLM class for it)")
    return model_type


# What a student must be able to read and write: R1's plain prompt and a worked answer in the tags.
PROBE_PROBLEM = "4821+377"
PROBE_THINK = "1+7+0=8\n2+7+0=9\n8+3+0=11\n4+0+1=5"


def probe_text() -> str:
    from r1model.template import format_completion, render_prompt

    return render_prompt(PROBE_PROBLEM, "mini") + format_completion(PROBE_THINK, "5198")


def check_student(folder: Path, where: str) -> dict:
    """Load the folder as the trainer does and check it can be a text-SFT student: its tokenizer has an EOS and
    writes the probe text back unchanged; its logits are causal (changing the last token leaves the earlier
    positions' logits as they were). Returns {model_type, parameters, vocab_size}; ModelSpecError otherwise."""
    import torch

    from r1model.train.modeling import load_model

    try:
        model, tokenizer = load_model(folder, torch.device("cpu"), source=str(folder))
    except ValueError as exc:  # ModelSourceError: no EOS, an unloadable model or tokenizer
        raise ModelSpecError(f"{where}: {exc}") from None
    text = probe_text()
    ids = tokenizer.encode(text)
    back = tokenizer.decode(ids)
    if back != text:
        first = next((i for i, (a, b) in enumerate(zip(text, back)) if a != b), min(len(text), len(back)))
        raise ModelSpecError(f"{where}: its tokenizer cannot write R1's text back unchanged (decode(encode(text)) "
                             f"differs at character {first}: {text[first:first + 12]!r} became "
                             f"{back[first:first + 12]!r}); SFT on the teacher's text needs a tokenizer that "
                             "round-trips it (the vocabulary itself may differ from the teacher's)")
    model.eval()
    with torch.no_grad():
        a = torch.tensor([ids])
        b = a.clone()
        b[0, -1] = (b[0, -1] + 1) % len(tokenizer)
        logits_a, logits_b = model(a).logits[0, :-1], model(b).logits[0, :-1]
    if not torch.allclose(logits_a, logits_b, atol=1e-5, rtol=1e-4):
        raise ModelSpecError(f"{where}: not a causal LM: its predictions for earlier tokens change when the last "
                             "token does (a bidirectional encoder, e.g. BERT without is_decoder)")
    return {"model_type": getattr(model, "model_type", None) or "deepseek_v3",
            "parameters": sum(p.numel() for p in model.parameters()), "vocab_size": len(tokenizer)}


def create_model(spec: dict, out: str | Path, where: str) -> dict:
    """Write the spec's model to `out` (replaced if there): a fresh `arch` model, or a copy of `source`; then
    check_student. Returns a summary (what was written, its size)."""
    spec = check_spec(spec, where)
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if spec["source"] is not None:
        shutil.copytree(spec["source"], out)
        made: dict[str, Any] = {"source": spec["source"]}
        where = f"{where}: source {spec['source']!r}"
    else:
        _write_fresh(spec, out)
        made = {key: spec[key] for key in ("arch", "hidden_size", "layers", "head_dim", "seed")}
        where = f"{where}: arch {spec['arch']!r}"
    return {**made, **check_student(out, where)}


def _write_fresh(spec: dict, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from r1model.model.hf import _quiet_transformers
    from r1model.testing.fixtures import tiny_config, train_tokenizer

    _quiet_transformers()
    tokenizer = train_tokenizer(spec["arch"], instruct=False, vocab_size=spec["vocab_size"])
    config = tiny_config(spec["arch"], tokenizer, hidden_size=spec["hidden_size"], head_dim=spec["head_dim"],
                         layers=spec["layers"])
    config.initializer_range = float(spec["init_std"])
    torch.manual_seed(spec["seed"])
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
