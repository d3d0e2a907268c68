"""Reading aids for reasoning traces: reflection markers ("wait", "let me check", …).

`split_markers` cuts a text into (segment, is_marker) pieces; the template tag escapes every piece
and wraps only the markers in <mark>, so highlighting can never let model output through unescaped.
"""
from __future__ import annotations

import re

REFLECTION_MARKERS = (
    "wait",
    "let me check",
    "let me verify",
    "let me re-check",
    "let me recheck",
    "let me double-check",
    "double-check",
    "verify",
    "re-evaluate",
    "reevaluate",
    "re-examine",
    "on second thought",
    "hmm",
    "actually",
    "i made a mistake",
    "that's not right",
)
_MARKER_RE = re.compile(
    r"\b(" + "|".join(re.escape(m) for m in sorted(REFLECTION_MARKERS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


def has_reflection(text: str) -> bool:
    return _MARKER_RE.search(text or "") is not None


def split_markers(text: str) -> list[tuple[str, bool]]:
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in _MARKER_RE.finditer(text or ""):
        if match.start() > position:
            pieces.append((text[position : match.start()], False))
        pieces.append((match.group(0), True))
        position = match.end()
    if position < len(text or ""):
        pieces.append((text[position:], False))
    return pieces


_WORD_RE = re.compile(r"\w+", re.UNICODE)
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def language_mix(text: str, target: str = "en") -> float | None:
    """Share of words not in the target language's script (R1's language-mixing problem).

    target "en" (or any Latin-script language): a word counts as mixed when it holds a CJK character
    or a letter outside Latin; "zh"/"ja"/"ko": when it holds no CJK character. None for no words.
    """
    words = [w for w in _WORD_RE.findall(text or "") if not w.isdigit()]
    if not words:
        return None
    if target in ("zh", "ja", "ko"):
        mixed = sum(1 for w in words if not _CJK_RE.search(w))
    else:
        mixed = sum(1 for w in words if _CJK_RE.search(w) or any(ch.isalpha() and ord(ch) > 0x24F for ch in w))
    return mixed / len(words)
