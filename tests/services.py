"""Real services for the test session: a redis-server and a throwaway PostgreSQL cluster.

No fakes: each is the Debian binary, started on a free loopback port in a temp dir, stopped at the end.
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, what: str | Callable[[], str] = "the condition",
               interval: float = 0.1) -> T:
    """Poll `predicate` until it returns something truthy and return that; AssertionError naming `what`
    (a callable is called then, to describe the state at the failure) after `timeout` seconds.
    The tests' one way to wait for something to happen (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"{described}: not reached within {timeout:g} s (last value {value!r})")
        time.sleep(interval)


class RedisServer:
    """A redis-server without persistence; restartable on the same port (fault tests)."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: install Debian's redis-server (make test does)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(f"{name} not found: install Debian's postgresql (make test does)")
    return candidates[-1]


def _as_postgres_user() -> list[str]:
    """initdb refuses to run as root; as root, run the server as the `postgres` (or `nobody`) user."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            import pwd

            pwd.getpwnam(user)
            return ["runuser", "-u", user, "--"]
    raise RuntimeError("running as root and no unprivileged user to run PostgreSQL as")


class PostgresServer:
    """A throwaway cluster: initdb + pg_ctl in a temp dir, trust auth on loopback."""

    def __init__(self):
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="r1lab-pg-"))
        self.datadir = self.root / "data"
        self.prefix = _as_postgres_user()

    @property
    def url(self) -> str:
        return f"postgres://r1lab@127.0.0.1:{self.port}/r1lab"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> "PostgresServer":
        if self.prefix:
            shutil.chown(self.root, user=self.prefix[2])
        if not self.datadir.exists():
            self._run(_pg_bin("initdb"), "-D", str(self.datadir), "-U", "r1lab", "--auth=trust", "-E", "UTF8",
                      "--no-sync")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.datadir), "-l", str(self.root / "log"), "-w", "start",
                  "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off")
        self._run(_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "r1lab", "r1lab")
        return self

    def restart(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.datadir), "-w", "-m", "fast", "restart")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(_pg_bin("pg_ctl"), "-D", str(self.datadir), "-w", "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running(server) -> Iterator:
    server.start()
    try:
        yield server
    finally:
        server.stop()
