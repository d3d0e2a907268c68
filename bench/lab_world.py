"""The lab benchmarks' shared world, built once into bench/out/lab_bench.sqlite3 and reused:
one run of 10,000 steps × 50 metrics with 200,000 traces, and a team with 1,000 runs.

Run alone it (re)builds the world and prints its size. The other bench/lab_*.py scripts import it.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DB = OUT / "lab_bench.sqlite3"
STEPS, N_METRICS, TRACES_PER_STEP, GROUP = 10_000, 50, 20, 4
OVERVIEW_RUNS = 1_000


def setup_django() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["DEBUG"] = "1"
    os.environ["DATABASE_URL"] = f"sqlite:///{DB}"
    os.environ["LAB_DATA_DIR"] = str(OUT / "lab_data")
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost"
    os.environ["DJANGO_SETTINGS_MODULE"] = "lab.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def world():
    """(user, big run, overview team), building whatever is missing."""
    from django.contrib.auth import get_user_model

    from lab.models import EvalResult, Membership, Run, Team
    from lab.services.synthetic import make_synthetic_run

    user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_user("bench", password="bench-password-1")
    team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    Membership.objects.get_or_create(team=team, user=user, defaults={"role": "admin"})
    big = Run.objects.filter(team=team, name="big").first()
    if big is None:
        started = time.perf_counter()
        big = make_synthetic_run(team=team, user=user, name="big", steps=STEPS, n_metrics=N_METRICS, traces_per_step=TRACES_PER_STEP, group_size=GROUP, eval_every=500)
        print(f"built the big run in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    many, _ = Team.objects.get_or_create(slug="many", defaults={"name": "Many runs"})
    Membership.objects.get_or_create(team=many, user=user, defaults={"role": "admin"})
    missing = OVERVIEW_RUNS - Run.objects.filter(team=many).count()
    if missing > 0:
        runs = Run.objects.bulk_create(
            [Run(team=many, name=f"run-{i:04d}", status=("running", "completed", "failed", "queued")[i % 4], step=i % 500, total_steps=500, compute_seconds=3600.0 * (i % 7), created_by=user) for i in range(missing)]
        )
        EvalResult.objects.bulk_create(
            [
                EvalResult(run=r, seq=2 * k + j, step=100 * k, benchmark=b, metric="pass@1", value=0.1 * k + 0.01 * j, n=100)
                for r in runs
                for k in range(1, 3)
                for j, b in enumerate(("gsm8k", "math500"))
            ]
        )
    return user, big, many


def client_for(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def timed(fn, repeats: int) -> list[float]:
    """Milliseconds of `repeats` calls after one warm-up."""
    fn()
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) >= 2 else samples[0]


if __name__ == "__main__":
    setup_django()
    from lab.models import Metric, Run, Trace

    _, big, many = world()
    print(f"metrics={Metric.objects.filter(run=big).count()} traces={Trace.objects.filter(run=big).count()} overview_runs={Run.objects.filter(team=many).count()}")
    print(f"lab_world_db_mb={DB.stat().st_size / 1e6:.0f}")
