"""The rush gate: a Redis counter in front of each slot's seats that answers "sold out" fast.

When ten thousand people press "book" on one slot, all but the capacity are refused. Without a
gate each of them still reads the slot, validates, opens a transaction and queues on the slot
row's lock only to be told there is no room. The gate is one atomic Lua script per request: it
admits at most the seats it believes are left and remembers who it admitted, so losers are
turned away before they reach the database.

The database stays the only source of truth: an admitted request still goes through the
conditional ``UPDATE`` that decides. The gate may only ever refuse when it is sure there is no
room, and every way it can drift is bounded:

- its key is built from the database (capacity − reserved) when missing, and expires after
  ``BOOKING_GATE_TTL`` seconds, so whatever went wrong (a lost give-back, a capacity change, a
  Redis restart or flush) is healed from the database within that time;
- an admitted request the database refuses or that fails hands its seats back (``release``);
  a refusal for lack of room (``slot_full``) does not, since the database just said there is none;
- seats freed in the database (cancel, expiry, rejection, closure, reschedule) are handed back
  after the commit (``seats_freed``, called by the engine where seats are given back);
- a user admitted twice (a retry) holds one admission only;
- with Redis down or failing, ``admit`` answers "no gate" and the engine takes the plain database
  path (slower, still exact); a circuit breaker skips Redis for ``BOOKING_GATE_BREAK`` seconds so
  a dead server does not add its timeout to every request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection

from yuyue.core.errors import DomainError

log = logging.getLogger(__name__)

# KEYS[1]: the slot's gate (a hash: left, per, party, max, and u:<user> = seats held).
# ARGV: mode ('take', or 'peek': answer without taking or building anything), user, party size
# asked for by count, number of people listed, then when the key is missing and the caller read
# the database: left, per, party, max, ttl in ms.
# Returns -1: no key (read the database and call again with its figures); 0: sold out;
# 1: admitted now (peek: would be); 2: admitted before (a retry: no second seat); 3: not for the
# gate to judge.
_ADMIT = """
local gate = KEYS[1]
-- 'max' is written with the rest: a key without it (e.g. half-written by hand) counts as missing.
if redis.call('HEXISTS', gate, 'max') == 0 then
  if #ARGV < 9 or ARGV[1] ~= 'take' then return -1 end
  redis.call('HSET', gate, 'left', ARGV[5], 'per', ARGV[6], 'party', ARGV[7], 'max', ARGV[8])
  redis.call('PEXPIRE', gate, ARGV[9])
end
local member = 'u:' .. ARGV[2]
if redis.call('HEXISTS', gate, member) == 1 then return 2 end
local size = tonumber(ARGV[3])
if redis.call('HGET', gate, 'party') == 'people' then size = tonumber(ARGV[4]) end
if size < 1 or size > tonumber(redis.call('HGET', gate, 'max')) then return 3 end
local seats = size
if redis.call('HGET', gate, 'per') ~= 'party' then seats = 1 end
if tonumber(redis.call('HGET', gate, 'left')) < seats then return 0 end
if ARGV[1] ~= 'take' then return 1 end
redis.call('HINCRBY', gate, 'left', -seats)
redis.call('HSET', gate, member, seats)
return 1
"""

# An admitted request did not book: forget the admission; ARGV[2] = 1 gives its seats back.
# A key built again since then never counted the admission, so there is nothing to give back.
_RELEASE = """
local seats = redis.call('HGET', KEYS[1], 'u:' .. ARGV[1])
if not seats then return 0 end
redis.call('HDEL', KEYS[1], 'u:' .. ARGV[1])
if ARGV[2] == '1' then redis.call('HINCRBY', KEYS[1], 'left', seats) end
return 1
"""

# Seats freed in the database: back in the gate (if it exists: a missing key is built from the
# database, which already counts them), and the user may be admitted again.
_FREED = """
if redis.call('HEXISTS', KEYS[1], 'max') == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'left', ARGV[1])
redis.call('HDEL', KEYS[1], 'u:' .. ARGV[2])
return 1
"""

SOLD_OUT, ADMITTED, READMITTED, UNJUDGED, MISSING = 0, 1, 2, 3, -1


def enabled() -> bool:
    """The gate runs when Redis is configured, unless ``YUYUE_BOOKING_GATE=off``."""
    return bool(settings.REDIS_URL) and getattr(settings, "BOOKING_GATE", True)


def _key(slot_id: int) -> str:
    # The database name keeps two installations (or test databases) sharing one Redis apart.
    return f"yuyue:gate:{connection.settings_dict.get('NAME', '')}:{slot_id}"


class _Breaker:
    """After a Redis failure, skip Redis for a while instead of waiting for its timeout each time."""

    def __init__(self) -> None:
        self._open_until = 0.0
        self._lock = threading.Lock()

    def closed(self) -> bool:
        return time.monotonic() >= self._open_until

    def trip(self, exc: Exception) -> None:
        with self._lock:
            if self.closed():
                log.warning("booking gate off for %ss, Redis failed: %s", _break_seconds(), exc)
            self._open_until = time.monotonic() + _break_seconds()

    def reset(self) -> None:
        self._open_until = 0.0


breaker = _Breaker()


def _break_seconds() -> float:
    return float(getattr(settings, "BOOKING_GATE_BREAK", 5))


@cache
def _client(url: str) -> Any:
    import redis

    # Timeouts far below a booking's budget: a slow Redis must cost less than it saves.
    return redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=0.25)


@cache
def _scripts(url: str) -> tuple[Any, Any, Any]:
    client = _client(url)
    return client.register_script(_ADMIT), client.register_script(_RELEASE), client.register_script(_FREED)


def _call(run: Callable[[tuple[Any, Any, Any]], Any]) -> Any:
    """Run a script; None when the gate is off, Redis is failing or its breaker is open."""
    if not enabled() or not breaker.closed():
        return None
    import redis

    try:
        return run(_scripts(settings.REDIS_URL))
    except redis.RedisError as exc:
        breaker.trip(exc)
        return None


@dataclass
class Admission:
    """A seat promise from the gate for one request; ``refused`` when the database said no."""

    slot_id: int
    user_id: int
    key: str
    fresh: bool  # False for a retry of an earlier admission: its seats are not ours to give back

    def refused(self, *, full: bool) -> None:
        """The booking was not made: hand the seats back, unless the database found no room."""
        if self.fresh:
            _call(lambda s: s[1](keys=[self.key], args=[self.user_id, 0 if full else 1]))


@dataclass(frozen=True)
class SlotFigures:
    """What the gate is built from, read from the database."""

    left: int
    seats_per: str  # "party": each attendee takes a seat; "booking": the booking takes one
    party: str  # "people" or "count"
    max_party_size: int


def admit(
    *, slot_id: int, user_id: int, party_size: int | None, people: int, load: Callable[[], SlotFigures | None]
) -> Admission | None:
    """Ask the gate for seats; raises ``slot_full`` when it has none left.

    None means "no gate here" (off, Redis failing, a request it cannot judge, or ``load`` found no
    open slot): the database path decides alone. ``load`` reads the slot's figures and is called
    only when the gate has no key for the slot.
    """
    key = _key(slot_id)
    ask = ["take", user_id, party_size or 1, people]
    answer = _call(lambda s: s[0](keys=[key], args=ask))
    if answer == MISSING:
        figures = load()
        if figures is None:
            return None
        ttl_ms = int(float(getattr(settings, "BOOKING_GATE_TTL", 5)) * 1000)
        built = [max(figures.left, 0), figures.seats_per, figures.party, figures.max_party_size, ttl_ms]
        answer = _call(lambda s: s[0](keys=[key], args=ask + built))
    if answer is None or answer == UNJUDGED:
        return None
    if answer == SOLD_OUT:
        raise DomainError("slot_full")
    return Admission(slot_id=slot_id, user_id=user_id, key=key, fresh=answer == ADMITTED)


def seats_freed(*, slot_id: int, seats: int, user_id: int | None) -> None:
    """Seats went back to the slot in the database (call after the commit)."""
    _call(lambda s: s[2](keys=[_key(slot_id)], args=[seats, user_id or 0]))


def sold_out(*, slot_id: int, user_id: int, party_size: int | None, people: int) -> bool:
    """True only when the gate is sure ``admit`` would refuse: it takes and builds nothing.

    For answering before any other work is done; anything the gate cannot judge (no key yet,
    Redis failing, a retry of an earlier admission, an odd party) is False: ask ``admit``.
    """
    ask = ["peek", user_id, party_size or 1, people]
    return _call(lambda s: s[0](keys=[_key(slot_id)], args=ask)) == SOLD_OUT
