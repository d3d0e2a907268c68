"""Session-wide fixtures: real redis-server and PostgreSQL, started once and stopped at the end."""
import os

import pytest

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from tests.services import PostgresServer, RedisServer  # noqa: E402


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()
    try:
        server.start()
    except Exception as exc:  # a failure to start is a test failure, said plainly
        server.stop()
        pytest.fail(f"could not start PostgreSQL: {exc} {getattr(exc, 'stderr', b'')!r}")
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)
