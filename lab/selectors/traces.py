"""Trace queries for the viewer and the API: filters, pages, groups, one prompt across steps."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Substr

from lab.models import Annotation, Trace

PAGE_SIZE = 50
LIST_FIELDS = (
    "id", "run_id", "seq", "step", "group_id", "prompt_id", "answer", "gold", "reward", "advantage",
    "status", "tokens", "truncated", "has_reflection", "language_mix", "source",
)
STATUSES = ("correct", "wrong", "unparseable", "skipped")
YES_NO = ("yes", "no")
PREVIEW_CHARS = 160  # the heads of the prompt and the completion the trace list shows (the database cuts them)
NUMBER_PARAMS = (
    ("step_min", int), ("step_max", int), ("reward_min", float), ("reward_max", float),
    ("tokens_min", int), ("tokens_max", int), ("language_mix_min", float),
)
CHOICE_PARAMS = {"status": STATUSES, "reflection": YES_NO, "truncated": YES_NO, "reviewed": YES_NO}
FILTER_PARAMS = (
    "step_min", "step_max", "status", "reward_min", "reward_max", "tokens_min", "tokens_max", "reflection",
    "language_mix_min", "truncated", "source", "q", "group_id", "prompt_id", "reviewed",
)  # the query parameters of TraceFilter


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
        """Parse GET/query parameters; returns the filter and the errors by parameter name, each saying
        what was given and what is allowed (a bad value is left out of the filter)."""
        errors: dict[str, str] = {}
        values: dict = {}
        for name, kind in NUMBER_PARAMS:
            raw = (params.get(name) or "").strip()
            if raw:
                try:
                    value = kind(raw)
                except ValueError:
                    value = None
                if value is None or value != value or value in (float("inf"), float("-inf")):
                    allowed = "a whole number" if kind is int else "a number"
                    errors[name] = f"“{raw[:40]}” is not {allowed}"
                else:
                    values[name] = value
        for name in ("status", "reflection", "truncated", "source", "q", "group_id", "prompt_id", "reviewed"):
            values[name] = (params.get(name) or "").strip()[:200]
        for name, allowed in CHOICE_PARAMS.items():
            if values[name] and values[name] not in allowed:
                errors[name] = f"“{values[name][:40]}” is not one of {', '.join(allowed)}"
                values[name] = ""
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
    traces = flt.apply(Trace.objects.filter(run_id=run_id), user=user).only(*LIST_FIELDS).annotate(
        prompt_preview=Substr("prompt", 1, PREVIEW_CHARS), output_preview=Substr("completion", 1, PREVIEW_CHARS),
    )
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


@dataclass
class ReviewQueue:
    """Where one reviewer stands in a run's (or a filtered set's) review queue.

    trace: the one to rate now (None when every trace of the set has this reviewer's rating);
    reviewed / total: the set's traces this reviewer has rated, and all of them;
    again: the trace comes round a second time (skipped before: the queue reached its end and began again)."""

    trace: Trace | None
    reviewed: int
    total: int
    again: bool = False

    @property
    def left(self) -> int:
        return self.total - self.reviewed

    @property
    def done(self) -> bool:
        return self.trace is None


def review_queue(run_id: int, user, flt: TraceFilter | None = None, *, after_seq: int | None = None) -> ReviewQueue:
    """The review queue: the traces of the run that `flt` selects, in the order they were written (seq), that
    `user` has not rated yet — the first one after `after_seq` (the trace just rated or skipped), else, past
    the end, the first of those left (so skipped traces come back once the rest are done)."""
    flt = flt or TraceFilter()
    if flt.reviewed:  # the queue is always the unrated ones; a reviewed filter would move the goalposts
        flt = TraceFilter(**{**flt.__dict__, "reviewed": ""})
    traces = flt.apply(Trace.objects.filter(run_id=run_id))
    mine = Annotation.objects.filter(trace_id=OuterRef("id"), user=user)
    total = traces.count()
    reviewed = traces.filter(Exists(mine)).count() if total else 0
    pending = traces.filter(~Exists(mine)).order_by("seq").values_list("id", flat=True)
    again = False
    trace_id = pending.filter(seq__gt=after_seq).first() if after_seq is not None else None
    if trace_id is None:
        trace_id = pending.first()
        again = after_seq is not None and trace_id is not None
    trace = Trace.objects.get(id=trace_id) if trace_id is not None else None
    return ReviewQueue(trace=trace, reviewed=reviewed, total=total, again=again)
