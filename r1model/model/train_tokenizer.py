"""Train the byte-level BPE tokenizer of the ``*-bpe`` presets, reproducibly and offline.

    python -m r1model.model.train_tokenizer            # rewrites r1model/model/data/bpe_tokenizer.json
    python -m r1model.model.train_tokenizer --check    # exit 1 when the shipped file differs

The corpus is fixed: every built-in task's pretraining examples (``r1model.tasks.corpus``, seed 0) rendered
in both R1 templates, the templates themselves, and the bilingual English/Chinese reasoning text in
``data/multilingual.txt``. The model is BPE over bytes (GPT-2's ByteLevel mapping), so any UTF-8 text
encodes without ``<unk>`` and decodes back exactly; digits are split one per piece before BPE so that a
number is always spelt digit by digit (arithmetic stays learnable). The R1 tags and ``<pad>``/``<eos>``/
``<unk>`` are special tokens with the character tokenizer's ids (0..6), each one token wherever it appears.

Imports without torch (the tokenizer module, which the lab uses, reads the shipped file).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

DATA_DIR = Path(__file__).resolve().parent / "data"
BPE_FILE = DATA_DIR / "bpe_tokenizer.json"
MULTILINGUAL_FILE = DATA_DIR / "multilingual.txt"
EXAMPLES_PER_TASK = 400
SEED = 0


def _special_tokens() -> tuple[str, ...]:
    from r1model.model.tokenizer import SPECIAL_TOKENS

    return SPECIAL_TOKENS


def pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """Digits one by one, then GPT-2's byte-level split (words, numbers, punctuation, whitespace)."""
    return pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])


def training_texts() -> list[str]:
    """The fixed training corpus, in a fixed order. Tags are cut out (they are special tokens: no merge
    should be spent on their characters)."""
    from r1model.tasks import TASKS
    from r1model.tasks.corpus import pretrain_examples
    from r1model.template import TEMPLATES, render_prompt

    texts: list[str] = list(TEMPLATES.values())
    for task in sorted(TASKS):
        for prompt, completion in pretrain_examples(task, EXAMPLES_PER_TASK, seed=SEED, worked_fraction=0.5):
            for template in sorted(TEMPLATES):
                texts.append(render_prompt(prompt, TEMPLATES[template]) + completion)
    lines = MULTILINGUAL_FILE.read_text(encoding="utf-8").splitlines()
    texts.extend(line for line in lines if line.strip() and not line.startswith("#"))
    tags = re.compile("|".join(re.escape(t) for t in _special_tokens()))
    return [piece for text in texts for piece in tags.split(text) if piece]


def train_bpe(vocab_size: int | None = None) -> Tokenizer:
    """The byte-level BPE tokenizer trained on ``training_texts()`` (deterministic)."""
    from r1model.model.config import BPE_VOCAB_SIZE

    specials = list(_special_tokens())
    tok = Tokenizer(models.BPE())  # no unk: every byte is in the alphabet
    tok.pre_tokenizer = pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size or BPE_VOCAB_SIZE, min_frequency=2, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(training_texts(), trainer=trainer)
    tok.add_special_tokens(specials)  # matched in text before the pre-tokenizer
    return tok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped file, write nothing")
    parser.add_argument("--out", type=Path, default=BPE_FILE)
    args = parser.parse_args(argv)
    tok = train_bpe()
    text = tok.to_str(pretty=True)
    if args.check:
        same = args.out.is_file() and json.loads(args.out.read_text(encoding="utf-8")) == json.loads(text)
        print(f"{args.out}: {'up to date' if same else 'differs from a fresh training'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(f"{args.out}: {tok.get_vocab_size(with_added_tokens=True)} tokens, {args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
