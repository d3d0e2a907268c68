"""Start-up configuration: bad values stop with one line naming the variable; deploy checks are clean."""
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROD_KEY = "k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz"


def manage(*args: str, env_overrides: dict, tmp_path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update({"LAB_DATA_DIR": str(tmp_path / "data"), "DJANGO_SETTINGS_MODULE": "lab.settings"})
    env.update(env_overrides)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_malformed_database_url_gives_one_line_naming_it(tmp_path):
    result = manage("check", env_overrides={"DEBUG": "true", "DATABASE_URL": "nonsense://"}, tmp_path=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: DATABASE_URL")


def test_missing_secret_key_in_production_names_it(tmp_path):
    result = manage("check", env_overrides={"DEBUG": "false", "ALLOWED_HOSTS": "lab.example.org"},
                    tmp_path=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip() == "error: SECRET_KEY: required when DEBUG is false"


def test_bad_boolean_names_the_variable(tmp_path):
    result = manage("check", env_overrides={"DEBUG": "maybe"}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().startswith("error: DEBUG: expected true/false")


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING",
        env_overrides={"DEBUG": "false", "SECRET_KEY": PROD_KEY, "ALLOWED_HOSTS": "lab.example.org"},
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_lab_run_refuses_a_busy_port_with_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = manage("lab_run", "--port", str(port), env_overrides={"DEBUG": "true"}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert f"port {port}" in result.stderr and "busy" in result.stderr
    assert "Traceback" not in result.stderr


def test_cache_url_selects_the_cache_and_a_bad_one_names_the_variable(monkeypatch):
    import pytest

    from lab.env import EnvError, cache_from_env

    monkeypatch.delenv("CACHE_URL", raising=False)
    assert cache_from_env()["default"]["BACKEND"].endswith("LocMemCache")
    monkeypatch.setenv("CACHE_URL", "redis://cache.internal:6379/1")
    assert cache_from_env()["default"] == {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                           "LOCATION": "redis://cache.internal:6379/1", "KEY_PREFIX": "r1lab"}
    for bad in ("memcached://x:11211", "redis://"):
        monkeypatch.setenv("CACHE_URL", bad)
        with pytest.raises(EnvError, match="^CACHE_URL: "):
            cache_from_env()


def test_compose_points_the_cache_at_redis():
    import yaml

    env = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]["environment"]
    assert env["CACHE_URL"].startswith("redis://redis:")
