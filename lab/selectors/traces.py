"""Trace queries for the viewer and the API: filters, pages, groups, one prompt across steps."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet

from lab.models import Annotation, Trace

PAGE_SIZE = 50
LIST_FIELDS = (
    "id", "run_id", "seq", "step", "group_id", "prompt_id", "answer", "reward", "advantage",
    "status", "tokens", "truncated", "has_reflection", "language_mix", "source",
)
STATUSES = ("correct", "wrong", "unparseable", "skipped")


@dataclass
class TraceFilter:
    step_min: int | None = None
    step_max: int | None = None
    status: str = ""
    reward_min: float | None = None
    reward_max: float | None = None
    tokens_min: int | None = None
    tokens_max: int | None = None
    reflection: str = ""  # "yes" | "no" | ""
    language_mix_min: float | None = None
    truncated: str = ""  # "yes" | "no" | ""
    source: str = ""
    q: str = ""
    group_id: str = ""
    prompt_id: str = ""
    reviewed: str = ""  # "yes" | "no" (by the current user) | ""

    @classmethod
    def from_query(cls, params) -> tuple["TraceFilter", dict[str, str]]:
        """Parse GET/query parameters; returns the filter and the errors by field (bad values ignored)."""
        errors: dict[str, str] = {}
        values: dict = {}
        for name, kind in (
            ("step_min", int), ("step_max", int), ("reward_min", float), ("reward_max", float),
            ("tokens_min", int), ("tokens_max", int), ("language_mix_min", float),
        ):
            raw = (params.get(name) or "").strip()
            if raw:
                try:
                    values[name] = kind(raw)
                except ValueError:
                    errors[name] = f"not a number: {raw[:40]!r}"
        for name in ("status", "reflection", "truncated", "source", "q", "group_id", "prompt_id", "reviewed"):
            values[name] = (params.get(name) or "").strip()[:200]
        if values["status"] and values["status"] not in STATUSES:
            errors["status"] = f"one of {', '.join(STATUSES)}"
            values["status"] = ""
        return cls(**values), errors

    def apply(self, traces: QuerySet, *, user=None) -> QuerySet:
        if self.step_min is not None:
            traces = traces.filter(step__gte=self.step_min)
        if self.step_max is not None:
            traces = traces.filter(step__lte=self.step_max)
        if self.status:
            traces = traces.filter(status=self.status)
        if self.reward_min is not None:
            traces = traces.filter(reward__gte=self.reward_min)
        if self.reward_max is not None:
            traces = traces.filter(reward__lte=self.reward_max)
        if self.tokens_min is not None:
            traces = traces.filter(tokens__gte=self.tokens_min)
        if self.tokens_max is not None:
            traces = traces.filter(tokens__lte=self.tokens_max)
        if self.reflection in ("yes", "no"):
            traces = traces.filter(has_reflection=self.reflection == "yes")
        if self.truncated in ("yes", "no"):
            traces = traces.filter(truncated=self.truncated == "yes")
        if self.language_mix_min is not None:
            traces = traces.filter(language_mix__gte=self.language_mix_min)
        if self.source:
            traces = traces.filter(source=self.source)
        if self.group_id:
            traces = traces.filter(group_id=self.group_id)
        if self.prompt_id:
            traces = traces.filter(prompt_id=self.prompt_id)
        if self.q:
            traces = traces.filter(Q(completion__icontains=self.q) | Q(prompt__icontains=self.q))
        if self.reviewed in ("yes", "no") and user is not None:
            mine = Annotation.objects.filter(trace_id=OuterRef("id"), user=user)
            traces = traces.filter(~Exists(mine)) if self.reviewed == "no" else traces.filter(Exists(mine))
        return traces


def trace_page(run_id: int, flt: TraceFilter, *, page: int = 1, user=None, page_size: int = PAGE_SIZE) -> tuple[list[Trace], bool]:
    """One page of matching traces (newest step first) and whether another page follows.

    No COUNT(*): on a run with hundreds of thousands of traces the count would cost more than the page.
    """
    page = max(1, page)
    traces = flt.apply(Trace.objects.filter(run_id=run_id), user=user).only(*LIST_FIELDS)
    rows = list(traces.order_by("-step", "seq")[(page - 1) * page_size : page * page_size + 1])
    return rows[:page_size], len(rows) > page_size


def trace_group(run_id: int, group_id: str) -> list[Trace]:
    """All G completions of one prompt at one step, best reward first."""
    return list(Trace.objects.filter(run_id=run_id, group_id=group_id).order_by("seq"))


PROMPT_PAGE_SIZE = 200


@dataclass
class PromptHistory:
    """One page of one prompt's completions across steps, and how many there are in all."""

    traces: list[Trace]
    total: int
    page: int
    page_size: int

    @property
    def first(self) -> int:  # 1-based position of the page's first trace (0 when empty)
        return (self.page - 1) * self.page_size + 1 if self.traces else 0

    @property
    def last(self) -> int:
        return self.first + len(self.traces) - 1 if self.traces else 0

    @property
    def has_next(self) -> bool:
        return self.page * self.page_size < self.total

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def prompt_history(run_id: int, prompt_id: str, *, page: int = 1, page_size: int = PROMPT_PAGE_SIZE) -> PromptHistory:
    """One prompt across steps: its completions in step order (how the answer evolved), a page at a time.
    The count is one prompt's (indexed by prompt_id), so it is cheap."""
    page = max(1, page)
    traces = Trace.objects.filter(run_id=run_id, prompt_id=prompt_id)
    rows = list(traces.only(*LIST_FIELDS, "think").order_by("step", "seq")[(page - 1) * page_size : page * page_size])
    total = traces.count() if rows or page > 1 else 0
    return PromptHistory(traces=rows, total=total, page=page, page_size=page_size)


def next_unreviewed(run_id: int, user, *, after_seq: int | None = None) -> Trace | None:
    """The review queue: the first trace (by seq) this user has not annotated, after `after_seq`."""
    traces = Trace.objects.filter(run_id=run_id).exclude(annotations__user=user)
    if after_seq is not None:
        later = traces.filter(seq__gt=after_seq).order_by("seq").only("id", "seq").first()
        if later is not None:
            return later
    return traces.order_by("seq").only("id", "seq").first()
