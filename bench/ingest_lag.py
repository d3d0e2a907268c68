"""Ingestion lag at 1,000 events/s: the time from a line written to events.jsonl to its row committed.

A writer process appends events at a steady rate (each stamped with its write time) while this process
ingests the way a worker's supervisor does: ingest_events with an EventTail every WORKER_POLL_MS.
Peer in the same run: the same loop with a 2 s poll (the "dashboards within 2 s" bound) to show what
the poll interval costs; the lab's bound is p95 < 2 s.

    OMP_NUM_THREADS=1 .venv/bin/python bench/ingest_lag.py [--rate 1000] [--seconds 20]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

WRITER = r"""
import json, sys, time
path, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
start = time.time()
seq = 0
with open(path, "a") as handle:
    while time.time() - start < seconds:
        due = int((time.time() - start) * rate)
        while seq < due:
            step = seq // 5
            kind = "trace" if seq % 5 == 4 else "metric"
            event = {"seq": seq, "type": kind, "step": step, "time": time.time()}
            if kind == "metric":
                event["metrics"] = {"loss": 1.0, "kl": 0.01, "rewards/accuracy/mean": 0.5}
            else:
                event.update(prompt="2+2?", completion="<think>" + "adding " * 40 + "</think><answer>4</answer>",
                             answer="4", reward=1.0, correct=True, tokens=50, group_id=str(step))
            handle.write(json.dumps(event) + "\n")
            seq += 1
        handle.flush()
        time.sleep(0.005)
"""


def measure(run, path: Path, rate: float, seconds: float, poll_s: float) -> list[float]:
    from lab.services.ingest import EventTail, ingest_events

    path.touch()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(rate), str(seconds)])
    tail, lags = EventTail(), []
    seen_offset = 0
    while True:
        done = writer.poll() is not None
        ingest_events(run, path, tail=tail)
        committed = time.time()
        with path.open("rb") as handle:  # the lines just stored: from the last offset to the new one
            handle.seek(seen_offset)
            for line in handle.read(tail.offset - seen_offset).splitlines():
                lags.append(committed - json.loads(line)["time"])
        seen_offset = tail.offset
        if done:
            break
        time.sleep(poll_s)
    return lags


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--poll-ms", type=int, default=500)
    args = parser.parse_args()
    from ingest_throughput import setup_django

    tmp = Path(tempfile.mkdtemp(prefix="r1lab-lag-bench-"))
    setup_django(tmp)
    from lab.models import Metric, Run, Team

    team = Team.objects.create(slug="bench", name="bench")
    results = {}
    for label, poll in (("worker poll", args.poll_ms / 1000), ("peer: 2 s poll", 2.0)):
        run = Run.objects.create(team=team, name=label)
        path = tmp / f"events-{run.id}.jsonl"
        lags = measure(run, path, args.rate, args.seconds, poll)
        results[label] = lags
        run.refresh_from_db()
        print(f"{label:16s} poll {poll * 1000:5.0f} ms: {len(lags)} events, stored up to seq {run.ingested_seq}, "
              f"lag p50 {pct(lags, 50) * 1000:6.0f} ms, p95 {pct(lags, 95) * 1000:6.0f} ms, "
              f"max {max(lags) * 1000:6.0f} ms  ({Metric.objects.filter(run=run).count()} metric rows)")
    ours, peer = results["worker poll"], results["peer: 2 s poll"]
    print(f"p95 ratio peer/ours: {pct(peer, 95) / pct(ours, 95):.1f}x")
    print(f"ingest_lag_p95_ms={pct(ours, 95) * 1000:.0f}")


if __name__ == "__main__":
    main()
