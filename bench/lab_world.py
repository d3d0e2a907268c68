"""The lab benchmarks' shared world, built once into bench/out/lab_bench.sqlite3 and reused:
one run of 10,000 steps × 50 metrics with 200,000 traces, and a team with 1,000 runs.

With `--postgres` (any bench/lab_*.py script) the same world lives in a PostgreSQL cluster instead:
the script starts a cluster (initdb + pg_ctl, as the postgres user when root; tests/services.py) whose
data directory is bench/out/lab_pg, builds whatever is missing, runs, and stops the cluster at exit.
`--postgres-fresh` throws the data directory away first (and at exit), so the world is built anew.

Run alone it (re)builds the world and prints its size. The other bench/lab_*.py scripts import it.
"""
from __future__ import annotations

import atexit
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DB = OUT / "lab_bench.sqlite3"
PG_DIR = OUT / "lab_pg"
STEPS, N_METRICS, TRACES_PER_STEP, GROUP = 10_000, 50, 20, 4
OVERVIEW_RUNS = 1_000


BACKEND = "sqlite"


def start_postgres(fresh: bool = False):
    """A PostgreSQL cluster on a free loopback port with its data under bench/out/lab_pg (kept between
    runs unless `fresh`, like the SQLite file), stopped when the process exits. Returns the server."""
    sys.path.insert(0, str(ROOT))
    from tests.services import PostgresServer

    class BenchPostgres(PostgresServer):
        def __init__(self):
            super().__init__()
            shutil.rmtree(self.root, ignore_errors=True)  # the parent's temp dir; ours is PG_DIR
            if fresh:
                shutil.rmtree(PG_DIR, ignore_errors=True)
            PG_DIR.mkdir(parents=True, exist_ok=True)
            self.root, self.datadir = PG_DIR, PG_DIR / "data"

        def start(self):
            existed = self.datadir.exists()
            if not existed:
                return super().start()
            if self.prefix:
                shutil.chown(self.root, user=self.prefix[2])
            from tests.services import _pg_bin

            (self.datadir / "postmaster.pid").unlink(missing_ok=True)  # left by a killed run
            self._run(_pg_bin("pg_ctl"), "-D", str(self.datadir), "-l", str(self.root / "log"), "-w", "start",
                      "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off")
            return self

        def stop(self):
            from tests.services import _pg_bin

            try:
                self._run(_pg_bin("pg_ctl"), "-D", str(self.datadir), "-w", "-m", "fast", "stop")
            except Exception as exc:  # noqa: BLE001 - report, never hide a cluster left running
                print(f"lab_world: pg_ctl stop failed: {exc}", file=sys.stderr)
            if fresh:
                shutil.rmtree(PG_DIR, ignore_errors=True)

    server = BenchPostgres()
    server.start()
    atexit.register(server.stop)
    return server


def setup_django(postgres: bool | None = None) -> None:
    """Django on the bench world's database: SQLite by default, PostgreSQL with --postgres (or
    --postgres-fresh) on the command line or postgres=True."""
    global BACKEND
    OUT.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["DEBUG"] = "1"
    fresh = "--postgres-fresh" in sys.argv[1:]
    if postgres is None:
        postgres = fresh or "--postgres" in sys.argv[1:]
    if postgres:
        os.environ["DATABASE_URL"] = start_postgres(fresh=fresh).url
        BACKEND = "postgresql"
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{DB}"
        BACKEND = "sqlite"
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
    built = big is None
    if big is None:
        started = time.perf_counter()
        big = make_synthetic_run(team=team, user=user, name="big", steps=STEPS, n_metrics=N_METRICS, traces_per_step=TRACES_PER_STEP, group_size=GROUP, eval_every=500)
        print(f"built the big run in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    many, _ = Team.objects.get_or_create(slug="many", defaults={"name": "Many runs"})
    Membership.objects.get_or_create(team=many, user=user, defaults={"role": "admin"})
    missing = OVERVIEW_RUNS - Run.objects.filter(team=many).count()
    built = built or missing > 0
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
    if built:
        analyze()
    return user, big, many


def analyze() -> None:
    """On PostgreSQL, VACUUM ANALYZE after the bulk load: what autovacuum does soon after a big insert
    (planner statistics, and the visibility map that lets the covering indexes answer index-only).
    Without it every metric series read visits ~5,000 heap pages. The SQLite world is left as built."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def client_for(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def open_world():
    """Django set up and the world built: (a client logged in as the bench user, the big run, the overview team)."""
    setup_django()
    user, big, many = world()
    return client_for(user), big, many


def report(headline: str, p95_ms: float) -> None:
    """The closing lines of a lab bench: the database and the machine's load, then `headline=<p95 ms>`."""
    print(f"database={BACKEND} load_average_1min={os.getloadavg()[0]:.1f} (other helpers share the 2 cores)")
    print(f"{headline}={p95_ms:.1f}")


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
    analyze()
    print(f"metrics={Metric.objects.filter(run=big).count()} traces={Trace.objects.filter(run=big).count()} overview_runs={Run.objects.filter(team=many).count()}")
    if BACKEND == "sqlite":
        print(f"lab_world_db_mb={DB.stat().st_size / 1e6:.0f}")
    else:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            print(f"lab_world_db_mb={cursor.fetchone()[0] / 1e6:.0f}")
