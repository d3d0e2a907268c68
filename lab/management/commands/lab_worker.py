"""`manage.py lab_worker`: start a worker node with the lab's flags, or run one repair pass.

    manage.py lab_worker                     # a cpu worker: one run at a time (the embedded `make run`)
    manage.py lab_worker --queues gpu --name gpu0
    manage.py lab_worker --reap              # one reaper + reconciler pass, then exit (cron, no worker up)

The worker is `celery -A workers.celery_app worker -Q QUEUES -c 1 --pool=threads -n NAME@%h`: one slot per
worker process (a node with several GPUs runs one worker per GPU set, or one for a multi-GPU run).
"""
from __future__ import annotations

import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand


def worker_argv(queues: str, name: str, loglevel: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", queues, "-c", "1",
            "--pool=threads", "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "-E", "-l", loglevel]


class Command(BaseCommand):
    help = "Start a Celery worker for runs (one slot), or run one reaper/reconciler pass with --reap."

    def add_arguments(self, parser):
        parser.add_argument("--queues", default="cpu", help="comma-separated: cpu, gpu")
        parser.add_argument("--name", default=None, help="worker name (default: the first queue)")
        parser.add_argument("--loglevel", default="INFO")
        parser.add_argument("--reap", action="store_true", help="one repair pass: requeue stale runs, resend lost ones")

    def handle(self, *args, queues: str, name: str | None, loglevel: str, reap: bool, **options):
        bad = [q for q in queues.split(",") if q not in ("cpu", "gpu")]
        if bad:
            self.stderr.write(f"--queues: unknown queue(s) {', '.join(bad)}; use cpu and/or gpu")
            sys.exit(2)
        if reap:
            from workers.reaper import reap_stale_runs

            done = reap_stale_runs(settings.WORKER_STALE_S)
            for run_id, status in done:
                self.stdout.write(f"run {run_id}: {status}")
            self.stdout.write(f"{len(done)} stale run(s) repaired")
            return
        argv = worker_argv(queues, name or queues.split(",")[0], loglevel)
        self.stdout.write(" ".join(argv))
        sys.stdout.flush()
        os.execv(argv[0], argv)
