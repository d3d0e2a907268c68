"""Ingestion speed: events.jsonl → SQLite rows with lab.services.ingest.ingest_events, against the
naive peer (one ORM create per row, all in one transaction), on the same file in the same run.

A realistic mix per training step: one metric event (6 names), 4 traces (~300-char completions), one
status event. The lab's target is >= 20,000 events/s. With --postgres the same runs go into a throwaway
PostgreSQL cluster (tests/services.py: PostgresServer, started here and stopped at the end) instead of
a temporary SQLite file.

    OMP_NUM_THREADS=1 .venv/bin/python bench/ingest_throughput.py [--events 100000] [--postgres]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def setup_django(tmp: Path, database_url: str | None = None) -> None:
    os.environ.update({"DEBUG": "1", "LAB_DATA_DIR": str(tmp), "DATABASE_URL": database_url or f"sqlite:///{tmp / 'lab.sqlite3'}",
                       "DJANGO_SETTINGS_MODULE": "lab.settings"})
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def write_events(path: Path, count: int) -> None:
    completion = "<think>" + "let me add the numbers step by step. " * 6 + "</think><answer>42</answer>"
    seq, step = 0, 0
    with path.open("w") as handle:
        while seq < count:
            step += 1
            lines = [{"type": "metric", "step": step, "metrics": {
                "loss": 1 / step, "kl": 0.01, "rewards/accuracy/mean": 0.5, "rewards/format/mean": 0.9,
                "completions/mean_length": 120.0, "clip_ratio/low_mean": 0.0}}]
            lines += [{"type": "trace", "step": step, "group_id": f"{step}", "prompt": "What is 40+2?",
                       "completion": completion, "think": completion[7:-30], "answer": "42", "reward": 1.0,
                       "rewards": {"accuracy": 1.0, "format": 1.0}, "correct": True, "tokens": 80} for _ in range(4)]
            lines.append({"type": "status", "step": step, "phase": "train", "total_steps": 10**6, "eta_s": 3.0})
            for event in lines[: count - seq]:
                handle.write(json.dumps({"seq": seq, **event}) + "\n")
                seq += 1


def naive_ingest(run, path: Path) -> int:
    """The peer: parse each line and create its rows one by one."""
    from django.db import transaction

    from lab.models import Metric, RunLog, Trace

    count = 0
    with transaction.atomic(), path.open() as handle:
        for line in handle:
            e = json.loads(line)
            if e["type"] == "metric":
                for name, value in e["metrics"].items():
                    Metric.objects.create(run=run, seq=e["seq"], step=e["step"], name=name, value=value)
            elif e["type"] == "trace":
                Trace.objects.create(run=run, seq=e["seq"], step=e["step"], group_id=e["group_id"], prompt=e["prompt"],
                                     completion=e["completion"], think=e["think"], answer=e["answer"],
                                     reward=e["reward"], rewards=e["rewards"], tokens=e["tokens"], status="correct")
            else:
                RunLog.objects.create(run=run, seq=e["seq"], kind="status", message=e["phase"])
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--naive-events", type=int, default=20_000)
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL cluster instead of SQLite")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="r1lab-ingest-bench-"))
    server = None
    if args.postgres:
        from tests.services import PostgresServer

        server = PostgresServer().start()
    try:
        _bench(args, tmp, server.url if server else None)
    finally:
        if server is not None:
            from django.db import connections

            connections.close_all()
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _bench(args, tmp: Path, database_url: str | None) -> None:
    setup_django(tmp, database_url)
    from lab.models import Metric, Run, Team
    from lab.services.ingest import ingest_events

    team = Team.objects.create(slug="bench", name="bench")
    path, small = tmp / "events.jsonl", tmp / "events-small.jsonl"
    write_events(path, args.events)
    write_events(small, args.naive_events)

    run = Run.objects.create(team=team, name="bulk")
    start = time.perf_counter()
    stored = ingest_events(run, path)
    bulk_s = time.perf_counter() - start
    assert stored == args.events, (stored, args.events)
    start = time.perf_counter()
    again = ingest_events(run, path)  # a second pass (a restarted supervisor) stores nothing
    reread_s = time.perf_counter() - start
    assert again == 0

    peer = Run.objects.create(team=team, name="naive")
    start = time.perf_counter()
    naive_ingest(peer, small)
    naive_s = time.perf_counter() - start

    bulk_rate, naive_rate = args.events / bulk_s, args.naive_events / naive_s
    print(f"file: {args.events} events ({path.stat().st_size / 1e6:.1f} MB), "
          f"{Metric.objects.filter(run=run).count()} metric rows")
    print(f"ingest_events (bulk, batched):   {bulk_rate:10.0f} events/s  ({bulk_s:.2f} s)")
    print(f"re-reading the same file:        {args.events / reread_s:10.0f} events/s  (stores nothing)")
    print(f"naive peer (create per row):     {naive_rate:10.0f} events/s  on {args.naive_events} events")
    print(f"speed-up over naive: {bulk_rate / naive_rate:.1f}x")
    print(f"database={'postgresql' if database_url else 'sqlite'} load_average_1min={os.getloadavg()[0]:.1f}")
    print(f"ingest_events_per_s={bulk_rate:.0f}")


if __name__ == "__main__":
    main()
