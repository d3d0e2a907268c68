"""The two records every task, reward and benchmark shares: a Problem and the CheckResult of an answer.

Standard library only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

# What a check can conclude. `error` means the checker could not judge (gold answer unparseable,
# sandbox unavailable or broken): such a sample is skipped and counted, never scored as wrong.
CHECK_STATUSES = ("correct", "wrong", "unparseable", "error")


@dataclass
class Problem:
    """One problem with a checkable answer.

    id: stable identifier (built-in tasks derive it from the problem text, so it is the same across runs).
    problem: the text shown to the model (put into the prompt template).
    answer: the gold final answer as text.
    solution: a worked, step-by-step solution ('' when none is known).
    task: the task family that checks it ('addition', 'math', 'code', ...).
    meta: task-specific data (countdown numbers and target, code tests and entry point, check mode...).
    """

    id: str
    problem: str
    answer: str
    solution: str = ""
    task: str = ""
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Problem":
        missing = [key for key in ("id", "problem", "answer") if key not in data]
        if missing:
            raise ValueError(f"problem record lacks {', '.join(missing)}: keys are {sorted(data)}")
        return cls(
            id=str(data["id"]),
            problem=str(data["problem"]),
            answer=str(data["answer"]),
            solution=str(data.get("solution") or ""),
            task=str(data.get("task") or ""),
            meta=dict(data.get("meta") or {}),
        )


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one answer: status (see CHECK_STATUSES), a short human reason, and the answer
    text that was actually judged (None when nothing could be extracted)."""

    status: str
    reason: str = ""
    extracted: str | None = None

    def __post_init__(self):
        if self.status not in CHECK_STATUSES:
            raise ValueError(f"unknown check status {self.status!r}; expected one of {CHECK_STATUSES}")

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def to_dict(self) -> dict:
        return asdict(self)
