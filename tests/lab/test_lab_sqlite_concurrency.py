"""SQLite under load: a reviewer saves annotations while a worker ingests a run's events.

The test database is SQLite in memory (one connection); the lab in production is a SQLite *file* that a
worker and the web server open separately. So the test copies the prepared database into a file and
runs both sides in their own threads, each with its own connection made from the lab's own settings
(lab/settings.py OPTIONS: WAL, busy timeout, transaction mode).
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest
from django.db import connection, connections

from lab.models import Run, Trace
from lab.services.annotations import annotation_save
from lab.services.ingest import EventTail, ingest_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def file_database(lab, tmp_path):
    """The prepared test database copied into a SQLite file; new connections (other threads) open it."""
    if connection.vendor != "sqlite":
        pytest.skip("a SQLite-only behaviour")
    path = tmp_path / "lab.sqlite3"
    connection.ensure_connection()
    target = sqlite3.connect(path)
    connection.connection.backup(target)
    target.close()
    original = connections.settings["default"]
    connections.settings["default"] = {**original, "NAME": str(path)}
    try:
        yield path
    finally:
        connections.settings["default"] = original


def _in_thread(target, errors):
    def run():
        try:
            target()
        except Exception as exc:  # recorded: the test asserts there were none
            errors.append(exc)
        finally:
            connections.close_all()

    return threading.Thread(target=run)


def test_annotation_saves_never_hit_database_is_locked_while_a_run_ingests(lab, file_database, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text("")
    done = threading.Event()
    ingest_errors: list[Exception] = []
    save_errors: list[Exception] = []
    saves = []

    def ingest():
        run = Run.objects.get(id=lab.run.id)
        tail, seq = EventTail(), 10_000
        try:
            for poll in range(60):
                with events.open("a") as handle:
                    for _ in range(100):
                        seq += 1
                        handle.write(json.dumps({"seq": seq, "type": "trace", "step": 100 + poll, "group_id": f"g-{poll}",
                                                 "prompt_id": "p", "prompt": "q", "completion": "x" * 200, "reward": 0.0}) + "\n")
                        seq += 1
                        handle.write(json.dumps({"seq": seq, "type": "metric", "step": 100 + poll,
                                                 "metrics": {"reward": 0.5, "kl": 0.1}}) + "\n")
                ingest_events(run, events, tail=tail)
        finally:
            done.set()

    def annotate():
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.get(id=lab.teammate.id)
        traces = list(Trace.objects.select_related("run").filter(run_id=lab.run.id)[:4])
        index = 0
        while not done.is_set() or index < 40:
            trace = traces[index % len(traces)]
            try:
                annotation_save(trace=trace, user=user, rating=("good", "bad")[index % 2], labels="load", comment=str(index))
            except Exception as exc:
                save_errors.append(exc)
            saves.append(index)
            index += 1
            time.sleep(0.005)  # a busy reviewer team, not a tight loop that starves the ingesting writer

    threads = [_in_thread(ingest, ingest_errors), _in_thread(annotate, save_errors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not ingest_errors, ingest_errors[:3]
    assert not save_errors, f"{len(save_errors)} of {len(saves)} saves failed: {save_errors[:3]}"
    check = sqlite3.connect(file_database)
    stored = check.execute("SELECT COUNT(*) FROM lab_trace WHERE run_id = ?", (lab.run.id,)).fetchone()[0]
    check.close()
    assert stored == 4 + 60 * 100


def test_an_annotation_save_that_finds_the_database_locked_is_tried_again(lab, monkeypatch):
    from django.db import OperationalError

    from lab.services import annotations

    real, calls = annotations._annotation_save, []

    def locked_twice(**kwargs):
        calls.append(kwargs)
        if len(calls) <= 2:
            raise OperationalError("database is locked")
        return real(**kwargs)

    monkeypatch.setattr(annotations, "_annotation_save", locked_twice)
    monkeypatch.setattr(annotations.time, "sleep", lambda seconds: None)
    saved = annotation_save(trace=lab.trace, user=lab.teammate, rating="bad", labels="x", comment="third try")
    assert len(calls) == 3 and saved.comment == "third try"


def test_other_database_errors_are_not_retried(lab, monkeypatch):
    from django.db import OperationalError

    from lab.services import annotations

    calls = []

    def broken(**kwargs):
        calls.append(kwargs)
        raise OperationalError("no such table: lab_annotation")

    monkeypatch.setattr(annotations, "_annotation_save", broken)
    with pytest.raises(OperationalError):
        annotation_save(trace=lab.trace, user=lab.teammate, rating="bad")
    assert len(calls) == 1


def test_ingestion_stores_an_event_file_in_transactions_of_bounded_rows(lab, tmp_path, monkeypatch):
    from lab.services import ingest

    sizes = []
    real = ingest._store_batch

    def counting(run, events, rows):
        sizes.append(sum(len(values) for _, values in rows))
        real(run, events, rows)

    monkeypatch.setattr(ingest, "_store_batch", counting)
    monkeypatch.setattr(ingest, "BATCH_ROWS", 500)
    events = tmp_path / "events.jsonl"
    with events.open("w") as handle:  # 300 events of 40 metrics each: 12,000 rows
        for seq in range(1, 301):
            handle.write(json.dumps({"seq": seq, "type": "metric", "step": seq, "metrics": {f"m{k}": 1.0 for k in range(40)}}) + "\n")
    run = Run.objects.create(team=lab.team, name="wide")
    assert ingest_events(run, events) == 300
    assert sum(sizes) == 12_000 and max(sizes) <= 500 and len(sizes) >= 24
