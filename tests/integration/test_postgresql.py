"""The database tests run on SQLite (the main session) and again here on a real PostgreSQL cluster."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_database_tests_pass_on_postgresql(postgres_server, tmp_path):
    env = dict(os.environ, DATABASE_URL=postgres_server.url, LAB_DATA_DIR=str(tmp_path / "data"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/unit", "tests/lab", "-m", "django_db and not slow", "-q", "-x",
         "-p", "no:cacheprovider", "-o", "addopts="],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in summary, summary


def test_the_session_database_is_what_database_url_says(settings):
    url = os.environ.get("DATABASE_URL", "")
    engine = settings.DATABASES["default"]["ENGINE"]
    assert engine.endswith("postgresql") if url.startswith("postgres") else engine.endswith("sqlite3")
