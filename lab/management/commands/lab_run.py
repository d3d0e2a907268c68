"""`make run`: migrate, make the demo login, then serve the lab and one Celery worker together.

Ctrl-C (or SIGTERM) stops both and waits for them, so nothing is left behind. Fails with one line
when the port is busy.
"""
import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class Command(BaseCommand):
    help = "Serve the lab (gunicorn) with one Celery worker on the cpu and gpu queues."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-worker", action="store_true", help="serve the web app only")

    def handle(self, *args, host, port, no_worker, **options):
        if not port_is_free(host, port):
            raise CommandError(f"port {port} on {host} is busy: stop what uses it or set PORT=<free port>")
        call_command("migrate", verbosity=0, interactive=False)
        call_command("lab_demo")
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="lab.settings")
        python = sys.executable
        web = [python, "-m", "gunicorn", "lab.wsgi:application", "--bind", f"{host}:{port}",
               "--worker-class", "gthread", "--threads", "8", "--workers", "1",
               "--access-logfile", "-", "--graceful-timeout", "5"]
        worker = [python, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "cpu,gpu",
                  "--concurrency", "1", "--pool", "threads", "--without-gossip", "--without-mingle",
                  "--loglevel", "INFO", "--hostname", "local@%h"]
        children: list[subprocess.Popen] = []
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            # Children get their own process groups: Ctrl-C reaches only us, and we stop them in order.
            children.append(subprocess.Popen(web, env=env, start_new_session=True))
            if not no_worker:
                children.append(subprocess.Popen(worker, env=env, start_new_session=True))
            self.stdout.write(f"R1 Lab at http://{host}:{port}/  (data in {settings.LAB_DATA_DIR}; Ctrl-C stops)")
            while not stopping:
                if any(child.poll() is not None for child in children):
                    dead = [c.args[2] for c in children if c.poll() is not None]
                    raise CommandError(f"{', '.join(dead)} exited; stopping the lab")
                time.sleep(0.5)
        finally:
            self._stop_all(children)
        self.stdout.write("stopped")

    @staticmethod
    def _stop_all(children: list[subprocess.Popen], grace_s: float = 30.0) -> None:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # whatever is left in the child's group (e.g. a trainer) goes too
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
