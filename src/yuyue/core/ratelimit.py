"""Rate limits that hold across server processes: fixed windows counted in Redis or the database.

A limit is a list of rules such as ``5/3600`` (five per hour); a request passes only if every rule
still has room. The counter for (limit, subject, rule, window) moves by one atomic step:

- Redis (``YUYUE_REDIS_URL`` set): ``INCR`` in a Lua script that also sets the expiry;
- otherwise the database: ``UPDATE … SET hits = hits + 1 WHERE key = ? AND hits < limit``, or an
  INSERT of the first hit whose unique key makes a concurrent second INSERT fail and retry the
  UPDATE. Like the booking engine, a read never admits; only the conditional write does.

Gunicorn runs several processes, so nothing is counted in process memory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from yuyue.core import timeutil
from yuyue.core.errors import DomainError

log = logging.getLogger(__name__)

# Expired database windows are deleted now and then, by a small share of the requests.
PURGE_PROBABILITY = 0.01


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` hits per ``seconds`` (a fixed window aligned to the epoch)."""

    limit: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> list[Rate]:
        """``"5/3600,10/86400"`` → two rules. Raises ValueError for anything else."""
        rates = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            count, _sep, seconds = part.partition("/")
            rate = cls(int(count), int(seconds))
            if rate.limit < 1 or rate.seconds < 1:
                raise ValueError(f"a rate needs a positive count and window: {part!r}")
            rates.append(rate)
        return rates


def hit(name: str, subject: str, rates: Sequence[Rate] | str, *, now: dt.datetime | None = None) -> None:
    """Count one request of ``subject`` (a phone's hash, an IP, a user id) against ``name``'s rules.

    Raises ``rate_limited`` (429, with ``retry_after`` in seconds) when a rule has no room left.
    Rules are counted in order and counting stops at the first refusal.
    """
    now = now or timeutil.now()
    rules = Rate.parse(rates) if isinstance(rates, str) else list(rates)
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    epoch = now.timestamp()
    for rate in rules:
        window = int(epoch // rate.seconds)
        ends = (window + 1) * rate.seconds
        key = f"rl:{name}:{digest}:{rate.seconds}:{window}"
        if not _count(key, rate.limit, ends, now):
            retry_after = max(1, math.ceil(ends - epoch))
            raise DomainError("rate_limited", retry_after=retry_after)


def _count(key: str, limit: int, ends: float, now: dt.datetime) -> bool:
    if settings.REDIS_URL:
        import redis

        try:
            return _count_redis(key, limit, ends, now)
        except redis.RedisError as exc:
            # Limits keep holding while Redis is away: the database counts instead.
            log.warning("rate limit falls back to the database, Redis failed: %s", exc)
    return _count_database(key, limit, ends, now)


_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return n
"""


@cache
def _redis(url: str) -> Any:
    import redis

    # Short timeouts: a slow Redis must not hold up sign-in and booking.
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)


def _count_redis(key: str, limit: int, ends: float, now: dt.datetime) -> bool:
    client = _redis(settings.REDIS_URL)
    # Keep the key a little past its window so clock skew between servers does not reopen it.
    hits = client.eval(_INCR, 1, key, int((ends + 60) * 1000))
    return int(hits) <= limit


def _count_database(key: str, limit: int, ends: float, now: dt.datetime) -> bool:
    from yuyue.accounts.models import RateCounter  # the table lives in accounts (core has no models)

    counters = RateCounter.objects.filter(key=key, hits__lt=limit)
    if counters.update(hits=F("hits") + 1):
        return True
    try:
        with transaction.atomic():
            RateCounter.objects.create(
                key=key, hits=1, expires_at=dt.datetime.fromtimestamp(ends, tz=dt.UTC) + dt.timedelta(seconds=60)
            )
    except IntegrityError:
        # The window exists: it was full, or another request created it a moment ago.
        return bool(counters.update(hits=F("hits") + 1))
    if random.random() < PURGE_PROBABILITY:
        purge_expired(now=now)
    return True


def purge_expired(*, now: dt.datetime | None = None) -> int:
    """Delete database windows that are over; returns how many."""
    from yuyue.accounts.models import RateCounter

    deleted, _ = RateCounter.objects.filter(expires_at__lt=now or timeutil.now()).delete()
    return deleted
