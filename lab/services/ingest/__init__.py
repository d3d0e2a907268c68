"""A run's events.jsonl into the database: incremental, batched, and the same rows however often it runs.

The trainer appends one JSON object a line, each with a monotonically increasing `seq` (docs/API_trainer.md).
On resume it truncates the file back to the seq its checkpoint stored and writes the later steps again.
The database mirrors the file, keyed by (run, seq):
- a seq above Run.ingested_seq is new: stored (bulk inserts: executemany on SQLite, COPY on PostgreSQL;
  unique constraints as a second guard);
- a seq at or below it was written again by a resumed trainer: if it is the same event (type and step)
  as the stored one it is skipped — so each step's metrics and traces are stored once — and from the
  first seq where the new attempt differs, the rows of the dead attempt's lost steps are replaced;
- `final=True` (the trainer has exited) drops rows above the file's last seq.
Metric rows also update the run's metric summaries (min/max per power-of-two step block, for charts;
lab.services.metric_summaries) in the same transaction; dropped rows have their blocks rebuilt.

The parts, in the order an event passes them (this module only sequences them):
  tail     reading the file as it grows: whole-line blocks, JSON decoding, the helper thread that
           prepares the next block while one is stored;
  rows     each event as plain row tuples for its table;
  store    batched inserts (COPY on PostgreSQL), the metric summaries' merge, dropping lost steps;
  effects  what a stored batch does to its run: progress fields and evaluation jobs.
"""
from __future__ import annotations

import bisect
import logging
import os
from pathlib import Path

from django.db import transaction

from lab.models import Metric, Run
from lab.services.ingest import effects, store
from lab.services.ingest.rows import ROW_BUILDERS, as_int, event_rows
from lab.services.ingest.store import store_summaries
from lab.services.ingest.tail import EventTail, Prefetch, parse_lines

__all__ = ["EventTail", "ingest_events", "store_summaries"]

logger = logging.getLogger(__name__)

BATCH_EVENTS = 5000  # events per transaction: large enough for speed, small enough to show progress
# rows per transaction at most (an event with many metrics is many rows): a transaction holds SQLite's only
# write lock, so a reviewer's save waits for the batch being stored; bounded, that wait stays well under a second
BATCH_ROWS = 10_000


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
    row = Run.objects.filter(id=run.id).values_list("ingested_seq", "base_steps", "main_steps").first()
    if row is None:
        handle.close()
        return 0
    stored_seq, run.base_steps, run.main_steps = row  # and the stored stage plan, which effects.progress keeps
    run.ingested_seq = stored_seq
    stored = read = 0
    with handle, Prefetch() as prefetch:
        blocks = tail.open_blocks(handle)
        block = next(blocks, None)
        prepared = prefetch.now(_prepare, run.id, block, path, tail.lines, tail.seq, stored_seq) if block else None
        while prepared is not None:
            events, rows = prepared.result()
            following = None
            if max_events is None or final or read + len(events) < max_events:
                following = next(blocks, None)
            if following:  # parsed and turned into rows in a helper thread while this block is stored
                prepared = prefetch.later(_prepare, run.id, following, path, tail.lines + block.count(b"\n"),
                                          events[-1]["seq"] if events else tail.seq, stored_seq)
            else:
                prepared = None
            count, stored_seq = _store(run, events, rows, stored_seq)
            stored += count
            read += len(events)
            tail.advance(block, events)
            block = following
    if final and stored_seq > tail.seq:
        store.drop_from(run.id, tail.seq + 1)
        stored_seq = tail.seq
    run.ingested_seq = stored_seq
    return stored


def _prepare(run_id: int, block: bytes, path: Path, lines_before: int, last_seq: int, stored_seq: int):
    """A block's valid events and, for each above `stored_seq` (the others are most likely stored
    already), its (model, rows): everything that needs no database. The others get None."""
    events = parse_lines(block, path, lines_before, last_seq, ROW_BUILDERS)
    return events, [event_rows(run_id, event) if event["seq"] > stored_seq else None for event in events]


def _store(run: Run, events: list[dict], rows: list[tuple], stored_seq: int) -> tuple[int, int]:
    """Store `events` (ascending seq; `rows` built from them by _prepare) given that seqs up to
    `stored_seq` are stored; (count, new stored_seq)."""
    start = bisect.bisect_right([e["seq"] for e in events], stored_seq)  # the first fresh event
    if start:
        diverged = _first_divergence(run.id, events[:start])
        if diverged is not None:
            logger.info("run %s: events from seq %d differ from the stored ones (a resumed attempt); replacing",
                        run.id, diverged)
            store.drop_from(run.id, diverged)
            stored_seq = diverged - 1
            start = bisect.bisect_left([e["seq"] for e in events], diverged)
    for index in range(start, len(events)):
        if rows[index] is None:  # replaced after a divergence: not built in advance
            rows[index] = event_rows(run.id, events[index])
    for first, last in _batches(rows, start):
        _store_batch(run, events[first:last], rows[first:last])
    if start < len(events):
        stored_seq = events[-1]["seq"]
    return len(events) - start, stored_seq


def _batches(rows: list[tuple], start: int):
    """(first, last) index ranges of `rows` from `start` on, one transaction each: at most BATCH_EVENTS
    events and, unless one event alone has more, at most BATCH_ROWS rows."""
    first, count = start, 0
    for index in range(start, len(rows)):
        size = len(rows[index][1])
        if index > first and (index - first >= BATCH_EVENTS or count + size > BATCH_ROWS):
            yield first, index
            first, count = index, 0
        count += size
    if first < len(rows):
        yield first, len(rows)


def _signature(event: dict) -> tuple:
    if event["type"] in ("status", "log"):
        return (event["type"], None)
    return (event["type"], as_int(event.get("step")))


def _first_divergence(run_id: int, events: list[dict]) -> int | None:
    """The first seq of `events` whose stored row is missing or of another type or step."""
    stored = store.stored_signatures(run_id, events[0]["seq"], events[-1]["seq"])
    for event in events:
        if stored.get(event["seq"]) != _signature(event):
            return event["seq"]
    return None


def _store_batch(run: Run, events: list[dict], rows: list[tuple]) -> None:
    """One transaction: the batch's rows, their metric summaries, the run's progress, evaluation jobs
    (so a crash never stores a checkpoint without its job)."""
    progress = effects.progress(run, events)
    with transaction.atomic():
        by_table = store.insert_rows(rows)
        store_summaries(run.id, by_table[Metric])
        if Run.objects.filter(id=run.id, ingested_seq__lt=events[-1]["seq"]).update(**progress):
            run.ingested_seq, run.base_steps, run.main_steps = (progress["ingested_seq"], progress["base_steps"],
                                                                progress["main_steps"])
        effects.schedule_evaluations(run.id, [e for e in events if e["type"] == "checkpoint"])
