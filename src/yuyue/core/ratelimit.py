"""Rate limits that hold across server processes: fixed windows counted in Redis or the database.

A limit is a list of rules such as ``5/3600`` (five per hour); a request passes only if every rule
still has room. The counter for (limit, subject, rule, window) moves by one atomic step:

- Redis (``YUYUE_REDIS_URL`` set): ``INCR`` in a Lua script that also sets the expiry;
- otherwise the database: ``UPDATE … SET hits = hits + 1 WHERE key = ? AND hits < limit``, or an
  INSERT of the first hit whose unique key makes a concurrent second INSERT fail and retry the
  UPDATE. Like the booking engine, a read never admits; only the conditional write does.

The server runs several processes, so nothing is counted in process memory.

The limits in use (settings ``RATE_*``, all ``YUYUE_RATE_*`` variables):

- ``login-code-ip`` / ``login-code-phone``: SMS codes asked for, per address and per phone;
- ``login-ip``: sign-in attempts (code, WeChat, Alipay) per address; ``login-verify-phone``: code
  checks per phone, on top of the few guesses each single code allows;
- ``booking`` (per account) and ``booking-ip`` (per address): booking requests, API and H5 alike;
- ``assistant_ask``: questions to the assistant.

``YUYUE_RATE_LIMITS=off`` switches them all off (load benchmarks run from one address); one limit
is switched off by setting it to ``off``.
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
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

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


def enabled(rates: Sequence[Rate] | str) -> bool:
    """False when limits are off for everyone (``YUYUE_RATE_LIMITS=off``) or this one says ``off``."""
    if settings.RATE_LIMITS == "off":
        return False
    return not (isinstance(rates, str) and rates.strip().lower() in {"", "off"})


def configured() -> dict[str, str]:
    """Every limit setting as it is in force, e.g. ``{"RATE_BOOKING_IP": "120/60,2000/3600"}``
    (``off`` for those switched off): load benchmarks print it next to their figures."""
    values = {name: getattr(settings, name) for name in settings.RATE_SETTINGS}
    return {name: value if enabled(value) else "off" for name, value in values.items()}


def hit(name: str, subject: str, rates: Sequence[Rate] | str, *, now: dt.datetime | None = None) -> None:
    """Count one request of ``subject`` (a phone's hash, an IP, a user id) against ``name``'s rules.

    Raises ``rate_limited`` (429, with ``retry_after`` in seconds) when a rule has no room left.
    Rules are counted in order and counting stops at the first refusal.
    """
    hit_all([(name, subject, rates)], now=now)


def hit_all(limits: Sequence[tuple[str, str, Sequence[Rate] | str]], *, now: dt.datetime | None = None) -> None:
    """``hit`` for several limits of one request (e.g. per account and per address), in order:
    with Redis one script call counts every window, instead of a round trip per window."""
    now = now or timeutil.now()
    epoch = now.timestamp()
    windows: list[_Window] = []
    for name, subject, rates in limits:
        if not enabled(rates):
            continue
        digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
        for rate in Rate.parse(rates) if isinstance(rates, str) else rates:
            window = int(epoch // rate.seconds)
            ends = float((window + 1) * rate.seconds)
            windows.append(_Window(f"rl:{name}:{digest}:{rate.seconds}:{window}", rate.limit, ends))
    refused = _count_all(windows, now)
    if refused is not None:
        retry_after = max(1, math.ceil(refused.ends - epoch))
        raise DomainError("rate_limited", wait_message(retry_after), retry_after=retry_after)


def wait_message(seconds: int) -> str:
    """The refusal's message, with the wait in words a person can act on ("… in 30 seconds")."""
    if seconds < 120:
        wait = ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}
    else:
        minutes = math.ceil(seconds / 60)
        wait = ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    return _("Too many requests; please try again in %(wait)s.") % {"wait": wait}


def booking_ip(request: HttpRequest) -> None:
    """One booking request from the caller's address (behind a proxy: ``YUYUE_CLIENT_IP_HEADER``)."""
    from yuyue.core.apischema import client_ip

    hit("booking-ip", client_ip(request) or "unknown", settings.RATE_BOOKING_IP)


def booking(request: HttpRequest, user_id: int) -> None:
    """One booking request: per account, then per address, counted in one go."""
    from yuyue.core.apischema import client_ip

    hit_all(
        [
            ("booking", f"user:{user_id}", settings.RATE_BOOKING_USER),
            ("booking-ip", client_ip(request) or "unknown", settings.RATE_BOOKING_IP),
        ]
    )


def sign_in_ip(request: HttpRequest) -> None:
    """One sign-in attempt (SMS code, WeChat or Alipay code) from the caller's address."""
    from yuyue.core.apischema import client_ip

    hit("login-ip", client_ip(request) or "unknown", settings.RATE_LOGIN_IP)


@dataclass(frozen=True)
class _Window:
    key: str
    limit: int
    ends: float  # epoch seconds


def _count_all(windows: list[_Window], now: dt.datetime) -> _Window | None:
    """Count one hit in each window, in order, stopping at the first that is full; returns it."""
    if not windows:
        return None
    if settings.REDIS_URL:
        import redis

        try:
            return _count_redis(windows)
        except redis.RedisError as exc:
            # Limits keep holding while Redis is away: the database counts instead.
            log.warning("rate limit falls back to the database, Redis failed: %s", exc)
    for window in windows:
        if not _count_database(window.key, window.limit, window.ends, now):
            return window
    return None


# KEYS: the windows; ARGV: limit and expiry (ms) of each, in pairs. Counts in order and stops at
# the first window over its limit (that hit stays counted, as a refused INCR always did); returns
# its 1-based position, or 0 when every window had room.
_INCR_ALL = """
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIREAT', key, ARGV[2 * i]) end
  if n > tonumber(ARGV[2 * i - 1]) then return i end
end
return 0
"""


@cache
def _redis(url: str) -> Any:
    import redis

    # Short timeouts: a slow Redis must not hold up sign-in and booking.
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)


@cache
def _incr_all(url: str) -> Any:
    # EVALSHA with the script sent once per process (redis-py reloads it after a Redis restart).
    return _redis(url).register_script(_INCR_ALL)


def _count_redis(windows: list[_Window]) -> _Window | None:
    args: list[int] = []
    for window in windows:
        # Keep the key a little past its window so clock skew between servers does not reopen it.
        args += [window.limit, int((window.ends + 60) * 1000)]
    refused = int(_incr_all(settings.REDIS_URL)(keys=[w.key for w in windows], args=args))
    return windows[refused - 1] if refused else None


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
