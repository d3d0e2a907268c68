"""Settings from the environment.

Every variable the lab reads is parsed here, so a missing or malformed value stops start-up with
one line naming the variable (see README, "Configuration"). No Django imports: settings.py uses it.
"""
from __future__ import annotations

import os
from urllib.parse import urlparse


class EnvError(Exception):
    """A bad environment variable; the message starts with the variable's name."""


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise EnvError(f"{name}: required but not set")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise EnvError(f"{name}: expected true/false, got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise EnvError(f"{name}: expected an integer, got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DATABASE_SCHEMES = {"sqlite", "postgres", "postgresql", "pgsql", "postgis"}


def database_from_env(default_sqlite_path: str) -> dict:
    """DATABASE_URL → Django DATABASES['default']; SQLite file when unset."""
    import dj_database_url

    raw = os.environ.get("DATABASE_URL", "")
    if not raw:
        return dj_database_url.parse(f"sqlite:///{default_sqlite_path}", conn_max_age=0)
    scheme = urlparse(raw).scheme
    if scheme not in DATABASE_SCHEMES:
        raise EnvError(
            f"DATABASE_URL: unsupported scheme {scheme or '(none)'!r} in {raw!r}; "
            "use sqlite:///path.db or postgres://user:pass@host:port/name"
        )
    try:
        config = dj_database_url.parse(raw, conn_max_age=60 if scheme != "sqlite" else 0)
    except Exception as exc:  # dj_database_url raises several types for bad URLs
        raise EnvError(f"DATABASE_URL: cannot parse {raw!r}: {exc}") from None
    if scheme != "sqlite" and not config.get("NAME"):
        raise EnvError(f"DATABASE_URL: no database name in {raw!r}")
    return config


BROKER_SCHEMES = {"redis", "rediss", "filesystem", "sqla+sqlite", "memory"}


def broker_from_env() -> str:
    """CELERY_BROKER_URL, else REDIS_URL, else the embedded filesystem broker under LAB_DATA_DIR."""
    for name in ("CELERY_BROKER_URL", "REDIS_URL"):
        raw = os.environ.get(name, "")
        if raw:
            scheme = urlparse(raw).scheme
            if scheme not in BROKER_SCHEMES:
                raise EnvError(f"{name}: unsupported broker scheme {scheme or '(none)'!r} in {raw!r}")
            return raw
    return "filesystem://"


CACHE_SCHEMES = {"redis", "rediss", "locmem"}


def cache_from_env() -> dict:
    """CACHE_URL → Django CACHES: `redis://host:port/db` (or rediss://) shares the cache — login rate-limit
    counters, cached chart series — between every web process; unset or `locmem://`, each process keeps
    its own in memory (fine for one `make run` process)."""
    raw = os.environ.get("CACHE_URL", "")
    scheme = urlparse(raw).scheme if raw else "locmem"
    if scheme not in CACHE_SCHEMES:
        raise EnvError(f"CACHE_URL: unsupported scheme {scheme or '(none)'!r} in {raw!r}; "
                       "use redis://host:port/db or locmem://")
    if scheme == "locmem":
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    if not urlparse(raw).hostname:
        raise EnvError(f"CACHE_URL: no host in {raw!r}")
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": raw,
                        "KEY_PREFIX": "r1lab"}}


ROOT_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def env_named_paths(name: str) -> dict[str, str]:
    """`name=/abs/path,name2=/abs/path2` → {"name": "/abs/path", ...} (empty when unset). Each name is
    letters, digits, `_` or `-`, once; each path absolute. Used for LAB_MODEL_ROOTS: the folders an admin
    lets the lab register models from (users pick a root by its name, never by its path)."""
    raw = os.environ.get(name, "")
    roots: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        key, sep, path = (piece.strip() for piece in item.partition("="))
        if not sep or not key or not path:
            raise EnvError(f"{name}: expected name=/absolute/path, got {item!r}")
        if not set(key) <= ROOT_NAME_CHARS:
            raise EnvError(f"{name}: root name {key!r} may hold only letters, digits, '_' and '-'")
        if not os.path.isabs(path):
            raise EnvError(f"{name}: the path of root {key!r} must be absolute, got {path!r}")
        if key in roots:
            raise EnvError(f"{name}: root name {key!r} given twice")
        roots[key] = os.path.normpath(path)
    return roots
