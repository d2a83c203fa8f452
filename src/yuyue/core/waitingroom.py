"""The waiting room: in a configured peak window, booking requests above a rate queue instead of failing.

It works like the ticket machine at a counter. Whoever asks to book during the window draws a
number (in one Redis Lua script, so every server process shares one line); a "serving" number
moves on at the configured rate, and whoever's number it has passed goes on to book. The place in
the line is ticket − serving, the estimated wait place ÷ rate. A person keeps their number for the
whole window (one per account), so asking again never sends them to the back.

The serving number only moves while people wait: it runs at most one second's worth of
admissions ahead of the last number drawn, so a quiet minute does not save up a flood for the
next burst, and in any second at most ``admit_per_second`` more people get through.

Where a window comes from: an offering's policy (``waiting_room: {"starts": "08:00", "minutes": 30,
"admit_per_second": 50}``) or, for the whole site, ``YUYUE_WAITING_ROOM=08:00/30/50``. Processes
re-read the offerings that have one every few seconds, and outside every window nothing is asked
of Redis or the database.

Only the queue lives in Redis. Who gets a seat is still decided by the booking engine in the
database, so with Redis absent or failing the room lets everyone through (and logs it): slower for
the database in a rush, never less exact.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, wraps
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from yuyue.catalog.policy import WaitingRoom
from yuyue.core import timeutil
from yuyue.core.errors import DomainError

log = logging.getLogger(__name__)

# The signed admission an H5 visitor carries once let through (short-lived, bound to room and account).
ADMISSION_COOKIE = "yuyue_admitted"
_SALT = "yuyue.waitingroom.admission"
# How long a process trusts its list of offerings with a waiting room before reading it again.
CONFIG_SECONDS = 10.0
# A queued client is told to ask again after at most this many seconds (its place is kept).
MAX_RETRY_AFTER = 10
# Redis keys: KEY_PREFIX:<room> (the counters) and KEY_PREFIX:<room>:tickets (numbers by account).
KEY_PREFIX = "wr"


@dataclass(frozen=True)
class Room:
    """One open window of one queue: the site's or an offering's, on one day."""

    key: str
    closes_at: dt.datetime
    rate: int


@dataclass(frozen=True)
class Place:
    """Where a person stands: let through, or ``position`` in line with an estimated wait."""

    admitted: bool
    position: int = 0
    wait_seconds: int = 0


THROUGH = Place(admitted=True)


def parse_setting(text: str) -> WaitingRoom | None:
    """``"08:00/30/50"`` (start / minutes / people per second) → a WaitingRoom; ``""`` → None."""
    if not text.strip():
        return None
    starts, minutes, rate = text.strip().split("/")
    return WaitingRoom(starts=dt.time.fromisoformat(starts), minutes=int(minutes), admit_per_second=int(rate))


def open_window(config: WaitingRoom, now: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """The window of ``config`` that ``now`` falls in (it may have opened yesterday), or None."""
    today = now.astimezone(timeutil.local_zone()).date()
    for day in (today, today - dt.timedelta(days=1)):
        opens = timeutil.local_datetime(day, config.starts)
        closes = opens + dt.timedelta(minutes=config.minutes)
        if opens <= now < closes:
            return opens, closes
    return None


# --- Which rooms exist ----------------------------------------------------------------------------

_configured_lock = threading.Lock()
_configured_cache: dict[str, Any] = {"at": -math.inf, "offerings": {}}


def _offering_rooms() -> dict[int, WaitingRoom]:
    """Offerings whose policy has a waiting room, read again every CONFIG_SECONDS."""
    with _configured_lock:
        if time.monotonic() - _configured_cache["at"] < CONFIG_SECONDS:
            return dict(_configured_cache["offerings"])
    from django.db.models import Q

    from yuyue.catalog.kinds import KINDS
    from yuyue.catalog.models import Offering

    kinds_on = [code for code, kind in KINDS.items() if kind.policy.waiting_room]
    found = Offering.objects.filter(Q(kind__in=kinds_on) | Q(policy_overrides__has_key="waiting_room"))
    rooms = {o.pk: o.policy.waiting_room for o in found.filter(is_active=True) if o.policy.waiting_room}
    with _configured_lock:
        _configured_cache.update(at=time.monotonic(), offerings=rooms)
    return rooms


def forget() -> None:
    """Read the offerings' rooms again at the next request (after an edit, and between tests)."""
    with _configured_lock:
        _configured_cache.update(at=-math.inf, offerings={})


def room_for_slot(slot_id: int, *, now: dt.datetime | None = None) -> Room | None:
    """The open room a booking request for ``slot_id`` must pass, or None (the usual case: no query)."""
    now = now or timeutil.now()
    open_offerings = {}
    for offering_id, config in _offering_rooms().items():
        window = open_window(config, now)
        if window is not None:
            open_offerings[offering_id] = (config, window)
    if open_offerings:
        from yuyue.scheduling.models import Slot

        of_slot = Slot.objects.filter(pk=slot_id).values_list("offering_id", flat=True).first()
        if of_slot in open_offerings:
            config, (opens, closes) = open_offerings[of_slot]
            return Room(f"offering:{of_slot}:{int(opens.timestamp())}", closes, config.admit_per_second)
    site = parse_setting(settings.WAITING_ROOM)
    if site is not None:
        window = open_window(site, now)
        if window is not None:
            return Room(f"site:{int(window[0].timestamp())}", window[1], site.admit_per_second)
    return None


# --- The line (Redis) -----------------------------------------------------------------------------

# KEYS[1]: the room (issued, serving, at); KEYS[2]: tickets by account.
# ARGV: now (epoch ms, whole: exact in Lua's doubles), admissions per second, account, expiry (epoch ms).
_ENTER = """
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'issued', 'serving', 'at')
local issued = tonumber(state[1]) or 0
local serving = tonumber(state[2]) or rate
local at = tonumber(state[3]) or now
if now > at then
  serving = serving + rate * (now - at) / 1000
  at = now
end
if serving > issued + rate then serving = issued + rate end
local ticket = tonumber(redis.call('HGET', KEYS[2], ARGV[3]))
if not ticket then
  issued = issued + 1
  ticket = issued
  redis.call('HSET', KEYS[2], ARGV[3], ticket)
  redis.call('PEXPIREAT', KEYS[2], ARGV[4])
end
serving = string.format('%.6f', serving)
redis.call('HSET', KEYS[1], 'issued', issued, 'serving', serving, 'at', string.format('%d', at))
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return {ticket, serving}
"""


@cache
def _enter_script(url: str) -> Any:
    from yuyue.core.ratelimit import _redis

    # EVALSHA: the script travels to Redis once, not with every request.
    return _redis(url).register_script(_ENTER)


_last_warning = {"at": -math.inf}


def _warn_through(reason: str) -> None:
    # Once a minute per process is enough to be seen, and not a flood of lines in a rush.
    if time.monotonic() - _last_warning["at"] >= 60:
        _last_warning["at"] = time.monotonic()
        log.warning("waiting room lets everyone through: %s", reason)


def enter(room: Room, user_id: int, *, now: dt.datetime | None = None) -> Place:
    """Draw (or look up) the number of ``user_id`` in ``room`` and say whether it has been called."""
    if not settings.REDIS_URL:
        _warn_through("no Redis configured (YUYUE_REDIS_URL)")
        return THROUGH
    import redis

    now = now or timeutil.now()
    expires_ms = int((room.closes_at.timestamp() + 3600) * 1000)
    try:
        ticket, serving_text = _enter_script(settings.REDIS_URL)(
            keys=[f"{KEY_PREFIX}:{room.key}", f"{KEY_PREFIX}:{room.key}:tickets"],
            args=[int(now.timestamp() * 1000), room.rate, user_id, expires_ms],
        )
    except redis.RedisError as exc:
        _warn_through(f"Redis failed: {exc}")
        return THROUGH
    ticket, serving = int(ticket), float(serving_text)
    if ticket <= serving:
        return THROUGH
    return Place(
        admitted=False,
        position=ticket - math.floor(serving),
        wait_seconds=max(1, math.ceil((ticket - serving) / room.rate)),
    )


# --- The two front doors ----------------------------------------------------------------------------


def admit(*, user_id: int, slot_id: int) -> None:
    """For the API: pass, or refuse with ``rate_limited`` and the caller's place in the line.

    API.md has no queue code, so a queued request is a 429 whose body adds ``queue_position`` and
    ``estimated_wait_seconds``; ``Retry-After`` says when to ask again (the place is kept).
    """
    room = room_for_slot(slot_id)
    if room is None:
        return
    place = enter(room, user_id)
    if place.admitted:
        return
    raise DomainError(
        "rate_limited",
        queue_message(place),
        retry_after=min(place.wait_seconds, MAX_RETRY_AFTER),
        queue_position=place.position,
        estimated_wait_seconds=place.wait_seconds,
    )


def queue_message(place: Place) -> str:
    return _("Many people are booking right now. You are number %(n)d in the queue; about %(s)d s to wait.") % {
        "n": place.position,
        "s": place.wait_seconds,
    }


def _admission(room: Room, user_id: int) -> str:
    return f"{room.key}|{user_id}"


def _admitted_by_cookie(request: HttpRequest, room: Room, user_id: int) -> bool:
    value = request.COOKIES.get(ADMISSION_COOKIE, "")
    if not value:
        return False
    try:
        carried = signing.TimestampSigner(salt=_SALT).unsign(
            value, max_age=settings.WAITING_ROOM_ADMISSION_MINUTES * 60
        )
    except signing.BadSignature:
        return False
    return carried == _admission(room, user_id)


def h5_queue(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Put an H5 booking view ``(request, user, slot_id)`` behind the room.

    A queued visitor sees their place and the estimate on a page that reloads itself (a meta
    refresh: the CSP allows no inline script); once called, the booking form follows and a signed,
    short-lived cookie lets them submit it without queueing again.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, user: Any, slot_id: int, *args: Any, **kwargs: Any) -> HttpResponse:
        room = room_for_slot(slot_id)
        if room is None or _admitted_by_cookie(request, room, user.pk):
            return view(request, user, slot_id, *args, **kwargs)
        place = enter(room, user.pk)
        if not place.admitted:
            refresh = min(max(place.wait_seconds, 2), MAX_RETRY_AFTER)
            response = render(
                request,
                "h5/queue.html",
                {"me": user, "place": place, "refresh": refresh, "again": request.path},
            )
            response["Retry-After"] = str(refresh)
            response["Cache-Control"] = "private, no-store"
            return response
        response = view(request, user, slot_id, *args, **kwargs)
        response.set_cookie(
            ADMISSION_COOKIE,
            signing.TimestampSigner(salt=_SALT).sign(_admission(room, user.pk)),
            max_age=settings.WAITING_ROOM_ADMISSION_MINUTES * 60,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure(),
        )
        return response

    return wrapper
