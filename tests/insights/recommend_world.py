"""A small booking history for the recommendation tests (a module with a unique name: test
directories are not packages).

Four members book yoga and pilates at 静安 every Wednesday evening, three others go to a museum
in 杭州, and "me" books only the yoga class, on Wednesdays at 19:00. Every booking goes through
the engine with a past ``now``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from factories import make_branch, make_merchant, make_offering, make_slot, make_user

from yuyue.booking import services as engine
from yuyue.core import timeutil

WEDNESDAY = 2


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return timeutil.local_datetime(day, dt.time(hour, minute))


def past_weekday(weeks_ago: int, weekday: int) -> dt.date:
    today = timeutil.today()
    return today - dt.timedelta(days=(today.weekday() - weekday) % 7 + 7 * weeks_ago)


def next_weekday(weekday: int, *, at_least: int = 2) -> dt.date:
    """The first such weekday at least ``at_least`` days from today."""
    day = timeutil.today() + dt.timedelta(days=at_least)
    return day + dt.timedelta(days=(weekday - day.weekday()) % 7)


def book_past(user: Any, offering: Any, start: dt.datetime) -> Any:
    slot = make_slot(offering=offering, start=start, capacity=20)
    return engine.book(user=user, slot_id=slot.pk, now=start - dt.timedelta(days=1))


@dataclass
class World:
    me: Any
    fans: list[Any]
    museum_goers: list[Any]
    yoga: Any
    pilates: Any
    museum: Any
    studio: Any
    usual_pilates: Any = None  # next Wednesday 19:00
    soon_pilates: Any = None  # tomorrow 10:00, sooner but not my time
    next_yoga: Any = None
    next_museum: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def build_world() -> World:
    studio = make_merchant(name="一念瑜伽")
    jingan = make_branch(merchant=studio, name="静安寺店", city="上海", address="愚园东路 128 号")
    yoga = make_offering(kind="course", branch=jingan, title="流瑜伽（静安寺店）")
    pilates = make_offering(kind="course", branch=jingan, title="普拉提垫上课（静安寺店）")
    gallery = make_merchant(name="青岚美术馆")
    hangzhou = make_branch(merchant=gallery, name="本馆", city="杭州")
    museum = make_offering(kind="course", branch=hangzhou, title="美术馆夜场导览")

    me = make_user()
    fans = [make_user() for _ in range(4)]
    museum_goers = [make_user() for _ in range(3)]
    for week in (1, 2, 3, 4):
        wednesday = past_weekday(week, WEDNESDAY)
        for fan in fans:
            book_past(fan, yoga, local(wednesday, 19))
            book_past(fan, pilates, local(wednesday, 20, 15))
        for goer in museum_goers:
            book_past(goer, museum, local(wednesday - dt.timedelta(days=3), 10))
        if week <= 3:
            book_past(me, yoga, local(wednesday, 19))

    world = World(me=me, fans=fans, museum_goers=museum_goers, yoga=yoga, pilates=pilates, museum=museum, studio=studio)
    wednesday = next_weekday(WEDNESDAY)
    world.usual_pilates = make_slot(offering=pilates, start=local(wednesday, 19), capacity=10)
    world.soon_pilates = make_slot(offering=pilates, start=local(timeutil.today() + dt.timedelta(days=1), 10))
    world.next_yoga = make_slot(offering=yoga, start=local(wednesday, 19), minutes=60, capacity=10)
    world.next_museum = make_slot(offering=museum, start=local(wednesday, 10), capacity=30)
    return world
