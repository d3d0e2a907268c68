"""Login rate limit: at most LOGIN_FAILURES failed logins per username and client IP per window.

Counts live in Django's cache: per process with the default local-memory cache; CACHE_URL=redis://…
(lab.env.cache_from_env, set by docker compose) shares them between every web process.
"""
from __future__ import annotations

import hashlib

from django.core.cache import cache

LOGIN_FAILURES = 5
WINDOW_S = 60


def _key(username: str, ip: str) -> str:
    digest = hashlib.sha256(f"{(username or '').strip().lower()}|{ip}".encode()).hexdigest()
    return f"lab:login-failures:{digest}"


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def login_blocked(username: str, ip: str) -> bool:
    return (cache.get(_key(username, ip)) or 0) >= LOGIN_FAILURES


def login_failed(username: str, ip: str) -> int:
    """Count one failure; returns the count in the current window."""
    key = _key(username, ip)
    if cache.add(key, 1, WINDOW_S):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, WINDOW_S)
        return 1


def login_succeeded(username: str, ip: str) -> None:
    cache.delete(_key(username, ip))
