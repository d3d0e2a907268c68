"""Reading aids for reasoning traces: reflection markers ("wait", "let me check", …) and the share of
words in another script (language_mix, r1model.language: the same count the trainer's side uses).

`split_markers` cuts a text into (segment, is_marker) pieces; the template tag escapes every piece
and wraps only the markers in <mark>, so highlighting can never let model output through unescaped.
"""
from __future__ import annotations

import re

from r1model.language import language_mix  # noqa: F401  (re-exported: the lab's name for it)

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
    """Does a marker occur as a whole word? Most traces hold none at all: a plain substring test first."""
    text = text or ""
    lower = text.lower()
    for marker in REFLECTION_MARKERS:
        if marker in lower:
            return _MARKER_RE.search(text) is not None
    return False


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
