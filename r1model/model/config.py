"""ModelConfig: the shape of a DeepSeek-V3-style model, in transformers' DeepseekV3Config field names.

Imports without torch (the lab reads and validates configs). Presets:
- ``tiny``: ~1.8 M parameters, trains on one CPU thread in minutes;
- ``small``: ~100 M parameters, for a GPU;
- ``tiny-bpe`` / ``small-bpe``: the same shapes with the byte-level BPE tokenizer (``tokenizer="bpe"``,
  1,024 tokens; reads Chinese as well as English), where ``tiny`` / ``small`` use the ASCII character one;
- ``deepseek-v3``: the 671 B shape of the report, for sizing and KV-cache arithmetic only.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRECISIONS = ("fp32", "bf16", "fp8")
SCORING_FUNCS = ("sigmoid", "softmax")

# Vocabulary of r1model.model.tokenizer.R1Tokenizer.build() (7 special tokens + 96 characters);
# tests/unit/test_tokenizer.py checks the two agree.
CHAR_VOCAB_SIZE = 103
CHAR_PAD_ID = 0
CHAR_EOS_ID = 1
# Vocabulary of the byte-level BPE tokenizer shipped in r1model/model/data/bpe_tokenizer.json (trained by
# r1model.model.train_tokenizer; same special-token ids as the character tokenizer).
BPE_VOCAB_SIZE = 1024
# ModelConfig.tokenizer -> the vocabulary a preset gets with it
TOKENIZER_VOCAB_SIZES = {"char": CHAR_VOCAB_SIZE, "bpe": BPE_VOCAB_SIZE}

# Our fields that transformers' DeepseekV3Config does not have; they ride along in config.json.
R1_FIELDS = ("precision", "bias_update_speed", "seq_aux_loss_alpha", "mtp_loss_weight", "tokenizer")

# a Hugging Face hub id as model.source: org/name, optionally @revision (a branch, tag or commit)
HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@(?P<revision>[A-Za-z0-9_./-]+))?$")


def parse_hub_id(source: str) -> tuple[str, str | None] | None:
    """(repo id, revision or None) when `source` reads as a hub id 'org/name[@revision]', else None. An
    existing local folder of that name wins over the hub (r1model.train.modeling.resolve_source)."""
    match = HUB_ID.match(source)
    if match is None or source.startswith((".", "/")):
        return None
    return match.group("repo"), match.group("revision")


CONFIG_NAME = "config.json"  # what makes a folder a model folder (HF layout)


def is_model_folder(path: str | Path) -> bool:
    """Whether `path` is a model folder in HF layout: a folder holding config.json (a checkpoint of the
    built-in model, or any transformers model's folder). The one check of model.source, recipes, chains
    and merge (no torch)."""
    return (Path(path) / CONFIG_NAME).is_file()


def read_folder_config(folder: str | Path) -> tuple[dict, str]:
    """A model folder's config.json and its model_type; ValueError saying what is wrong with it (no config.json,
    not JSON, no model_type) for the caller to put after the field it names (no torch)."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise ValueError(f"{folder} has no {CONFIG_NAME} (not a model folder)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None
    model_type = data.get("model_type") if isinstance(data, dict) else None
    if not model_type:
        raise ValueError(f"{path} has no model_type")
    return data, str(model_type)


@dataclass
class ModelConfig:
    """Every attribute of a DeepSeek-V3 miniature. Names follow transformers' DeepseekV3Config."""

    vocab_size: int = CHAR_VOCAB_SIZE  # tokens in the vocabulary (embedding rows and output head columns)
    hidden_size: int = 128  # d, the residual stream width
    intermediate_size: int = 384  # hidden width of the dense SwiGLU MLPs (the first_k_dense_replace layers)
    moe_intermediate_size: int = 96  # hidden width of each routed / shared expert
    num_hidden_layers: int = 4  # transformer blocks of the main model
    num_attention_heads: int = 4  # n_h, MLA heads
    q_lora_rank: int = 64  # d_c' of the query latent; 0 = no query compression (one q_proj)
    kv_lora_rank: int = 32  # d_c of the KV latent: the cache holds this plus qk_rope_head_dim per token
    qk_nope_head_dim: int = 32  # per-head query/key width without position (d_h)
    qk_rope_head_dim: int = 16  # d_h^R, decoupled RoPE width; the RoPE key is shared by all heads
    v_head_dim: int = 32  # per-head value width
    n_routed_experts: int = 8  # N_r routed experts per MoE layer
    n_shared_experts: int = 1  # N_s shared experts (fused into one MLP of n_shared * moe_intermediate_size)
    num_experts_per_tok: int = 2  # K_r experts chosen per token
    n_group: int = 4  # expert groups for group-limited routing (1 = no groups)
    topk_group: int = 2  # groups a token may route to (V3: 4 of 8)
    routed_scaling_factor: float = 1.0  # multiplies the gate weights of routed experts (V3: 2.5)
    norm_topk_prob: bool = True  # normalise the gate weights over the chosen K_r experts
    scoring_func: str = "sigmoid"  # expert affinity: sigmoid (V3) or softmax (V2)
    first_k_dense_replace: int = 1  # the first k layers use a dense MLP instead of MoE (V3: 3)
    rope_theta: float = 10000.0  # RoPE base
    rms_norm_eps: float = 1e-6  # RMSNorm epsilon
    max_position_embeddings: int = 1024  # longest sequence (prompt + completion) the model accepts
    num_nextn_predict_layers: int = 1  # D, multi-token-prediction modules (0 = none; V3: 1)
    tie_word_embeddings: bool = False  # share the embedding matrix with the output head
    initializer_range: float = 0.02  # std of the normal weight init
    bos_token_id: int | None = None  # written to config.json for transformers
    eos_token_id: int | None = CHAR_EOS_ID
    pad_token_id: int | None = CHAR_PAD_ID
    # --- R1 Lab fields (not in DeepseekV3Config) ---
    precision: str = "fp32"  # GEMM precision of the Linear layers: fp32 | bf16 | fp8 (E4M3, block-scaled)
    bias_update_speed: float = 1e-3  # gamma of aux-loss-free balancing, b_i -= gamma*sign(load_i - mean) (V3: 1e-3)
    seq_aux_loss_alpha: float = 1e-4  # alpha of the sequence-wise balance loss (V3: 1e-4; 0 disables)
    mtp_loss_weight: float = 0.3  # lambda of the MTP loss, lambda/D * sum_k CE_k (V3: 0.3, later 0.1)
    tokenizer: str = "char"  # built-in tokenizer of a fresh model: char (ASCII characters) | bpe (byte-level BPE)
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # unknown HF keys, kept

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "intermediate_size", "moe_intermediate_size",
                     "num_hidden_layers", "num_attention_heads", "kv_lora_rank", "qk_nope_head_dim",
                     "qk_rope_head_dim", "v_head_dim", "n_routed_experts", "num_experts_per_tok",
                     "n_group", "topk_group", "max_position_embeddings"):
            _require(name, _is_int(getattr(self, name)) and getattr(self, name) >= 1, "must be an integer >= 1")
        for name in ("q_lora_rank", "n_shared_experts", "first_k_dense_replace", "num_nextn_predict_layers"):
            _require(name, _is_int(getattr(self, name)) and getattr(self, name) >= 0, "must be an integer >= 0")
        for name in ("rope_theta", "rms_norm_eps", "routed_scaling_factor", "initializer_range"):
            _require(name, _is_num(getattr(self, name)) and getattr(self, name) > 0, "must be a number > 0")
        for name in ("bias_update_speed", "seq_aux_loss_alpha", "mtp_loss_weight"):
            _require(name, _is_num(getattr(self, name)) and getattr(self, name) >= 0, "must be a number >= 0")
        _require("qk_rope_head_dim", self.qk_rope_head_dim % 2 == 0, "must be even (RoPE rotates pairs)")
        _require("first_k_dense_replace", self.first_k_dense_replace <= self.num_hidden_layers,
                 f"must be <= num_hidden_layers ({self.num_hidden_layers})")
        _require("n_group", self.n_routed_experts % self.n_group == 0,
                 f"must divide n_routed_experts ({self.n_routed_experts})")
        _require("topk_group", self.topk_group <= self.n_group, f"must be <= n_group ({self.n_group})")
        per_group = self.n_routed_experts // self.n_group
        if self.n_group > 1:
            _require("n_group", per_group >= 2, "must leave >= 2 experts per group (group score = sum of top-2)")
        _require("num_experts_per_tok", self.num_experts_per_tok <= self.topk_group * per_group,
                 f"must be <= the experts the selected groups hold (topk_group*n_routed_experts/n_group = "
                 f"{self.topk_group * per_group})")
        _require("scoring_func", self.scoring_func in SCORING_FUNCS, f"must be one of {SCORING_FUNCS}")
        _require("precision", self.precision in PRECISIONS, f"must be one of {PRECISIONS}")
        _require("tokenizer", self.tokenizer in TOKENIZER_VOCAB_SIZES, f"must be one of {tuple(TOKENIZER_VOCAB_SIZES)}")
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(self, name)
            _require(name, value is None or (_is_int(value) and 0 <= value < self.vocab_size),
                     f"must be None or an id in [0, vocab_size={self.vocab_size})")

    # ---- derived sizes -------------------------------------------------------------------------
    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    def kv_cache_elements_per_token(self, absorbed: bool = True) -> int:
        """Cached elements per token per layer: latent + RoPE key (absorbed MLA) or full per-head K and V."""
        if absorbed:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return self.num_attention_heads * (self.qk_head_dim + self.v_head_dim)

    # ---- presets ----------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "ModelConfig":
        if name not in PRESETS:
            raise ValueError(f"preset: unknown name {name!r}; choose one of {sorted(PRESETS)}")
        values = dict(PRESETS[name])
        values.update(overrides)
        if overrides.get("tokenizer") in TOKENIZER_VOCAB_SIZES and "vocab_size" not in overrides:
            values["vocab_size"] = TOKENIZER_VOCAB_SIZES[overrides["tokenizer"]]  # the vocabulary follows the tokenizer
        return cls(**values)

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    # ---- transformers config.json ---------------------------------------------------------------
    def to_hf_dict(self) -> dict[str, Any]:
        """A config.json that transformers reads as DeepseekV3Config (our extra fields ride along)."""
        out: dict[str, Any] = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.name in ("extra", "rope_theta") or (f.name == "tokenizer" and self.tokenizer == "char"):
                continue  # char: config.json as before the field existed
            out[f.name] = getattr(self, f.name)
        out["q_lora_rank"] = self.q_lora_rank or None  # HF: null = no query compression
        out["rope_parameters"] = {"rope_type": "default", "rope_theta": float(self.rope_theta)}
        out["rope_theta"] = float(self.rope_theta)  # older transformers read the flat key
        out.update(model_type="deepseek_v3", architectures=["DeepseekV3ForCausalLM"],
                   num_key_value_heads=self.num_attention_heads, hidden_act="silu", rope_interleave=True,
                   attention_bias=False, attention_dropout=0.0, use_cache=True)
        return out

    @classmethod
    def from_hf_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Read a DeepseekV3 config.json (ours or transformers'). Unknown keys are kept in ``extra``."""
        if not isinstance(data, dict):
            raise ValueError("config: expected a JSON object")
        model_type = data.get("model_type", "deepseek_v3")
        if model_type != "deepseek_v3":
            raise ValueError(f"model_type: expected 'deepseek_v3', got {model_type!r}")
        rope = data.get("rope_parameters") or data.get("rope_scaling") or {}
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type != "default":
            raise ValueError(f"rope_parameters: rope_type {rope_type!r} (YaRN etc.) is not supported; use 'default'")
        if data.get("hidden_act", "silu") != "silu":
            raise ValueError(f"hidden_act: only 'silu' is supported, got {data['hidden_act']!r}")
        if data.get("rope_interleave", True) is not True:
            raise ValueError("rope_interleave: only the interleaved (DeepSeek) RoPE layout is supported")
        heads = data.get("num_attention_heads")
        if data.get("num_key_value_heads") not in (None, heads):
            raise ValueError("num_key_value_heads: MLA needs num_key_value_heads == num_attention_heads")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in names}
        values["extra"] = {k: v for k, v in data.items() if k not in names and k not in _HF_DERIVED}
        if "rope_theta" in rope:
            values["rope_theta"] = rope["rope_theta"]
        for key, none_means in (("q_lora_rank", 0), ("n_group", 1), ("topk_group", 1),
                                ("first_k_dense_replace", 0), ("num_experts_per_tok", 1)):
            if key in values and values[key] is None:
                values[key] = none_means
        if isinstance(values.get("eos_token_id"), list):
            values["eos_token_id"] = values["eos_token_id"][0] if values["eos_token_id"] else None
        try:
            return cls(**values)
        except TypeError as exc:  # a wrongly typed value that the dataclass could not take
            raise ValueError(f"config: {exc}") from exc


# Keys transformers writes that we recompute on save (not kept in ``extra``).
_HF_DERIVED = frozenset({
    "model_type", "architectures", "num_key_value_heads", "hidden_act", "rope_interleave", "attention_bias",
    "attention_dropout", "use_cache", "rope_parameters", "rope_scaling", "head_dim", "qk_head_dim",
    "transformers_version", "torch_dtype", "dtype", "num_mtp_layers", "_name_or_path", "return_dict",
    "output_hidden_states", "output_attentions", "id2label", "label2id", "problem_type",
    "chunk_size_feed_forward", "is_encoder_decoder", "pretraining_tp", "output_router_logits",
})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require(name: str, ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(f"{name}: {message}")


PRESETS: dict[str, dict[str, Any]] = {
    # The defaults above are the tiny preset.
    "tiny": {},
    "small": dict(
        hidden_size=768, intermediate_size=2048, moe_intermediate_size=384, num_hidden_layers=10,
        num_attention_heads=12, q_lora_rank=384, kv_lora_rank=256, qk_nope_head_dim=64, qk_rope_head_dim=32,
        v_head_dim=64, n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2, n_group=4, topk_group=2,
        routed_scaling_factor=1.5, first_k_dense_replace=1, max_position_embeddings=4096, precision="bf16",
    ),
    # The same shapes with the byte-level BPE tokenizer (English and Chinese text; see model/tokenizer.py).
    "tiny-bpe": dict(tokenizer="bpe", vocab_size=BPE_VOCAB_SIZE),
    "small-bpe": dict(
        tokenizer="bpe", vocab_size=BPE_VOCAB_SIZE,
        hidden_size=768, intermediate_size=2048, moe_intermediate_size=384, num_hidden_layers=10,
        num_attention_heads=12, q_lora_rank=384, kv_lora_rank=256, qk_nope_head_dim=64, qk_rope_head_dim=32,
        v_head_dim=64, n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2, n_group=4, topk_group=2,
        routed_scaling_factor=1.5, first_k_dense_replace=1, max_position_embeddings=4096, precision="bf16",
    ),
    # The V3 report's shape (Table/§4.2). max_position_embeddings is the pre-YaRN 4K context.
    "deepseek-v3": dict(
        vocab_size=129280, hidden_size=7168, intermediate_size=18432, moe_intermediate_size=2048,
        num_hidden_layers=61, num_attention_heads=128, q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128,
        qk_rope_head_dim=64, v_head_dim=128, n_routed_experts=256, n_shared_experts=1, num_experts_per_tok=8,
        n_group=8, topk_group=4, routed_scaling_factor=2.5, first_k_dense_replace=3, max_position_embeddings=4096,
        num_nextn_predict_layers=1, bos_token_id=0, eos_token_id=1, pad_token_id=None, precision="fp8",
    ),
}
