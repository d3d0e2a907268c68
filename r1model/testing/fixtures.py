"""Tiny random Hugging Face causal-LM folders for tests: no hub, everything built here.

    from r1model.testing.fixtures import make_tiny_hf_model
    folder = make_tiny_hf_model(tmp_path / "qwen", "qwen2")                  # an instruct-style Qwen2
    folder = make_tiny_hf_model(tmp_path / "llama", "llama", instruct=False)  # a base-style Llama

Each folder is what `save_pretrained` writes for a transformers model (config.json, model.safetensors,
generation_config.json) plus a byte-level BPE tokenizer trained here with `tokenizers` on a small corpus
(R1 template text, arithmetic, the R1 tags) and saved with PreTrainedTokenizerFast, so AutoTokenizer
loads it; the tokenizer carries a chat template in the family's style. With ``tags_special`` the R1 tags
are special tokens (one id each); without, they are ordinary text the BPE splits.

instruct=True makes the end-of-turn token the tokenizer's EOS (as instruct releases do), so
``prompt_format: auto`` picks the chat template; instruct=False keeps a separate end-of-text EOS (a base
model whose tokenizer merely ships a chat template), so auto picks the plain R1-Zero text.
"""
from __future__ import annotations

from pathlib import Path

ARCHITECTURES = ("qwen2", "llama")
R1_TAGS = ("<think>", "</think>", "<answer>", "</answer>")

QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

_CORPUS = [
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and "
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> "
    "<answer> answer here </answer>. User: What is 12 + 30? Assistant:",
    "<think>12 + 30 = 42</think><answer>42</answer>",
    "<think>7 * 8 = 56, so the answer is 56</think> <answer>56</answer>",
    "User: Solve 3x + 4 = 19 for x.\nAssistant: <think>3x = 15, x = 5</think><answer>5</answer>",
    "Using the numbers 3, 5, 7 create an equation that equals 22. Compute the sum of two numbers.",
    "system user assistant The quick brown fox jumps over the lazy dog. def f(x): return x * 2",
    " ".join(str(i) for i in range(200)) + " + - * / = ( ) . , ? !",
]


def _special_tokens(arch: str, tags_special: bool) -> dict:
    if arch == "qwen2":
        tokens = {"eos_base": "<|endoftext|>", "eot": "<|im_end|>", "bos": None,
                  "extra": ["<|im_start|>"], "template": QWEN_CHAT_TEMPLATE}
    elif arch == "llama":
        tokens = {"eos_base": "<|end_of_text|>", "eot": "<|eot_id|>", "bos": "<|begin_of_text|>",
                  "extra": ["<|start_header_id|>", "<|end_header_id|>"], "template": LLAMA_CHAT_TEMPLATE}
    else:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {arch!r}")
    tokens["tags"] = list(R1_TAGS) if tags_special else []
    return tokens


def train_tokenizer(arch: str = "qwen2", *, instruct: bool = True, tags_special: bool = True,
                    vocab_size: int = 400, eos: bool = True):
    """A PreTrainedTokenizerFast: byte-level BPE trained on the corpus, the family's special tokens and chat
    template. eos=False leaves the EOS out (to test the error a tokenizer without one gives)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    spec = _special_tokens(arch, tags_special)
    specials = [t for t in [spec["bos"], spec["eos_base"], spec["eot"], *spec["extra"], *spec["tags"]] if t]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    eos_token = (spec["eot"] if instruct else spec["eos_base"]) if eos else None
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=spec["bos"],
        eos_token=eos_token,
        pad_token=spec["eos_base"] if eos else None,
        additional_special_tokens=spec["tags"] + spec["extra"],
        chat_template=spec["template"],
        clean_up_tokenization_spaces=False,
    )


def tiny_config(arch: str, tokenizer, *, hidden_size: int = 64, head_dim: int = 32, layers: int = 2):
    """A transformers config of `arch` sized for tests (vocab = the tokenizer's, hidden ≥ 64, head_dim ≥ 32)."""
    from transformers import LlamaConfig, Qwen2Config

    common = dict(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=hidden_size // head_dim, num_key_value_heads=1,
        max_position_embeddings=1024, tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    if arch == "qwen2":
        return Qwen2Config(**common)
    if arch == "llama":
        return LlamaConfig(head_dim=head_dim, **common)
    raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {arch!r}")


def make_tiny_hf_model(folder: str | Path, arch: str = "qwen2", *, instruct: bool = True, tags_special: bool = True,
                       seed: int = 0, eos: bool = True, init_std: float = 0.2, hidden_size: int = 64,
                       head_dim: int = 32, layers: int = 2) -> Path:
    """Write a tiny random `arch` model with its tokenizer to `folder` (HF layout); returns the folder.
    init_std: a larger initialisation than transformers' 0.02, so that sampled completions vary;
    hidden_size, head_dim, layers: as tiny_config (larger ones for benches)."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = Path(folder)
    tokenizer = train_tokenizer(arch, instruct=instruct, tags_special=tags_special, eos=eos)
    config = tiny_config(arch, tokenizer, hidden_size=hidden_size, head_dim=head_dim, layers=layers)
    config.initializer_range = init_std
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
