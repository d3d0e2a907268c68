"""Reviewer annotations: one per reviewer and trace (saving again updates it); CSV export."""
from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Iterable, Iterator

from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction

from lab.access import require_team_role
from lab.models import Annotation, Trace

logger = logging.getLogger(__name__)

MAX_LABELS = 20
MAX_LABEL_LENGTH = 40
MAX_COMMENT = 10_000


def clean_labels(raw: str | Iterable[str]) -> list[str]:
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    labels = []
    for item in items:
        label = str(item).strip()[:MAX_LABEL_LENGTH]
        if label and label not in labels:
            labels.append(label)
    if len(labels) > MAX_LABELS:
        raise ValidationError({"labels": f"at most {MAX_LABELS} labels"})
    return labels


LOCKED_RETRIES = 4  # a save that still finds SQLite locked after its busy timeout is tried again this often


def _locked(exc: OperationalError) -> bool:
    return "database is locked" in str(exc) or "database table is locked" in str(exc)


def annotation_save(*, trace: Trace, user, rating: str, labels: str | Iterable[str] = (), comment: str = "") -> Annotation:
    """Create or replace `user`'s annotation of `trace` (reviewers, researchers and admins).

    SQLite has one writer at a time: a save that finds the database locked (a worker storing a long batch
    of events) is tried again a few times before the error reaches the reviewer. Inside a caller's
    transaction nothing can be retried, so the error is raised at once."""
    for attempt in range(LOCKED_RETRIES + 1):
        try:
            return _annotation_save(trace=trace, user=user, rating=rating, labels=labels, comment=comment)
        except OperationalError as exc:
            if not _locked(exc) or attempt == LOCKED_RETRIES or transaction.get_connection().in_atomic_block:
                raise
            logger.warning("annotation of trace %s: %s; trying again", trace.id, exc)
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


@transaction.atomic
def _annotation_save(*, trace: Trace, user, rating: str, labels: str | Iterable[str], comment: str) -> Annotation:
    require_team_role(user, trace.run.team_id, "annotate")
    if rating not in Annotation.Rating.values:
        raise ValidationError({"rating": f"one of {', '.join(Annotation.Rating.values)}"})
    if len(comment or "") > MAX_COMMENT:
        raise ValidationError({"comment": f"at most {MAX_COMMENT} characters"})
    annotation, _ = Annotation.objects.update_or_create(
        trace=trace, user=user, defaults={"rating": rating, "labels": clean_labels(labels), "comment": comment or ""}
    )
    return annotation


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value) -> str:
    """A spreadsheet must never read a cell as a formula: prefix risky starts with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


CSV_HEADER = ["run", "step", "trace_seq", "group_id", "prompt_id", "status", "reward", "reviewer", "rating", "labels", "comment", "answer", "updated_at"]


def annotations_csv(annotations) -> Iterator[str]:
    """Rows of CSV text (header first) for a queryset of annotations; streamed, not built in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
        return value

    writer.writerow(CSV_HEADER)
    yield flush()
    rows = annotations.select_related("trace", "user", "trace__run").order_by("trace__step", "trace__seq", "id")
    for a in rows.iterator(chunk_size=1000):
        cells = [
            a.trace.run.name, a.trace.step, a.trace.seq, a.trace.group_id, a.trace.prompt_id, a.trace.status,
            a.trace.reward, a.user.get_username(), a.rating, ";".join(a.labels or []), a.comment, a.trace.answer,
            a.updated_at.isoformat(),
        ]
        writer.writerow([neutralise_cell(c) for c in cells])
        yield flush()
