"""R1Tokenizer: the built-in tokenizers of the presets, on the `tokenizers` library. Two kinds:

- ``char`` (``R1Tokenizer.build()``, presets ``tiny`` / ``small``): one token per character of printable
  ASCII + newline; any other character becomes ``<unk>``;
- ``bpe`` (``R1Tokenizer.build("bpe")``, presets ``tiny-bpe`` / ``small-bpe``): byte-level BPE, 1,024 tokens,
  trained offline on the task corpora and English/Chinese text (``r1model.model.train_tokenizer``) and
  shipped as ``data/bpe_tokenizer.json``; any UTF-8 text round-trips exactly, digits are one token each.

Both have the same special tokens with the same ids (``<pad>`` = 0, ``<eos>`` = 1, ...). The R1 tags are
special tokens, one id each, recognised wherever they appear in text, so ``encode("<think>1+1</think>")``
gives 5 ids. Saved as a standard ``tokenizer.json`` (plus ``tokenizer_config.json`` for transformers);
``load(dir)`` reads whichever kind a checkpoint holds. Imports without torch.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

from r1model.model.config import CHAR_EOS_ID, CHAR_PAD_ID, TOKENIZER_VOCAB_SIZES

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
THINK, THINK_END, ANSWER, ANSWER_END = "<think>", "</think>", "<answer>", "</answer>"
# Order fixes the ids: <pad> = 0, <eos> = 1 (config.CHAR_PAD_ID / CHAR_EOS_ID rely on it).
SPECIAL_TOKENS = (PAD, EOS, UNK, THINK, THINK_END, ANSWER, ANSWER_END)
ALPHABET = "\n" + "".join(chr(c) for c in range(32, 127))  # newline + printable ASCII (space .. ~)
BPE_FILE = Path(__file__).resolve().parent / "data" / "bpe_tokenizer.json"
KINDS = tuple(TOKENIZER_VOCAB_SIZES)  # ("char", "bpe")


class R1Tokenizer:
    """A tokenizer with the R1 special tokens. Use ``build(kind)``, ``for_config(config)`` or ``load(dir)``."""

    def __init__(self, tokenizer: Tokenizer):
        self._tok = tokenizer
        for tok in (PAD, EOS, THINK, THINK_END, ANSWER, ANSWER_END):
            if tokenizer.token_to_id(tok) is None:
                raise ValueError(f"tokenizer.json: special token {tok!r} is missing")
        self.pad_id: int = tokenizer.token_to_id(PAD)
        self.eos_id: int = tokenizer.token_to_id(EOS)
        self.vocab_size: int = tokenizer.get_vocab_size(with_added_tokens=True)
        self.special_ids = frozenset(tokenizer.token_to_id(t) for t in SPECIAL_TOKENS
                                     if tokenizer.token_to_id(t) is not None)

    @property
    def kind(self) -> str:
        """'bpe' for a BPE model, else 'char'."""
        return "bpe" if isinstance(self._tok.model, models.BPE) else "char"

    @classmethod
    def build(cls, kind: str = "char") -> "R1Tokenizer":
        """The built-in tokenizer of that kind: 'char' (ASCII characters) or 'bpe' (the shipped byte-level BPE)."""
        if kind == "bpe":
            out = cls(Tokenizer.from_file(str(BPE_FILE)))
            assert out.pad_id == CHAR_PAD_ID and out.eos_id == CHAR_EOS_ID
            return out
        if kind != "char":
            raise ValueError(f"tokenizer kind must be one of {KINDS}, got {kind!r}")
        vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
        for ch in ALPHABET:
            vocab[ch] = len(vocab)
        tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # one piece per char
        tok.decoder = decoders.Fuse()  # join pieces without spaces
        tok.add_special_tokens(list(SPECIAL_TOKENS))
        out = cls(tok)
        assert out.pad_id == CHAR_PAD_ID and out.eos_id == CHAR_EOS_ID
        return out

    @classmethod
    def for_config(cls, config) -> "R1Tokenizer":
        """The tokenizer a fresh model of this ModelConfig uses (its ``tokenizer`` field; 'char' when absent).
        The model's vocab_size must hold it."""
        out = cls.build(getattr(config, "tokenizer", "char"))
        if out.vocab_size > config.vocab_size:
            raise ValueError(f"vocab_size {config.vocab_size} is smaller than the {out.kind} tokenizer's "
                             f"{out.vocab_size} tokens")
        return out

    @classmethod
    def load(cls, directory: str | Path) -> "R1Tokenizer":
        path = Path(directory) / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no tokenizer.json")
        return cls(Tokenizer.from_file(str(path)))

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._tok.save(str(directory / "tokenizer.json"))
        (directory / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "PreTrainedTokenizerFast", "eos_token": EOS, "pad_token": PAD, "unk_token": UNK,
            "additional_special_tokens": [THINK, THINK_END, ANSWER, ANSWER_END], "clean_up_tokenization_spaces": False,
        }, indent=2))
        return directory / "tokenizer.json"

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def token_id(self, token: str) -> int:
        idx = self._tok.token_to_id(token)
        if idx is None:
            raise KeyError(f"token {token!r} is not in the vocabulary")
        return idx

    def __len__(self) -> int:
        return self.vocab_size

