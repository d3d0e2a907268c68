"""Which script a text's words are written in: the one language-mixing count (R1 report §2.3.2's problem).

Torch-free and Django-free: the trainer's language reward (r1model.rewards.shaping) and the lab's trace
metric (lab.services.traces, filled in at ingestion) both read their CJK ranges from here, and the lab
computes `language_mix` with this very function.
"""
from __future__ import annotations

import re

CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"  # kana, CJK ideographs, hangul (a regex class body)
CJK_TARGETS = ("zh", "ja", "ko")

_WORD_RE = re.compile(r"\w+", re.UNICODE)
_CJK_RE = re.compile(f"[{CJK}]")
_LATIN_WORD = re.compile(r"[A-Za-z_]")  # an ASCII \w character that is not a digit


def language_mix(text: str, target: str = "en") -> float | None:
    """Share of words not in the target language's script. A word is a run of \\w characters, not all digits.

    target "en" (or any Latin-script language): a word counts as mixed when it holds a CJK character
    or a letter outside Latin; "zh"/"ja"/"ko": when it holds no CJK character. None for no words.
    Plain ASCII text (most traces) has no mixed word for a Latin target, so it skips the word split.
    """
    text = text or ""
    if target not in CJK_TARGETS and text.isascii():
        return 0.0 if _LATIN_WORD.search(text) else None
    return _mixed_share(text, target)


def _mixed_share(text: str, target: str) -> float | None:
    """language_mix without its ASCII shortcut: every word looked at."""
    words = [w for w in _WORD_RE.findall(text) if not w.isdigit()]
    if not words:
        return None
    if target in CJK_TARGETS:
        mixed = sum(1 for w in words if not _CJK_RE.search(w))
    else:
        mixed = sum(1 for w in words if _CJK_RE.search(w) or any(ch.isalpha() and ord(ch) > 0x24F for ch in w))
    return mixed / len(words)
