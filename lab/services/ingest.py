"""A run's events.jsonl into the database: incremental, batched, and the same rows however often it runs.

The trainer appends one JSON object a line, each with a monotonically increasing `seq` (docs/API_trainer.md).
On resume it truncates the file back to the seq its checkpoint stored and writes the later steps again.
The database mirrors the file, keyed by (run, seq):
- a seq above Run.ingested_seq is new: stored (bulk inserts, unique constraints as a second guard);
- a seq at or below it was written again by a resumed trainer: if it is the same event (type and step)
  as the stored one it is skipped — so each step's metrics and traces are stored once — and from the
  first seq where the new attempt differs, the rows of the dead attempt's lost steps are replaced;
- `final=True` (the trainer has exited) drops rows above the file's last seq.

A line without its newline is a write in progress (or torn by a crash): it is left for the next call.
A complete line that is not a JSON object with an integer `seq` and a known `type` is skipped and logged.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from lab.models import CheckpointRecord, EvalResult, Metric, Run, RunLog, Trace
from lab.services.traces import REFLECTION_MARKERS, has_reflection, language_mix

logger = logging.getLogger(__name__)

BATCH_EVENTS = 5000  # events per transaction: large enough for speed, small enough to show progress
READ_CHUNK = 4 << 20  # bytes read per pass over the file
MARK_BYTES = 128  # the bytes before the offset, to notice a file rewritten behind the reader's back
TRACE_STATUSES = ("correct", "wrong", "unparseable", "skipped")
STEP_TABLES = ((Metric, "metric"), (Trace, "trace"), (CheckpointRecord, "checkpoint"), (EvalResult, "eval"))
ALL_TABLES = (Metric, Trace, CheckpointRecord, EvalResult, RunLog)


@dataclass
class EventTail:
    """Where reading one events file stopped: just past the last complete line."""

    offset: int = 0  # bytes
    lines: int = 0  # complete lines before offset (for error messages)
    seq: int = -1  # the last seq read
    inode: int | None = None
    mark: bytes = b""  # the file's bytes just before offset when they were read

    def restart(self, inode: int) -> None:
        self.offset, self.lines, self.seq, self.inode, self.mark = 0, 0, -1, inode, b""


def ingest_events(run: Run, path: str | os.PathLike, *, tail: EventTail | None = None, final: bool = False,
                  max_events: int | None = None) -> int:
    """Bring the database in line with the complete events of `path`; return how many events were stored.

    `tail` (kept by the caller between polls) makes each call read only what was appended since the
    last one; without it the file is read from the start. A file that shrank, was replaced or was
    rewritten is read again from the start. `max_events` bounds one call's work (roughly: whole chunks),
    so a supervisor catching up on a long file still heartbeats; the next call goes on from there.
    """
    path = Path(path)
    tail = tail if tail is not None else EventTail()
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return 0
    stored_seq = Run.objects.filter(id=run.id).values_list("ingested_seq", flat=True).first()
    if stored_seq is None:
        handle.close()
        return 0
    stored = read = 0
    size = READ_CHUNK
    with handle:
        if _rewritten(handle, tail):
            tail.restart(os.fstat(handle.fileno()).st_ino)
        while True:
            handle.seek(tail.offset)
            chunk = handle.read(size)
            end = chunk.rfind(b"\n")
            if end < 0:
                if len(chunk) < size:
                    break  # only a line in progress
                size *= 2  # one line longer than a chunk
                continue
            size = READ_CHUNK
            events = _parse_lines(chunk[: end + 1], path, tail.lines, tail.seq)
            count, stored_seq = _store(run, events, stored_seq)
            stored += count
            read += len(events)
            if events:
                tail.seq = events[-1]["seq"]
            tail.offset += end + 1
            tail.lines += chunk.count(b"\n", 0, end + 1)
            tail.mark = chunk[max(0, end + 1 - MARK_BYTES) : end + 1]
            if len(chunk) < size or (max_events is not None and read >= max_events and not final):
                break
    if final and stored_seq > tail.seq:
        _drop_from(run.id, tail.seq + 1)
        stored_seq = tail.seq
    run.ingested_seq = stored_seq
    return stored


def _rewritten(handle, tail: EventTail) -> bool:
    """Is the file not the one (or no longer the content) this tail read up to its offset?"""
    stat = os.fstat(handle.fileno())
    if stat.st_ino != tail.inode or stat.st_size < tail.offset:
        return True
    if tail.mark:
        handle.seek(tail.offset - len(tail.mark))
        return handle.read(len(tail.mark)) != tail.mark
    return False


def _parse_lines(data: bytes, path: Path, lines_before: int, last_seq: int) -> list[dict]:
    """The valid events of `data` (complete lines), in file order, each seq above the one before."""
    events = []
    text = data.decode("utf-8", "replace")  # once per chunk: json.loads(bytes) re-detects the encoding per line
    for number, line in enumerate(text.split("\n")[:-1], start=lines_before + 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:
            logger.warning("%s line %d: not JSON (%s); line skipped", path, number, exc)
            continue
        seq = event.get("seq") if isinstance(event, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool):
            logger.warning("%s line %d: no integer 'seq'; line skipped", path, number)
            continue
        if event.get("type") not in ROW_BUILDERS:
            logger.warning("%s line %d: unknown type %r; line skipped", path, number, event.get("type"))
            continue
        if seq <= last_seq:
            logger.warning("%s line %d: seq %d after seq %d; line skipped", path, number, seq, last_seq)
            continue
        events.append(event)
        last_seq = seq
    return events


def _store(run: Run, events: list[dict], stored_seq: int) -> tuple[int, int]:
    """Store `events` (ascending seq) given that seqs up to `stored_seq` are stored; (count, new stored_seq)."""
    replayed = [e for e in events if e["seq"] <= stored_seq]
    fresh = events[len(replayed) :]
    if replayed:
        diverged = _first_divergence(run.id, replayed)
        if diverged is not None:
            logger.info("run %s: events from seq %d differ from the stored ones (a resumed attempt); replacing",
                        run.id, diverged)
            _drop_from(run.id, diverged)
            stored_seq = diverged - 1
            fresh = [e for e in events if e["seq"] >= diverged]
    for start in range(0, len(fresh), BATCH_EVENTS):
        _store_batch(run, fresh[start : start + BATCH_EVENTS])
    if fresh:
        stored_seq = fresh[-1]["seq"]
    return len(fresh), stored_seq


def _signature(event: dict) -> tuple:
    if event["type"] in ("status", "log"):
        return (event["type"], None)
    return (event["type"], _int(event.get("step")))


def _first_divergence(run_id: int, events: list[dict]) -> int | None:
    """The first seq of `events` whose stored row is missing or of another type or step."""
    low, high = events[0]["seq"], events[-1]["seq"]
    stored: dict[int, tuple] = {}
    for model, kind in STEP_TABLES:
        for seq, step in model.objects.filter(run_id=run_id, seq__range=(low, high)).values_list("seq", "step"):
            stored[seq] = (kind, step)
    for seq, kind in RunLog.objects.filter(run_id=run_id, seq__range=(low, high)).values_list("seq", "kind"):
        stored[seq] = (kind, None)
    for event in events:
        if stored.get(event["seq"]) != _signature(event):
            return event["seq"]
    return None


def _drop_from(run_id: int, seq: int) -> None:
    """Forget the rows of seq >= `seq`: steps a dead attempt wrote after the checkpoint its successor used."""
    with transaction.atomic():
        for model in ALL_TABLES:
            model.objects.filter(run_id=run_id, seq__gte=seq).delete()
        Run.objects.filter(id=run_id, ingested_seq__gte=seq).update(ingested_seq=seq - 1)


def _store_batch(run: Run, events: list[dict]) -> None:
    rows: dict[type, list[tuple]] = {model: [] for model in ALL_TABLES}
    for event in events:
        model, build = ROW_BUILDERS[event["type"]]
        rows[model].extend(build(run.id, event))
    progress = _progress(events)
    with transaction.atomic():
        for model, values in rows.items():
            if values:
                _table(model).insert(values)
        Run.objects.filter(id=run.id, ingested_seq__lt=events[-1]["seq"]).update(**progress)
        _schedule_evaluations(run.id, [e for e in events if e["type"] == "checkpoint"])


def _schedule_evaluations(run_id: int, checkpoints: list[dict]) -> None:
    """Evaluation jobs for the checkpoints the run asked for (Run.eval_every), in the batch's transaction,
    so a crash never stores a checkpoint without its job; lab.services.evaluations makes it idempotent."""
    if not checkpoints:
        return
    from lab.services.evaluations import schedule_evaluation

    parent = Run.objects.filter(id=run_id, eval_every__gt=0).first()
    if parent is None:
        return
    for event in checkpoints:
        try:
            schedule_evaluation(parent, _int(event.get("step")), _text(event.get("path")))
        except (ValidationError, OSError) as exc:  # a bad job must not stop ingestion
            logger.error("run %s: no evaluation job for step %s: %s", run_id, event.get("step"), exc)


class _Table:
    """A raw multi-row INSERT … ON CONFLICT DO NOTHING for one event table (SQLite and PostgreSQL).

    bulk_create spends most of its time preparing each value of each object; events arrive as plain
    values, so rows go straight to executemany. Fields the builder does not fill (added to the model
    later) get their model default, so the insert keeps working when the model grows.
    """

    def __init__(self, model, fields: tuple[str, ...]):
        meta = model._meta
        self.fields = fields
        self.extra = [f for f in meta.concrete_fields if not f.primary_key and f.attname not in fields]
        columns = [meta.get_field(name).column for name in fields] + [f.column for f in self.extra]
        quote = connection.ops.quote_name
        self.sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(c) for c in columns)}) "
                    f"VALUES ({', '.join(['%s'] * len(columns))}) ON CONFLICT DO NOTHING")

    def insert(self, rows: list[tuple]) -> None:
        now = timezone.now()
        extra = tuple(
            f.get_db_prep_save(now if getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False)
                               else f.get_default(), connection)
            for f in self.extra
        )
        if extra:
            rows = [row + extra for row in rows]
        with connection.cursor() as cursor:
            cursor.executemany(self.sql, rows)


_TABLES: dict = {}
COLUMNS = {
    Metric: ("run_id", "seq", "step", "name", "value"),
    Trace: ("run_id", "seq", "step", "group_id", "prompt_id", "prompt", "completion", "think", "answer", "reward",
            "rewards", "advantage", "status", "tokens", "truncated", "has_reflection", "language_mix", "source"),
    CheckpointRecord: ("run_id", "seq", "step", "path"),
    EvalResult: ("run_id", "seq", "step", "benchmark", "metric", "value", "n"),
    RunLog: ("run_id", "seq", "kind", "message"),
}


def _table(model) -> _Table:
    key = (model, connection.vendor)
    if key not in _TABLES:
        _TABLES[key] = _Table(model, COLUMNS[model])
    return _TABLES[key]


def _progress(events: list[dict]) -> dict:
    """Run fields to update after a batch: highest seq, latest step, and the last status event's view."""
    update = {"ingested_seq": events[-1]["seq"], "last_activity_at": timezone.now()}
    steps = [e["step"] for e in events if isinstance(e.get("step"), int)]
    if steps:
        update["step"] = steps[-1]
    for event in reversed(events):
        if event["type"] == "status":
            for field in ("total_steps", "step"):
                if isinstance(event.get(field), int):
                    update[field] = event[field]
            if event.get("phase"):
                update["phase"] = str(event["phase"])[:32]
            if "eta_s" in event:
                update["eta_s"] = _number(event["eta_s"])
            break
    return update


def _number(value) -> float | None:
    """JSON number → float; NaN, inf and non-numbers → None (the database stores null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _int(value) -> int:
    return int(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0


def _text(value, limit: int | None = None) -> str:
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    return text[:limit] if limit else text


def _metric_rows(run_id: int, event: dict) -> list[tuple]:
    values = event.get("metrics") or event.get("values")
    if not isinstance(values, dict):
        values = {event["name"]: event.get("value")} if "name" in event else {}
    seq, step = event["seq"], _int(event.get("step"))
    return [(run_id, seq, step, _text(name, 100), _number(value)) for name, value in values.items()]


def _trace_status(event: dict) -> str:
    status = event.get("status")
    if status in TRACE_STATUSES:
        return status
    correct = event.get("correct")
    if correct is None:
        return "unparseable" if event.get("answer") in (None, "") else ""
    return "correct" if correct else "wrong"


_REWARDS = Trace._meta.get_field("rewards")


def _has_reflection(text: str) -> bool:
    """lab.services.traces.has_reflection, skipping its regex when no marker occurs at all (most traces)."""
    lower = text.lower()
    return any(marker in lower for marker in REFLECTION_MARKERS) and has_reflection(text)


_LATIN_WORD = re.compile(r"[A-Za-z_]")


def _language_mix(text: str) -> float | None:
    """lab.services.traces.language_mix for English; plain ASCII (most traces) has no mixed word at all."""
    if text.isascii():
        return 0.0 if _LATIN_WORD.search(text) else None  # a word that is not all digits, or no word
    return language_mix(text)


def _trace_rows(run_id: int, event: dict) -> list[tuple]:
    rewards = event.get("rewards") if isinstance(event.get("rewards"), dict) else {}
    # the reading aids the trace pages filter on, computed here once when the trainer did not send them
    reasoning = _text(event.get("think")) or _text(event.get("completion"))
    reflection = bool(event["has_reflection"]) if "has_reflection" in event else _has_reflection(reasoning)
    mix = _number(event["language_mix"]) if "language_mix" in event else _language_mix(reasoning)
    rewards = _REWARDS.get_db_prep_save({str(k): _number(v) for k, v in rewards.items()}, connection)
    return [(
        run_id, event["seq"], _int(event.get("step")),
        _text(event.get("group_id") or event.get("group"), 64), _text(event.get("prompt_id"), 128),
        _text(event.get("prompt")), _text(event.get("completion")), _text(event.get("think")),
        _text(event.get("answer")), _number(event.get("reward")), rewards, _number(event.get("advantage")),
        _trace_status(event), _int(event.get("tokens")), bool(event.get("truncated", False)),
        reflection, mix,
        _text(event.get("source") or "train", 16),
    )]


def _checkpoint_rows(run_id: int, event: dict) -> list[tuple]:
    return [(run_id, event["seq"], _int(event.get("step")), _text(event.get("path"), 500))]


def _eval_rows(run_id: int, event: dict) -> list[tuple]:
    return [(run_id, event["seq"], _int(event.get("step")), _text(event.get("benchmark"), 64),
             _text(event.get("metric"), 32), _number(event.get("value")), _int(event.get("n")))]


def _log_rows(run_id: int, event: dict) -> list[tuple]:
    message = event.get("message")
    if event["type"] == "status" and not message:
        message = event.get("phase")
    return [(run_id, event["seq"], event["type"], _text(message))]


ROW_BUILDERS = {
    "metric": (Metric, _metric_rows),
    "trace": (Trace, _trace_rows),
    "checkpoint": (CheckpointRecord, _checkpoint_rows),
    "eval": (EvalResult, _eval_rows),
    "status": (RunLog, _log_rows),
    "log": (RunLog, _log_rows),
}
