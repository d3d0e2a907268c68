"""CACHE_URL=redis://…: every web process shares one cache, so the login rate limit counts a client's
failures across processes (with the default local-memory cache each process counts alone)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# one "web process": Django from the environment, `failures` failed logins for one user and address,
# then whether that user is blocked
WEB_PROCESS = textwrap.dedent("""
    import sys
    import django

    django.setup()
    from django.conf import settings
    from lab.services.ratelimit import login_blocked, login_failed

    for _ in range(int(sys.argv[1])):
        login_failed("Alice", "10.0.0.7")
    print(settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1], login_blocked("alice", "10.0.0.7"))
""")


def web_process(failures: int, tmp_path, cache_url: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"CACHE_URL", "DATABASE_URL", "REDIS_URL"}}
    env.update(DEBUG="true", LAB_DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="lab.settings")
    if cache_url:
        env["CACHE_URL"] = cache_url
    result = subprocess.run([sys.executable, "-c", WEB_PROCESS, str(failures)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.integration
def test_two_web_processes_share_the_login_failure_count_through_redis(redis_server, tmp_path):
    url = redis_server.url.rsplit("/", 1)[0] + "/3"  # a database of its own
    assert web_process(3, tmp_path, url) == "RedisCache False"
    assert web_process(2, tmp_path, url) == "RedisCache True"  # 3 + 2 = the limit of 5, counted in two processes


@pytest.mark.integration
def test_without_cache_url_each_process_counts_alone(tmp_path):
    assert web_process(3, tmp_path, None) == "LocMemCache False"
    assert web_process(2, tmp_path, None) == "LocMemCache False"


@pytest.mark.integration
def test_two_cache_connections_in_one_process_see_one_counter(redis_server):
    from django.core.cache.backends.redis import RedisCache

    location = redis_server.url.rsplit("/", 1)[0] + "/4"
    first, second = (RedisCache(location, {"KEY_PREFIX": "r1lab"}) for _ in range(2))
    first.add("lab:login-failures:x", 1, 60)
    assert second.incr("lab:login-failures:x") == 2 and first.get("lab:login-failures:x") == 2
    assert first._cache.get_client() is not second._cache.get_client()  # two connection pools, one server
