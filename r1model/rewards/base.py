"""The record every reward returns for one completion."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RewardResult:
    """value: the reward, or None for "skip, don't score" (gold answer unparseable, sandbox error) —
    such samples are counted and dropped from the batch, never scored 0.
    status: a short machine word ('correct', 'wrong', 'unparseable', 'error', 'ok', 'malformed', ...).
    reason: one line for people (shown in the trace viewer)."""

    value: float | None
    status: str
    reason: str = ""

    @property
    def skipped(self) -> bool:
        return self.value is None

    def to_dict(self) -> dict:
        return asdict(self)
