"""A shared cache of bearer-token lookups, so most API requests need no database read to sign in.

During a rush most requests are answered "sold out" by the booking gate without touching the
database, except for finding whose token it is. With Redis configured that lookup is kept for
``TOKEN_CACHE_SECONDS`` under the token's hash. Only a cache every server process shares can be
emptied for all of them at once, so without Redis nothing is cached.

Revocation and account changes still take effect at once: ``revoke_token`` drops the entry, and
a save or deletion of an end user or staff user drops the entries of all their tokens
(``forget_user``). Code that revokes tokens or disables accounts with a bulk ``update()`` (no
signals) calls ``forget_user`` itself. Expiry is checked on every request, cached or not. With
Redis failing, lookups go to the database and Redis is left alone for a few seconds.

An entry holds ids, times and the owner's active flag as JSON, nothing else: no personal data (the
phone number stays encrypted in the database) and nothing Redis could use to run code in the app.
The owner comes back with only those fields loaded; any other field is read when first used.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from functools import cache
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)
BREAK_SECONDS = 5.0

_down_until = 0.0
_lock = threading.Lock()


def enabled() -> bool:
    return bool(settings.REDIS_URL) and float(getattr(settings, "TOKEN_CACHE_SECONDS", 600)) > 0


def _key(digest: str) -> str:
    return f"yuyue:token:{digest}"


@cache
def _client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=0.25)


def _redis() -> Any | None:
    if not enabled() or time.monotonic() < _down_until:
        return None
    return _client(settings.REDIS_URL)


def _failed(exc: Exception) -> None:
    global _down_until
    with _lock:
        if time.monotonic() >= _down_until:
            log.warning("token cache off for %ss, Redis failed: %s", BREAK_SECONDS, exc)
        _down_until = time.monotonic() + BREAK_SECONDS


def get(digest: str) -> Any | None:
    """The cached token (an ``ApiToken`` with its owner attached) for a token hash, or None."""
    client = _redis()
    if client is None:
        return None
    try:
        raw = client.get(_key(digest))
    except Exception as exc:  # any Redis failure: the database answers instead
        _failed(exc)
        return None
    return _load(raw) if raw else None


def put(digest: str, token: Any) -> None:
    client = _redis()
    if client is None:
        return
    try:
        ttl_ms = int(float(getattr(settings, "TOKEN_CACHE_SECONDS", 600)) * 1000)
        client.set(_key(digest), _dump(token), px=ttl_ms)
    except Exception as exc:
        _failed(exc)


def put_many(tokens: list[Any]) -> None:
    """Cache tokens just issued (their first use usually follows at once), in one round trip."""
    client = _redis()
    if client is None or not tokens:
        return
    try:
        ttl_ms = int(float(getattr(settings, "TOKEN_CACHE_SECONDS", 600)) * 1000)
        with client.pipeline(transaction=False) as pipe:
            for token in tokens:
                pipe.set(_key(token.key_hash), _dump(token), px=ttl_ms)
            pipe.execute()
    except Exception as exc:
        _failed(exc)


_TOKEN_FIELDS = ("id", "key_hash", "user_id", "staff_user_id", "expires_at", "revoked_at")
_OWNER_FIELDS = ("id", "is_active")


def _dump(token: Any) -> str:
    owner = token.user if token.user_id is not None else token.staff_user
    values = {name: getattr(token, name) for name in _TOKEN_FIELDS}
    for name in ("expires_at", "revoked_at"):
        values[name] = values[name].isoformat() if values[name] else None
    values["owner"] = [getattr(owner, name) for name in _OWNER_FIELDS]
    return json.dumps(values)


def _load(raw: bytes) -> Any:
    """The ``ApiToken`` and its owner, as the database would give them with only these fields loaded."""
    from django.contrib.auth import get_user_model

    from yuyue.accounts.models import ApiToken, EndUser

    values = json.loads(raw)
    for name in ("expires_at", "revoked_at"):
        values[name] = dt.datetime.fromisoformat(values[name]) if values[name] else None
    token = _partial(ApiToken, values)
    owner = dict(zip(_OWNER_FIELDS, values["owner"], strict=True))
    if token.user_id is not None:
        token.user = _partial(EndUser, owner)
    else:
        token.staff_user = _partial(get_user_model(), owner)
    return token


def _partial(model: Any, values: dict[str, Any]) -> Any:
    # from_db takes the loaded fields' values in the model's field order; the others stay deferred.
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db("default", names, [values[name] for name in names])


def forget(*digests: str) -> None:
    """Drop these token hashes from the cache (revoked tokens, changed owners)."""
    if not digests or not enabled():
        return
    try:
        # Ignores the breaker: a revocation must not be skipped because a read failed a moment ago.
        _client(settings.REDIS_URL).delete(*[_key(d) for d in digests])
    except Exception as exc:
        _failed(exc)
        log.error("could not drop %d cached token(s): they stay valid up to %ss", len(digests), BREAK_SECONDS)


def forget_user(*, user_id: int | None = None, staff_user_id: int | None = None) -> None:
    """Drop the cached tokens of one end user or staff user (after a change to the account)."""
    if not enabled():
        return
    from yuyue.accounts.models import ApiToken

    tokens = ApiToken.objects.all()
    tokens = tokens.filter(user_id=user_id) if user_id is not None else tokens.filter(staff_user_id=staff_user_id)
    forget(*tokens.values_list("key_hash", flat=True))


def on_account_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Signal receiver: an end user or staff user changed (disabled, renamed, deleted)."""
    from yuyue.accounts.models import EndUser

    if isinstance(instance, EndUser):
        forget_user(user_id=instance.pk)
    else:
        forget_user(staff_user_id=instance.pk)
