"""Rows into the database: raw batched inserts (COPY on PostgreSQL), metric summaries merged in SQL, and
dropping the rows of a dead attempt's lost steps. Everything here runs in the caller's transaction.
"""
from __future__ import annotations

from django.db import IntegrityError, connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from lab.models import CheckpointRecord, EvalResult, Metric, MetricSummary, Run, RunLog, Trace
from lab.services.metric_summaries import MAX_LEVEL, MIN_LEVEL, summarise

STEP_TABLES = ((Metric, "metric"), (Trace, "trace"), (CheckpointRecord, "checkpoint"), (EvalResult, "eval"))
ALL_TABLES = (Metric, Trace, CheckpointRecord, EvalResult, RunLog)


def insert_rows(event_rows: list[tuple]) -> dict[type, list[tuple]]:
    """Store (model, rows) pairs, each table in one insert; the rows by table."""
    rows: dict[type, list[tuple]] = {model: [] for model in ALL_TABLES}
    for model, values in event_rows:
        rows[model].extend(values)
    for model, values in rows.items():
        if values:
            table_of(model).insert(values)
    return rows


class Table:
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


def table_of(model) -> Table:
    key = (model, connection.vendor)
    if key not in _TABLES:
        _TABLES[key] = Table(model, COLUMNS[model], ON_CONFLICT.get(model, "DO NOTHING"))
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
    table = table_of(MetricSummary)
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


def rebuild_summaries(run_id: int, first_steps: dict[str, int]) -> None:
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
            table_of(MetricSummary).insert([(run_id, *key, *summary) for key, summary in kept.items()])


def drop_from(run_id: int, seq: int) -> None:
    """Forget the rows of seq >= `seq`: steps a dead attempt wrote after the checkpoint its successor used."""
    with transaction.atomic():
        lost = Metric.objects.filter(run_id=run_id, seq__gte=seq, value__isnull=False).order_by()
        first_steps = dict(lost.values("name").annotate(first=Min("step")).values_list("name", "first"))
        for model in ALL_TABLES:
            model.objects.filter(run_id=run_id, seq__gte=seq).delete()
        rebuild_summaries(run_id, first_steps)
        Run.objects.filter(id=run_id, ingested_seq__gte=seq).update(ingested_seq=seq - 1)


def stored_signatures(run_id: int, low: int, high: int) -> dict[int, tuple]:
    """seq → (type, step) of the stored rows of seqs low..high (logs and statuses: (kind, None))."""
    stored: dict[int, tuple] = {}
    for model, kind in STEP_TABLES:
        for seq, step in model.objects.filter(run_id=run_id, seq__range=(low, high)).values_list("seq", "step"):
            stored[seq] = (kind, step)
    for seq, kind in RunLog.objects.filter(run_id=run_id, seq__range=(low, high)).values_list("seq", "kind"):
        stored[seq] = (kind, None)
    return stored
