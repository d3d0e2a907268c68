"""API bearer tokens: handed out once, stored only as SHA-256."""
from __future__ import annotations

import hashlib
import secrets

from django.utils import timezone

from lab.models import ApiToken

PREFIX = "r1lab_"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def token_create(*, user) -> str:
    """A new token for `user`; the plain key is returned once and never stored."""
    key = PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, key_hash=_hash(key))
    return key


def token_user(key: str):
    """The active user a bearer key belongs to, or None."""
    if not key or len(key) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=_hash(key)).first()
    if token is None or not token.user.is_active:
        return None
    ApiToken.objects.filter(id=token.id).update(last_used_at=timezone.now())
    return token.user
