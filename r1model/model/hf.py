"""Any Hugging Face causal LM (Qwen2, Llama, ...) behind the interface the trainer uses for DeepSeekV3.

``HFCausalLM`` wraps an ``AutoModelForCausalLM`` and adds what the trainer calls on the built-in model:
``forward`` (logits; with labels the mean next-token cross-entropy as ``loss`` / ``lm_loss``),
``encode_prefix`` / ``completion_logits`` (teacher-forced logits of completions after shared prompts) and
``save_pretrained(folder, tokenizer=)`` (the transformers layout, so a fine-tuned Qwen2 is again a Qwen2
folder). ``HFTokenizer`` wraps ``AutoTokenizer`` with R1Tokenizer's surface (encode / decode / eos_id /
pad_id / token_id / save) plus the chat template. ``r1model.generation.hf_engine.HFEngine`` samples from it.

transformers and huggingface_hub are imported inside the functions that need them, so importing this
module costs nothing when the built-in model is used.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from r1model.model.config import parse_hub_id, read_folder_config

# what a model folder needs from a hub repository (no other weight formats, no training artefacts)
HUB_FILES = ["*.json", "*.safetensors", "*.jinja", "tokenizer*", "*.model", "*.tiktoken", "*.txt"]
INSTRUCT_NAME = re.compile(r"(instruct|chat|[-_]it\b|[-_]sft\b|rlhf|dpo)", re.IGNORECASE)


class ModelSourceError(ValueError):
    """model.source cannot be used; the message names the source and says why."""


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


# ---- where a source lives ------------------------------------------------------------------------
def download_hub_model(source: str, timeout_s: float = 10.0) -> Path:
    """The local snapshot folder of hub id `source` ('org/name[@revision]'), downloaded into HF_HOME's cache
    when it is not there yet. Offline (HF_HUB_OFFLINE=1, or no connection): ModelSourceError naming the id."""
    from huggingface_hub import snapshot_download

    repo, revision = parse_hub_id(source) or (source, None)
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:  # the cache first: a model downloaded once never needs the network again
        return Path(snapshot_download(repo, revision=revision, allow_patterns=HUB_FILES, local_files_only=True))
    except Exception as cached_error:  # noqa: BLE001 - any miss falls through to the download
        if offline:
            raise ModelSourceError(
                f"model.source {source!r}: hub model {repo!r}"
                f"{' at revision ' + repr(revision) if revision else ''} is not in the local cache "
                f"({os.environ.get('HF_HOME') or '~/.cache/huggingface'}) and this node is offline "
                f"(HF_HUB_OFFLINE): download it on a node with hub access, or use a local folder"
            ) from cached_error
    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=HUB_FILES, etag_timeout=timeout_s))
    except Exception as exc:  # noqa: BLE001 - one clear line whatever the hub client raised
        cause = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ModelSourceError(
            f"model.source {source!r}: cannot download hub model {repo!r}"
            f"{' at revision ' + repr(revision) if revision else ''} ({type(exc).__name__}: {cause})"
        ) from exc


def read_model_type(folder: Path, source: str) -> str:
    try:
        return read_folder_config(folder)[1]
    except ValueError as exc:
        raise ModelSourceError(f"model.source {source!r}: {exc}") from None


# ---- tokenizer -----------------------------------------------------------------------------------
class HFTokenizer:
    """A transformers tokenizer with R1Tokenizer's surface. The R1 tags are matched as text downstream
    (r1model.template), so they need not be special tokens; ``token_id`` answers only single tokens."""

    def __init__(self, tokenizer, source: str = "", generation_eos: tuple[int, ...] = (), name: str = ""):
        self.hf = tokenizer
        eos = tokenizer.eos_token_id
        if eos is None:
            raise ModelSourceError(
                f"model.source {source!r}: the tokenizer has no EOS token (eos_token in tokenizer_config.json), "
                "so a completion could never end; set eos_token in the folder's tokenizer_config.json"
            )
        self.eos_id: int = int(eos)
        pad = tokenizer.pad_token_id
        self.pad_id: int = int(pad) if pad is not None else self.eos_id  # pad falls back to EOS
        self.stop_ids: frozenset[int] = frozenset({self.eos_id, *(int(t) for t in generation_eos)})
        self.vocab_size: int = len(tokenizer)
        self.chat_template: str | None = getattr(tokenizer, "chat_template", None) or None
        self.special_ids = frozenset(int(i) for i in tokenizer.all_special_ids)
        # the BOS a base model saw in pre-training (plain prompts get it; a chat template writes its own)
        with_specials = tokenizer("a", add_special_tokens=True).input_ids
        without = tokenizer("a", add_special_tokens=False).input_ids
        adds_bos = tokenizer.bos_token_id is not None and with_specials[:1] == [tokenizer.bos_token_id] != without[:1]
        self.bos_text: str = tokenizer.bos_token if adds_bos else ""
        self.looks_instruct: bool = bool(self.chat_template) and (
            bool(INSTRUCT_NAME.search(name)) or any(
                tok and tok in self.chat_template for tok in tokenizer.convert_ids_to_tokens(sorted(self.stop_ids))
            )
        )

    @classmethod
    def load(cls, folder: str | Path, source: str = "", name: str = "") -> "HFTokenizer":
        _quiet_transformers()
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
        except Exception as exc:  # noqa: BLE001
            raise ModelSourceError(f"model.source {source or str(folder)!r}: cannot load the tokenizer of {folder} "
                                   f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]})") from exc
        return cls(tokenizer, source or str(folder), _generation_eos(Path(folder)), name or str(source or folder))

    def encode(self, text: str) -> list[int]:
        return self.hf(text, add_special_tokens=False).input_ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.hf(texts, add_special_tokens=False).input_ids

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self.hf.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens,
                              clean_up_tokenization_spaces=False)

    def token_id(self, token: str) -> int:
        """The id of `token` when it is one token of the vocabulary; KeyError otherwise."""
        ids = self.encode(token)
        if len(ids) != 1:
            raise KeyError(f"token {token!r} is not one token of the vocabulary")
        return ids[0]

    def render_chat(self, messages: list[dict]) -> str:
        """The chat template applied to `messages`, ending with the assistant's turn opened. A template that
        refuses a system message gets its text at the start of the first user message instead."""
        if not self.chat_template:
            raise ValueError("the tokenizer has no chat template")
        try:
            return self.hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as first:  # noqa: BLE001 - e.g. "System role not supported"
            if not messages or messages[0]["role"] != "system":
                raise ModelSourceError(f"model.source: its chat template failed to render: {first}") from None
            system, rest = messages[0]["content"], list(messages[1:])
            rest[0] = {**rest[0], "content": f"{system}\n\n{rest[0]['content']}"}
            try:
                return self.hf.apply_chat_template(rest, tokenize=False, add_generation_prompt=True)
            except Exception as exc:  # noqa: BLE001 - a broken template: say whose, in one line
                raise ModelSourceError(f"model.source: its chat template failed to render: {exc}") from None

    def save(self, directory: str | Path) -> None:
        self.hf.save_pretrained(str(directory))

    def __len__(self) -> int:
        return self.vocab_size


def _generation_eos(folder: Path) -> tuple[int, ...]:
    """The EOS ids of generation_config.json (instruct releases list their end-of-turn token there)."""
    path = folder / "generation_config.json"
    try:
        value = json.loads(path.read_text()).get("eos_token_id") if path.is_file() else None
    except (OSError, json.JSONDecodeError, AttributeError):
        return ()
    if isinstance(value, int):
        return (value,)
    return tuple(v for v in value if isinstance(v, int)) if isinstance(value, list) else ()


# ---- model ---------------------------------------------------------------------------------------
@dataclass
class HFOutput:
    logits: torch.Tensor
    loss: torch.Tensor | None = None
    lm_loss: torch.Tensor | None = None
    past_key_values: object | None = None


@dataclass
class HFPrefix:
    """Prompts for completion_logits: left-padded ids (P, Tp) and mask; with a plain (full-attention) KV
    cache, each layer's keys/values (with grad), the prompts' real lengths and their last logits."""
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    lengths: torch.Tensor | None = None
    last_logits: torch.Tensor | None = None


def positions_of(mask: torch.Tensor) -> torch.Tensor:
    """RoPE positions counting real tokens only (left padding shifts nothing), as the engine uses them."""
    return (mask.long().cumsum(1) - 1).clamp(min=0)


class HFCausalLM(nn.Module):
    """A transformers causal LM with DeepSeekV3's trainer-facing methods. Its weights live under ``hf.``."""

    def __init__(self, model):
        super().__init__()
        self.hf = model
        self.mtp = nn.ModuleList()  # no multi-token prediction: the speculative engine refuses it
        # transformers 5.x renamed forward's past_key_values to cache
        self._cache_kwarg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    @property
    def config(self):
        return self.hf.config

    @property
    def device(self) -> torch.device:
        return next(self.hf.parameters()).device

    @property
    def model_type(self) -> str:
        return self.hf.config.model_type

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                past_key_values=None, use_cache: bool = False, logits_to_keep: int = 0) -> HFOutput:
        """Logits (B, T, V) float; labels (B, T) are the input ids (shifted inside), -100 = ignore."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if position_ids is None:
            position_ids = positions_of(attention_mask)
            if past_key_values is not None:
                position_ids = position_ids[:, -input_ids.shape[1]:]
        out = self.hf(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                      use_cache=use_cache, logits_to_keep=logits_to_keep, **{self._cache_kwarg: past_key_values})
        logits = out.logits.float()
        cache = getattr(out, "cache", None)
        cache = getattr(out, "past_key_values", None) if cache is None else cache
        result = HFOutput(logits=logits, past_key_values=cache if use_cache else None)
        if labels is not None:
            labels = labels.to(logits.device)
            pred = logits[:, :-1].reshape(-1, logits.shape[-1])
            target = labels[:, 1:].reshape(-1)
            total = nn.functional.cross_entropy(pred, target, ignore_index=-100, reduction="sum")
            result.loss = result.lm_loss = total / (target != -100).sum().clamp(min=1)
        return result

    # ---- teacher-forced completions (the GRPO update) ---------------------------------------------
    def encode_prefix(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                      share: bool = True) -> HFPrefix:
        """Run left-padded prompts (P, Tp) once and keep their keys/values (with grad) for completion_logits,
        when the model's cache is a plain full-attention DynamicCache; otherwise (sliding windows, hybrid
        caches) or with share=False, completion_logits runs each prompt again in front of its completion."""
        from transformers.cache_utils import DynamicCache, DynamicLayer

        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device).long()
        if not bool(attention_mask[:, -1].bool().all()):
            raise ValueError("encode_prefix: prompts must be left-padded (the last column holds a real token)")
        prefix = HFPrefix(input_ids, attention_mask)
        if not share:
            return prefix
        out = self(input_ids, attention_mask=attention_mask, use_cache=True, logits_to_keep=1)
        cache = out.past_key_values
        layers = getattr(cache, "layers", None)
        if type(cache) is DynamicCache and layers and all(type(layer) is DynamicLayer for layer in layers):
            prefix.kv = [(layer.keys, layer.values) for layer in layers]
            prefix.lengths = attention_mask.sum(1)
            prefix.last_logits = out.logits[:, -1]
        return prefix

    def completion_logits(self, prefix: HFPrefix, group: torch.Tensor, input_ids: torch.Tensor,
                          attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, V) of right-padded completions (B, T) after prompt row ``group[b]`` of ``prefix``:
        logits[:, j] predicts token j; zeros where the completion's mask is 0 (DeepSeekV3's contract).
        The completions attend to the prompts' shared keys/values (their rows copied per completion, with
        grad), or, without them, each row runs as prompt + completion in one forward."""
        from transformers.cache_utils import DynamicCache

        group = group.to(self.device)
        b, t = input_ids.shape
        input_ids = input_ids.to(self.device)
        mask = (torch.ones(b, t, dtype=torch.long, device=self.device) if attention_mask is None
                else attention_mask.to(self.device).long())
        full_mask = torch.cat([prefix.attention_mask[group], mask], 1)
        if prefix.kv is None:
            full = torch.cat([prefix.input_ids[group], input_ids], 1)
            logits = self(full, attention_mask=full_mask, logits_to_keep=t + 1).logits[:, :t]
        else:
            cache = DynamicCache(ddp_cache_data=[(k[group], v[group]) for k, v in prefix.kv])
            positions = prefix.lengths[group][:, None] + torch.arange(t, device=self.device)[None, :]
            out = self(input_ids, attention_mask=full_mask, position_ids=positions, past_key_values=cache,
                       use_cache=True)
            logits = torch.cat([prefix.last_logits[group][:, None], out.logits[:, :-1]], 1)
        return logits * mask[..., None].to(logits.dtype)

    # ---- what the built-in model also offers -----------------------------------------------------
    @contextlib.contextmanager
    def stacked_experts(self):
        yield

    def save_pretrained(self, directory: str | Path, tokenizer=None) -> Path:
        """The transformers layout (config.json, model.safetensors, generation_config.json) + the tokenizer."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.hf.save_pretrained(str(directory))
        if tokenizer is not None:
            tokenizer.save(directory)
        return directory


def load_causal_lm(folder: Path, source: str, device: torch.device) -> HFCausalLM:
    """AutoModelForCausalLM from a local folder, fp32 master weights (the run's precision is autocast)."""
    _quiet_transformers()
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = read_model_type(folder, source)
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        import transformers

        raise ModelSourceError(
            f"model.source {source!r}: model_type {model_type!r} is not a causal LM architecture that "
            f"transformers {transformers.__version__} supports (no AutoModelForCausalLM class for it)"
        )
    try:
        config = AutoConfig.from_pretrained(str(folder))
        model = AutoModelForCausalLM.from_pretrained(str(folder), config=config, dtype=torch.float32)
    except Exception as exc:  # noqa: BLE001
        raise ModelSourceError(f"model.source {source!r}: cannot load the {model_type} model in {folder} "
                               f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]})") from exc
    return HFCausalLM(model).to(device)
