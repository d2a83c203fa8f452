"""A small, hand-built history whose statistics are known exactly (see the numbers in the tests).

Merchant 甲瑜伽 has two branches: 静安店 sells yoga (8000 fen, paid online, coach 李教练),
徐汇店 sells pilates (free, coach 王教练). Visits fall in two weeks (Monday 2025-03-03 and Monday
2025-03-10); everything happens through the booking engine with ``now=`` at the time it happened.
Merchant 乙博物馆 has bookings in the same weeks, which 甲's staff must never see.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from factories import (
    STAFF_PASSWORD,
    console_sign_in,
    make_branch,
    make_merchant,
    make_offering,
    make_resource,
    make_slot,
    make_staff,
    make_user,
)

from yuyue.booking import services as engine
from yuyue.booking.models import Booking
from yuyue.catalog.models import Offering, Resource
from yuyue.core import timeutil
from yuyue.scheduling.models import Slot
from yuyue.tenants.models import Branch, Merchant

WEEK1 = dt.date(2025, 3, 3)  # a Monday
WEEK2 = dt.date(2025, 3, 10)
PERIOD = {"date_from": "2025-03-03", "date_to": "2025-03-16"}
PASSWORD = STAFF_PASSWORD
sign_in = console_sign_in


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return timeutil.local_datetime(day, dt.time(hour, minute))


@dataclass
class Studio:
    merchant: Merchant
    jingan: Branch
    xuhui: Branch
    li: Resource  # yoga coach
    wang: Resource  # pilates coach
    yoga: Offering
    pilates: Offering
    slots: dict[str, Slot] = field(default_factory=dict)
    staff: dict[str, User] = field(default_factory=dict)
    other: Merchant | None = None
    other_branch: Branch | None = None


def _book(user, slot: Slot, *, paid: bool = False) -> Booking:
    booking = engine.book(user=user, slot_id=slot.pk, now=slot.start - dt.timedelta(days=2))
    if paid:
        booking = engine.confirm(booking=booking, now=slot.start - dt.timedelta(days=2) + dt.timedelta(minutes=3))
    return booking


def _check_in(booking: Booking, minutes: int = 5) -> None:
    moment = booking.slot.start + dt.timedelta(minutes=minutes)
    engine.check_in(voucher=engine.voucher_for(booking), staff=None, now=moment)


def build_studio() -> Studio:
    merchant = make_merchant(name="甲瑜伽")
    jingan = make_branch(merchant=merchant, name="静安店")
    xuhui = make_branch(merchant=merchant, name="徐汇店")
    li = make_resource(merchant=merchant, branch=jingan, name="李教练")
    wang = make_resource(merchant=merchant, branch=xuhui, name="王教练")
    yoga = make_offering(kind="course", merchant=merchant, branch=jingan, title="晨间瑜伽", price_fen=8000)
    pilates = make_offering(kind="course", merchant=merchant, branch=xuhui, title="普拉提", price_fen=0)
    yoga.resources.add(li)
    pilates.resources.add(wang)
    s = Studio(merchant=merchant, jingan=jingan, xuhui=xuhui, li=li, wang=wang, yoga=yoga, pilates=pilates)
    # Monday 07:30 in Shanghai is Sunday 23:30 in UTC: the heatmap must say Monday, 7 o'clock.
    wednesday, thursday = WEEK1 + dt.timedelta(days=2), WEEK1 + dt.timedelta(days=3)
    s.slots["y1"] = make_slot(offering=yoga, start=at(WEEK1, 7, 30), capacity=4, resources=[li])
    s.slots["y2"] = make_slot(offering=yoga, start=at(wednesday, 19), capacity=5, resources=[li])
    s.slots["y3"] = make_slot(offering=yoga, start=at(thursday, 12), capacity=3, resources=[li])
    saturday, next_tuesday = WEEK1 + dt.timedelta(days=5), WEEK2 + dt.timedelta(days=1)
    s.slots["p1"] = make_slot(offering=pilates, start=at(saturday, 10), capacity=10, resources=[wang])
    s.slots["p2"] = make_slot(offering=pilates, start=at(next_tuesday, 19), capacity=2, resources=[wang])
    u = [make_user() for _ in range(8)]

    # y1 (Monday 07:30, 4 places): visit, no-show, cancelled and refunded, an unpaid hold that expired.
    y1 = s.slots["y1"]
    visit = _book(u[1], y1, paid=True)
    absent = _book(u[2], y1, paid=True)
    refunded = _book(u[3], y1, paid=True)
    expired = _book(u[4], y1)
    engine.expire_hold(booking=expired, now=y1.start - dt.timedelta(days=1))
    engine.cancel(booking=refunded, by=u[3], reason="临时有事", now=y1.start - dt.timedelta(days=1))
    refunded = Booking.objects.get(pk=refunded.pk)
    engine.mark_refunded(booking=refunded, refund_fen=8000, now=y1.start - dt.timedelta(hours=20))
    _check_in(visit)
    engine.mark_no_show(booking=absent, staff=None, now=y1.end + dt.timedelta(minutes=10))
    # y2 (Wednesday 19:00, 5 places): confirmed (never came, never marked), completed, cancelled (refund pending).
    y2 = s.slots["y2"]
    _book(u[1], y2, paid=True)
    done = _book(u[5], y2, paid=True)
    gone = _book(u[6], y2, paid=True)
    engine.cancel(booking=gone, by=u[6], now=y2.start - dt.timedelta(days=1))
    _check_in(done)
    engine.complete_finished(now=y2.end + dt.timedelta(minutes=1))
    # y3 (Thursday 12:00): the merchant closed it; the closure owes the full 8000 back.
    y3 = s.slots["y3"]
    _book(u[4], y3, paid=True)
    engine.cancel_for_closure(slot_id=y3.pk, by=None, reason="场地维修", now=y3.start - dt.timedelta(days=1))
    # p1 (Saturday 10:00, free, 10 places): two visits, a no-show, a cancellation.
    p1 = s.slots["p1"]
    p1_visits = [_book(u[1], p1), _book(u[2], p1)]
    p1_absent = _book(u[3], p1)
    engine.cancel(booking=_book(u[7], p1), by=u[7], now=p1.start - dt.timedelta(days=1))
    for booking in p1_visits:
        _check_in(booking, minutes=10)
    engine.mark_no_show(booking=p1_absent, staff=None, now=p1.end + dt.timedelta(minutes=10))
    # p2 (next Tuesday 19:00, 2 places): full, both checked in.
    p2 = s.slots["p2"]
    for user in (u[1], u[2]):
        _check_in(_book(user, p2))

    engine.complete_finished(now=p2.end + dt.timedelta(minutes=1))
    reviews = [(visit, u[1], 5), (done, u[5], 3), (p1_visits[0], u[1], 4), (p1_visits[1], u[2], 2)]
    for booking, user, rating in reviews:
        engine.add_review(booking=Booking.objects.get(pk=booking.pk), user=user, rating=rating, now=p2.end)

    for role in ("owner", "manager", "staff"):
        s.staff[role] = make_staff(merchant, role)
    s.staff["coach"] = make_staff(merchant, "coach", resource=li)
    s.staff["jingan_desk"] = make_staff(merchant, "staff", branches=(jingan,))

    # Another merchant, same weeks: none of this may show for 甲's staff.
    other = make_merchant(name="乙博物馆")
    other_branch = make_branch(merchant=other, name="乙总馆")
    hall = make_offering(kind="course", merchant=other, branch=other_branch, title="乙馆导览", price_fen=5000)
    hall_slot = make_slot(offering=hall, start=at(WEEK1, 7, 30), capacity=50)
    for _ in range(3):
        _check_in(_book(make_user(), hall_slot, paid=True))
    s.other, s.other_branch = other, other_branch
    s.staff["other_owner"] = make_staff(other, "owner")
    return s
