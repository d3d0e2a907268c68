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

A line without its newline is a write in progress (or torn by a crash): it is left for the next call.
A complete line that is not a JSON object with an integer `seq` and a known `type` is skipped and logged.
On a long file, the next block is parsed and turned into rows in a helper thread while one is stored.
"""
from __future__ import annotations

import bisect
import json
import logging
import math
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from lab.models import CheckpointRecord, EvalResult, Metric, MetricSummary, Run, RunLog, Trace
from lab.services.metric_summaries import MAX_LEVEL, MIN_LEVEL, summarise
from lab.services.traces import REFLECTION_MARKERS, has_reflection, language_mix

logger = logging.getLogger(__name__)

BATCH_EVENTS = 5000  # events per transaction: large enough for speed, small enough to show progress
# rows per transaction at most (an event with many metrics is many rows): a transaction holds SQLite's only
# write lock, so a reviewer's save waits for the batch being stored; bounded, that wait stays well under a second
BATCH_ROWS = 10_000
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
    with handle, _Prefetch() as prefetch:
        if _rewritten(handle, tail):
            tail.restart(os.fstat(handle.fileno()).st_ino)
        blocks = _blocks(handle, tail.offset)
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
            if events:
                tail.seq = events[-1]["seq"]
            tail.offset += len(block)
            tail.lines += block.count(b"\n")
            tail.mark = block[-MARK_BYTES:]
            block = following
    if final and stored_seq > tail.seq:
        _drop_from(run.id, tail.seq + 1)
        stored_seq = tail.seq
    run.ingested_seq = stored_seq
    return stored


def _blocks(handle, offset: int):
    """Runs of complete lines from `offset` on, about READ_CHUNK bytes each; a line in progress is left."""
    size = READ_CHUNK
    while True:
        handle.seek(offset)
        chunk = handle.read(size)
        end = chunk.rfind(b"\n")
        if end < 0:
            if len(chunk) < size:
                return  # only a line in progress
            size *= 2  # one line longer than a chunk
            continue
        yield chunk[: end + 1]
        if len(chunk) < size:
            return
        offset += end + 1
        size = READ_CHUNK


class _Prefetch:
    """Runs a call now, or in one helper thread (started when first needed) while the caller goes on.

    Preparing a block (JSON parsing, building rows) is pure Python; storing one mostly waits on the
    database server (the driver releases the GIL then), so on a long file the two overlap. A poll that
    finds one block starts no thread.
    """

    def __init__(self):
        self.pool: ThreadPoolExecutor | None = None

    def now(self, fn, *args) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future

    def later(self, fn, *args) -> Future:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-prepare")
        return self.pool.submit(fn, *args)

    def __enter__(self) -> "_Prefetch":
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


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
        try:
            event = _decode(line)
        except ValueError as exc:
            if line.strip():
                logger.warning("%s line %d: not JSON (%s); line skipped", path, number, exc)
            continue
        seq = event.get("seq") if type(event) is dict else None
        if type(seq) is not int:  # bool is an int subclass but no seq
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


_raw_decode = json.JSONDecoder().raw_decode


def _decode(line: str):
    """json.loads(line) less its per-call set-up: one JSON value, JSON whitespace around it allowed."""
    try:
        value, end = _raw_decode(line)
    except ValueError:
        value, end = _raw_decode(line, len(line) - len(line.lstrip(" \t\r")))  # leading whitespace
    if end != len(line) and line[end:].strip(" \t\r"):
        raise ValueError(f"Extra data at column {end + 1}")
    return value


def _prepare(run_id: int, block: bytes, path: Path, lines_before: int, last_seq: int, stored_seq: int):
    """A block's valid events and, for each above `stored_seq` (the others are most likely stored
    already), its (model, rows): everything that needs no database. The others get None."""
    events = _parse_lines(block, path, lines_before, last_seq)
    return events, [_rows(run_id, event) if event["seq"] > stored_seq else None for event in events]


def _rows(run_id: int, event: dict) -> tuple:
    model, build = ROW_BUILDERS[event["type"]]
    return model, build(run_id, event)


def _store(run: Run, events: list[dict], rows: list[tuple], stored_seq: int) -> tuple[int, int]:
    """Store `events` (ascending seq; `rows` built from them by _prepare) given that seqs up to
    `stored_seq` are stored; (count, new stored_seq)."""
    start = bisect.bisect_right([e["seq"] for e in events], stored_seq)  # the first fresh event
    if start:
        diverged = _first_divergence(run.id, events[:start])
        if diverged is not None:
            logger.info("run %s: events from seq %d differ from the stored ones (a resumed attempt); replacing",
                        run.id, diverged)
            _drop_from(run.id, diverged)
            stored_seq = diverged - 1
            start = bisect.bisect_left([e["seq"] for e in events], diverged)
    for index in range(start, len(events)):
        if rows[index] is None:  # replaced after a divergence: not built in advance
            rows[index] = _rows(run.id, events[index])
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
        lost = Metric.objects.filter(run_id=run_id, seq__gte=seq, value__isnull=False).order_by()
        first_steps = dict(lost.values("name").annotate(first=Min("step")).values_list("name", "first"))
        for model in ALL_TABLES:
            model.objects.filter(run_id=run_id, seq__gte=seq).delete()
        _rebuild_summaries(run_id, first_steps)
        Run.objects.filter(id=run_id, ingested_seq__gte=seq).update(ingested_seq=seq - 1)


def _store_batch(run: Run, events: list[dict], event_rows: list[tuple]) -> None:
    rows: dict[type, list[tuple]] = {model: [] for model in ALL_TABLES}
    for model, values in event_rows:
        rows[model].extend(values)
    progress = _progress(run, events)
    with transaction.atomic():
        for model, values in rows.items():
            if values:
                _table(model).insert(values)
        store_summaries(run.id, rows[Metric])
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
    """A raw insert of plain row tuples into one event table, skipping rows already stored (run, seq[, name]).

    bulk_create spends most of its time preparing each value of each object; events arrive as plain
    values, so rows go straight to the driver. Fields the builder does not fill (added to the model
    later) get their model default, so the insert keeps working when the model grows.
    SQLite: executemany of INSERT … ON CONFLICT DO NOTHING (in-process, already fast).
    PostgreSQL: a row-by-row INSERT costs a parameter round of work per row, so the rows are COPYed
    straight into the table inside a savepoint. Fresh seqs are above Run.ingested_seq, so a stored row
    with the same key only exists when another ingester got there first; then COPY fails as a whole, the
    savepoint is rolled back and the rows go the careful way: COPY into a session temp table (no
    indexes, no WAL) and one INSERT … SELECT … ON CONFLICT DO NOTHING that also empties the stage.
    A table whose rows merge into stored ones instead (`on_conflict`: ON CONFLICT … DO UPDATE, the
    metric summaries; `{t}` stands for the table) uses it in both places; rows expected to clash
    (`clashing`) go straight to the stage.
    """

    def __init__(self, model, fields: tuple[str, ...], on_conflict: str = "DO NOTHING"):
        meta = model._meta
        self.fields = fields
        self.extra = [f for f in meta.concrete_fields if not f.primary_key and f.attname not in fields]
        columns = [meta.get_field(name).column for name in fields] + [f.column for f in self.extra]
        quote = connection.ops.quote_name
        table, names = quote(meta.db_table), ", ".join(quote(c) for c in columns)
        on_conflict = on_conflict.format(t=table)
        self.sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))}) ON CONFLICT {on_conflict}"
        stage = quote(f"ingest_stage_{meta.db_table}")
        # ON COMMIT DELETE ROWS is a second guard only: inside an outer transaction there is no commit
        # between batches, so the move below empties the stage itself.
        self.create_stage = (f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS "
                             f"AS SELECT {names} FROM {table} WITH NO DATA")
        self.copy_table = f"COPY {table} ({names}) FROM STDIN"
        self.copy_stage = f"COPY {stage} ({names}) FROM STDIN"
        self.move = (f"WITH staged AS (DELETE FROM {stage} RETURNING {names}) "
                     f"INSERT INTO {table} ({names}) SELECT {names} FROM staged ON CONFLICT {on_conflict}")

    def insert(self, rows: list[tuple], *, clashing: bool = False) -> None:
        now = timezone.now()
        extra = tuple(
            f.get_db_prep_save(now if getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False)
                               else f.get_default(), connection)
            for f in self.extra
        )
        if extra:
            rows = [row + extra for row in rows]
        if connection.vendor != "postgresql":
            with connection.cursor() as cursor:
                cursor.executemany(self.sql, rows)
            return
        if not clashing:
            try:
                with transaction.atomic(), connection.wrap_database_errors, connection.cursor() as cursor:
                    self._copy(cursor, self.copy_table, rows)
                return
            except IntegrityError:  # some rows are stored already: insert the others only (or merge)
                pass
        with connection.cursor() as cursor:
            cursor.execute(self.create_stage)
            with connection.wrap_database_errors:
                self._copy(cursor, self.copy_stage, rows)
            cursor.execute(self.move)

    @staticmethod
    def _copy(cursor, sql: str, rows: list[tuple]) -> None:
        with cursor.cursor.copy(sql) as copy:  # the driver's cursor: Django's wrapper has no copy()
            write = copy.write_row
            for row in rows:
                write(row)


_TABLES: dict = {}
COLUMNS = {
    Metric: ("run_id", "seq", "step", "name", "value"),
    Trace: ("run_id", "seq", "step", "group_id", "prompt_id", "prompt", "completion", "think", "answer", "reward",
            "rewards", "advantage", "status", "tokens", "truncated", "has_reflection", "language_mix", "source",
            "gold"),
    CheckpointRecord: ("run_id", "seq", "step", "path"),
    EvalResult: ("run_id", "seq", "step", "benchmark", "metric", "value", "n"),
    RunLog: ("run_id", "seq", "kind", "message"),
    MetricSummary: ("run_id", "name", "level", "block", "low_step", "low", "high_step", "high"),
}


# A summary merges into the stored one of its block: the lower minimum and the higher maximum, each at
# its lowest step on a tie (lab.services.metric_summaries.merge, in SQL; SET reads the stored row).
_SUMMARY_MERGE = (
    "(run_id, name, level, block) DO UPDATE SET "
    "low_step = CASE WHEN excluded.low < {t}.low OR (excluded.low = {t}.low AND excluded.low_step < {t}.low_step) "
    "THEN excluded.low_step ELSE {t}.low_step END, "
    "low = CASE WHEN excluded.low < {t}.low THEN excluded.low ELSE {t}.low END, "
    "high_step = CASE WHEN excluded.high > {t}.high OR (excluded.high = {t}.high AND excluded.high_step < {t}.high_step) "
    "THEN excluded.high_step ELSE {t}.high_step END, "
    "high = CASE WHEN excluded.high > {t}.high THEN excluded.high ELSE {t}.high END"
)
ON_CONFLICT = {MetricSummary: _SUMMARY_MERGE}  # the others skip a row already stored (DO NOTHING)


def _table(model) -> _Table:
    key = (model, connection.vendor)
    if key not in _TABLES:
        _TABLES[key] = _Table(model, COLUMNS[model], ON_CONFLICT.get(model, "DO NOTHING"))
    return _TABLES[key]


def store_summaries(run_id: int, metric_rows: list[tuple]) -> None:
    """Merge (run_id, seq, step, name, value) metric rows into the run's metric summaries; part of the
    caller's transaction. Merging rows stored before changes nothing.

    Steps mostly grow, so most blocks are new: a block lying wholly after the last step a series has
    summaries for cannot be stored yet, and is inserted plainly (COPY on PostgreSQL); only the others
    (about one a level, where the last batch ended) are merged with ON CONFLICT … DO UPDATE, which
    costs several times more per row."""
    summaries = summarise((row[3], row[2], row[4]) for row in metric_rows)
    if not summaries:
        return
    last = _last_summarised_steps(run_id, sorted({name for name, _, _ in summaries}))
    fresh, touching = [], []
    for (name, level, block), summary in summaries.items():
        end = last.get(name)
        (fresh if end is None or block > end >> level else touching).append((run_id, name, level, block, *summary))
    table = _table(MetricSummary)
    if touching:
        table.insert(touching, clashing=True)
    if fresh:
        table.insert(fresh)


def _last_summarised_steps(run_id: int, names: list[str]) -> dict[str, int]:
    """For each name with summaries, the last step its lowest-level blocks cover: every stored block of
    any level starts at or before it (all levels are written and rebuilt together)."""
    sql = (f"SELECT %s, (SELECT block FROM {MetricSummary._meta.db_table} WHERE run_id = %s AND name = %s "
           f"AND level = {MIN_LEVEL} ORDER BY block DESC LIMIT 1)")
    params = [value for index, name in enumerate(names) for value in (index, run_id, name)]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join([sql] * len(names)), params)
        found = cursor.fetchall()
    return {names[index]: ((block + 1) << MIN_LEVEL) - 1 for index, block in found if block is not None}


def _rebuild_summaries(run_id: int, first_steps: dict[str, int]) -> None:
    """After a series lost the points from step `first_steps[name]` on: every block from that step on is
    computed again from the points left (blocks wholly before it keep their summaries)."""
    for name, first in first_steps.items():
        affected = Q()
        for level in range(MIN_LEVEL, MAX_LEVEL + 1):
            affected |= Q(level=level, block__gte=first >> level)
        MetricSummary.objects.filter(affected, run_id=run_id, name=name).delete()
        start = first >> MAX_LEVEL << MAX_LEVEL  # where the widest affected block starts
        points = Metric.objects.filter(run_id=run_id, name=name, step__gte=start).values_list("name", "step", "value")
        rebuilt = summarise(points.iterator(chunk_size=10_000))  # streamed: only the summaries are kept
        kept = {key: summary for key, summary in rebuilt.items() if key[2] >= first >> key[1]}
        if kept:
            _table(MetricSummary).insert([(run_id, *key, *summary) for key, summary in kept.items()])


MAIN_PHASES = ("sft", "grpo", "rollout", "eval", "done")  # status phases only the main job emits


def _stage_of(event: dict) -> str | None:
    """"base" for the base pretraining's events (phase "pretrain"), "main" for the main job's, None for
    events either stage emits (starting, checkpointing, failed, stopped, checkpoints, logs)."""
    kind, phase = event["type"], event.get("phase")
    if phase == "pretrain":
        return "base"
    if kind in ("metric", "trace", "eval") or (kind == "status" and phase in MAIN_PHASES):
        return "main"
    return None


def _stage_plan(run: Run) -> dict:
    """Run.base_steps / main_steps from the run's config: a base stage runs before the main job when
    base.steps > 0 and the run is not itself a pretraining (r1model.train.runner)."""
    config = run.config if isinstance(run.config, dict) else {}
    base = config.get("base") if isinstance(config.get("base"), dict) else {}
    kind = config.get("kind", run.kind)
    base_steps = _int(base.get("steps")) if kind != "pretrain" else 0
    return {"base_steps": max(0, base_steps), "main_steps": max(0, _int(config.get("total_steps")))}


def _progress(run: Run, events: list[dict]) -> dict:
    """Run fields to update after a batch: highest seq, latest step, the last status event's view, and
    the stage the last events came from (StageProgress)."""
    update = {"ingested_seq": events[-1]["seq"], "last_activity_at": timezone.now(), **_stage_plan(run)}
    if update["base_steps"]:
        for event in reversed(events):  # the trainer names the stage in its status events; older streams did not
            stage = event.get("stage") if event["type"] == "status" else None
            stage = stage if stage in ("base", "main") else _stage_of(event)
            if stage:
                update["stage"] = stage
                break
    steps = [e["step"] for e in events if isinstance(e.get("step"), int)]
    if steps:
        update["step"] = steps[-1]
    for event in reversed(events):  # the last status tells phase, total and ETA; the step is the last event's
        if event["type"] == "status":
            if isinstance(event.get("total_steps"), int):
                update["total_steps"] = event["total_steps"]
            if event.get("phase"):
                update["phase"] = str(event["phase"])[:32]
            if "eta_s" in event:
                update["eta_s"] = _number(event["eta_s"])
            break
    for event in events:
        if event["type"] == "status" and event.get("phase") == "starting" and isinstance(event.get("step"), int):
            update["resumed_from_step"] = event["step"]  # the attempt's first status: where its trainer started
        elif event["type"] == "log" and isinstance(event.get("datasets"), list):
            update["data_split"] = _data_split(run, event["datasets"])
    return update


def _data_split(run: Run, sizes: list) -> list[dict]:
    """The trainer's split sizes, each named by the config's own reference or task (the trainer names the
    resolved file, a server path that pages must not show)."""
    specs = (run.config or {}).get("datasets") or [] if isinstance(run.config, dict) else []
    out = []
    for index, item in enumerate(sizes[:100]):
        if not isinstance(item, dict):
            continue
        spec = specs[index] if index < len(specs) and isinstance(specs[index], dict) else {}
        out.append({"dataset": _text(spec.get("path") or spec.get("task") or f"dataset {index + 1}", 200),
                    "train_size": item["train_size"] if isinstance(item.get("train_size"), int) else None,
                    "heldout_size": _int(item.get("heldout_size"))})
    return out


_isfinite = math.isfinite
_dumps = json.JSONEncoder().encode  # json.dumps with default arguments, without its argument checks


def _number(value) -> float | None:
    """JSON number → float; NaN, inf and non-numbers → None (the database stores null)."""
    if type(value) is float:  # the common case first: ingestion calls this for every stored number
        return value if _isfinite(value) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _int(value) -> int:
    if type(value) is int:
        return value
    return int(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0


def _text(value, limit: int | None = None) -> str:
    if type(value) is str:
        return value[:limit] if limit else value
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


def _has_reflection(text: str) -> bool:
    """lab.services.traces.has_reflection, skipping its regex when no marker occurs at all (most traces)."""
    lower = text.lower()
    for marker in REFLECTION_MARKERS:
        if marker in lower:
            return has_reflection(text)
    return False


_LATIN_WORD = re.compile(r"[A-Za-z_]")


def _language_mix(text: str) -> float | None:
    """lab.services.traces.language_mix for English; plain ASCII (most traces) has no mixed word at all."""
    if text.isascii():
        return 0.0 if _LATIN_WORD.search(text) else None  # a word that is not all digits, or no word
    return language_mix(text)


def _trace_rows(run_id: int, event: dict) -> list[tuple]:
    get = event.get
    rewards = get("rewards")
    # JSONField's own preparation is json.dumps on both databases; done here it skips two adapter layers
    rewards = _dumps({str(k): _number(v) for k, v in rewards.items()} if isinstance(rewards, dict) else {})
    think, completion = _text(get("think")), _text(get("completion"))
    # the reading aids the trace pages filter on, computed here once when the trainer did not send them
    reasoning = think or completion
    reflection = bool(event["has_reflection"]) if "has_reflection" in event else _has_reflection(reasoning)
    mix = _number(event["language_mix"]) if "language_mix" in event else _language_mix(reasoning)
    return [(
        run_id, event["seq"], _int(get("step")),
        _text(get("group_id") or get("group"), 64), _text(get("prompt_id"), 128),
        _text(get("prompt")), completion, think,
        _text(get("answer")), _number(get("reward")), rewards, _number(get("advantage")),
        _trace_status(event), _int(get("tokens")), bool(get("truncated", False)),
        reflection, mix,
        _text(get("source") or "train", 16),
        _text(get("gold")),
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
