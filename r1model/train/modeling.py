"""The trainer's one door to r1model.model and r1model.generation: build, load, save, run and sample.

Keeping every call into the model package here means the loops read as the algorithm, and a change of
the model API touches one file.

Two model families stand behind the same interface (what the loops call):
  model:      forward(ids, attention_mask, labels) -> .logits (.loss, .lm_loss with labels);
              encode_prefix(prompt ids, mask) + completion_logits(prefix, group, ids, mask): teacher-forced
              logits of completions (`completion_logprobs` gives their per-token logprobs and entropies);
              save_pretrained(folder, tokenizer=) in the HF layout of its own architecture;
              parameters / state_dict / train / eval (an nn.Module).
  tokenizer:  encode(text) / decode(ids), eos_id, pad_id (pad falls back to EOS), token_id(tag); HF
              tokenizers also render_chat(messages) (their chat template).
  engine:     make_engine(model, tokenizer).generate(prompt ids, sampling_params(...)) -> completions with
              per-token logprobs (log_softmax(logits / T) of the sampled token) and entropies.
The built-in DeepSeekV3 with R1Tokenizer and BuiltinEngine (a preset, a checkpoint of it, any deepseek_v3
folder); any other transformers causal LM as r1model.model.hf.HFCausalLM with HFTokenizer and HFEngine
(a local HF folder, or a hub id 'org/name[@revision]' downloaded into HF_HOME). `model.source` says which.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch

from r1model.model.config import PRESETS, ModelConfig, is_model_folder
from r1model.model.tokenizer import R1Tokenizer
from r1model.template import chat_messages, render_prompt
from r1model.train.config import ModelSpec

PROMPT_FORMATS = ("auto", "plain", "chat")


def is_hf_model(model) -> bool:
    """A transformers model behind the interface (not the built-in DeepSeekV3)."""
    from r1model.model.hf import HFCausalLM

    return isinstance(model, HFCausalLM)


HUB_PREFIX = "hf:"


def resolve_source(source: str) -> tuple[str, str | Path]:
    """("preset", name) or ("folder", local folder): a preset name, an existing folder (it must hold a
    config.json), or a hub id 'org/name[@revision]' (its snapshot in HF_HOME, downloaded when missing);
    'hf:org/name[@revision]' is the hub id and nothing else (the lab's workers pass hub models so).
    ModelSourceError (a ValueError) naming `model.source` otherwise."""
    from r1model.model.hf import ModelSourceError, download_hub_model, parse_hub_id

    if source in PRESETS:
        return "preset", source
    if source.startswith(HUB_PREFIX):  # explicitly the hub: never a local folder of the same name
        if parse_hub_id(source[len(HUB_PREFIX):]) is None:
            raise ModelSourceError(f"model.source {source!r} is not a hub id (hf:org/name[@revision])")
        return "folder", download_hub_model(source[len(HUB_PREFIX):])
    path = Path(source)
    if path.exists():
        if not is_model_folder(path):
            raise ModelSourceError(f"model.source {source!r} is a path without config.json (not a model folder)")
        return "folder", path
    if parse_hub_id(source) is not None:
        return "folder", download_hub_model(source)
    raise ModelSourceError(
        f"model.source {source!r}: not a preset ({', '.join(sorted(PRESETS))}), not an existing folder and "
        "not a hub id 'org/name[@revision]'"
    )


def gemm_precision(precision: str) -> str:
    """The built-in model's Linear GEMM precision for a run's `precision`: fp8 GEMMs for fp8, else fp32
    (bf16 / fp16 are the run's autocast, around fp32 Linears)."""
    return "fp8" if precision == "fp8" else "fp32"


def build_model(spec: ModelSpec, device: torch.device, seed: int, precision: str | None = None):
    """(model, tokenizer): a model folder or hub model loaded, or a preset freshly initialised from `seed`.
    `precision` (the run's: fp32 | bf16 | fp16 | fp8) sets the built-in model's GEMMs (gemm_precision); None
    keeps the preset's or folder's own."""
    from r1model.model.deepseek_v3 import DeepSeekV3

    kind, where = resolve_source(spec.source)
    if kind == "folder":
        return load_model(where, device, source=spec.source, precision=precision)
    extra = {} if precision is None else {"precision": gemm_precision(precision)}
    config = ModelConfig.preset(spec.source, **{**spec.overrides, **extra})
    torch.manual_seed(seed)
    model = DeepSeekV3(config).to(device)
    return model, R1Tokenizer.for_config(config)  # the preset's tokenizer: char-level or byte-level BPE


def load_model(folder: str | Path, device: torch.device, source: str | None = None, precision: str | None = None):
    """(model, tokenizer) of a local model folder: model_type deepseek_v3 loads into the built-in DeepSeekV3
    (with R1Tokenizer when the folder's tokenizer is one, else its own tokenizer), any other architecture
    transformers supports loads with AutoModelForCausalLM. `source` (model.source) names it in errors;
    `precision` as in build_model (fp8 is refused for a transformers model: FP8 GEMMs are the built-in's)."""
    from r1model.model.hf import HFTokenizer, load_causal_lm, read_model_type

    folder = Path(folder)
    source = str(folder) if source is None else source
    model_type = read_model_type(folder, source)
    if model_type != "deepseek_v3":
        if precision == "fp8":
            raise ValueError(f"precision: fp8 needs the built-in DeepSeek-V3 model (FP8 block-scaled GEMMs); "
                             f"model.source {source!r} is a {model_type} model — use fp32, bf16 or fp16")
        model = load_causal_lm(folder, source, device)
        return model, HFTokenizer.load(folder, source)
    from r1model.model.deepseek_v3 import DeepSeekV3

    extra = {} if precision is None else {"precision": gemm_precision(precision)}
    model = DeepSeekV3.from_pretrained(str(folder), **extra).to(device)
    try:
        tokenizer = R1Tokenizer.load(folder)
    except Exception:  # noqa: BLE001 - not R1's character tokenizer (no tokenizer.json, other tokens)
        tokenizer = HFTokenizer.load(folder, source)
    return model, tokenizer


def save_model(model, tokenizer, folder: Path) -> None:
    """HF layout: config.json + model.safetensors (save_pretrained) and the tokenizer's files."""
    model.save_pretrained(folder, tokenizer=tokenizer)


# ---- prompts -------------------------------------------------------------------------------------
def prompt_format_of(tokenizer, prompt_format: str = "auto") -> str:
    """'plain' or 'chat'. auto = chat when the tokenizer has a chat template and the model looks
    instruct-tuned (its EOS / generation EOS is the template's end-of-turn token), else plain."""
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"prompt_format must be one of {', '.join(PROMPT_FORMATS)}, got {prompt_format!r}")
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if prompt_format == "chat" and not has_template:
        raise ValueError("prompt_format 'chat': the tokenizer of model.source has no chat template "
                         "(use 'plain', or a model whose tokenizer_config.json has one)")
    if prompt_format == "auto":
        return "chat" if has_template and getattr(tokenizer, "looks_instruct", False) else "plain"
    return prompt_format


def prompt_text(tokenizer, problem_text: str, template: str = "r1-zero", prompt_format: str = "auto") -> str:
    """The prompt the model sees for a problem. plain: the template as text (after the BOS a base model's
    tokenizer adds by default); chat: the model's chat template with the R1 instruction as system message."""
    if prompt_format_of(tokenizer, prompt_format) == "chat":
        return tokenizer.render_chat(chat_messages(problem_text, template))
    return getattr(tokenizer, "bos_text", "") + render_prompt(problem_text, template)


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


def make_engine(model, tokenizer, kind: str = "builtin", options=None, workdir=None, seed: int = 0):
    """The generation engine named by sampling.engine for `model`; `options` (the SamplingConfig) gives the vllm
    engine's vllm_mode and vllm_python, `workdir` where it keeps its checkpoint and server log."""
    from r1model.generation import BuiltinEngine, SpeculativeEngine

    if kind == "vllm":
        from r1model.generation.vllm_engine import make_vllm_engine

        return make_vllm_engine(model, tokenizer, mode=getattr(options, "vllm_mode", "server"),
                                python=getattr(options, "vllm_python", ""), workdir=workdir, seed=seed)
    if kind == "speculative":
        if not len(getattr(model, "mtp", ())):
            raise ValueError("sampling.engine: speculative decoding needs a model with an MTP module "
                             "(model num_nextn_predict_layers ≥ 1)")
        return SpeculativeEngine(model, tokenizer)
    if is_hf_model(model):
        from r1model.generation.hf_engine import HFEngine

        return HFEngine(model, tokenizer)
    return BuiltinEngine(model, tokenizer)


def completion_logprobs(model, prompts: list[list[int]], completions: list[list[int]], pad: int,
                        temperature: float = 1.0) -> tuple[list[list[float]], list[list[float]]]:
    """Teacher-forced (logprobs, entropies) of each completion after its prompt, as the GRPO update computes
    them (encode_prefix + completion_logits + token_logprobs), one list per row."""
    from r1model.train.grpo import token_logprobs

    device = next(model.parameters()).device
    ids, mask = left_pad(prompts, pad, device)
    width = max(len(c) for c in completions)
    tail = torch.full((len(completions), width), pad, dtype=torch.long, device=device)
    tail_mask = torch.zeros_like(tail)
    for i, c in enumerate(completions):
        tail[i, :len(c)] = torch.tensor(c, dtype=torch.long)
        tail_mask[i, :len(c)] = 1
    logits = model.completion_logits(model.encode_prefix(ids, mask), torch.arange(len(prompts), device=device),
                                     tail, tail_mask)
    logp, entropy = token_logprobs(logits, tail, temperature or 1.0)
    return ([logp[i, :len(c)].tolist() for i, c in enumerate(completions)],
            [entropy[i, :len(c)].tolist() for i, c in enumerate(completions)])


def left_pad(prompts: list[list[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt ids and attention mask (B, P), as the rollout engine lays prompts out."""
    from r1model.generation.engine import left_pad as engine_left_pad

    return engine_left_pad(prompts, pad, device)


def close_engine(engine) -> None:
    """Stop what the engine runs beside the trainer (the vLLM server); a no-op for the in-process engines."""
    close = getattr(engine, "close", None)
    if callable(close):
        close()


def sync_engine(engine, model) -> None:
    """Give the rollout engine the current weights (a no-op when it samples from the same module)."""
    update = getattr(engine, "update_weights", None)
    if callable(update):
        update(model)


def sampling_params(tokenizer, *, temperature: float, top_p: float, top_k: int, max_new_tokens: int, seed: int):
    """Sampling settings; the engine seeds a fresh generator from `seed`, so a step's samples depend only
    on (weights, prompts, seed) — what exact resume needs. The engine stops at eos and at </answer>."""
    from r1model.generation import SamplingParams

    return SamplingParams(
        temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens,
        stop_token_ids=(tokenizer.eos_id,), seed=seed,
    )


def is_truncated(completion) -> bool:
    """Cut off by the token limit rather than ended by the model."""
    return completion.finish_reason == "length"
