"""A small world for the privacy tests: a scenic spot with real-name visitors, and its staff."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from factories import make_merchant, make_offering, make_person, make_slot, make_staff, make_user

from yuyue.accounts.models import EndUser, Person
from yuyue.booking import services as engine
from yuyue.booking.models import Booking
from yuyue.catalog.models import Offering
from yuyue.core import timeutil
from yuyue.tenants.models import Merchant

# An activity form with personal answers (text, phone, ID) and one that merchants count (choice).
FORM = [
    {"key": "name", "label": "姓名", "type": "text", "required": True},
    {"key": "phone", "label": "手机号", "type": "phone", "required": True},
    {"key": "id_card", "label": "证件号", "type": "id_number", "required": False},
    {"key": "size", "label": "尺码", "type": "choice", "required": True, "choices": ["S", "M", "L"]},
]


@dataclass
class Spot:
    merchant: Merchant
    offering: Offering  # real-name entry, free
    activity: Offering  # a form with personal and countable answers
    customer: EndUser
    visitors: list[Person]
    staff: dict[str, User] = field(default_factory=dict)


def build_spot(name: str = "隐私景区") -> Spot:
    merchant = make_merchant(name=name)
    offering = make_offering(kind="scenic", merchant=merchant)
    activity = make_offering(kind="activity", merchant=merchant, form_fields=FORM)
    customer = make_user()
    visitors = [make_person(owner=customer, phone="13912345678"), make_person(owner=customer)]
    spot = Spot(merchant=merchant, offering=offering, activity=activity, customer=customer, visitors=visitors)
    for role in ("owner", "manager", "staff"):
        spot.staff[role] = make_staff(merchant, role)
    return spot


def book_at(spot: Spot, start: dt.datetime, *, offering: Offering | None = None, **kwargs: Any) -> Booking:
    """A booking made an hour before ``start`` (which may be long past)."""
    offering = offering or spot.offering
    slot = make_slot(offering=offering, start=start)
    if offering == spot.activity:
        kwargs.setdefault(
            "answers", {"name": "张三", "phone": "13812345678", "id_card": spot.visitors[0].id_number, "size": "M"}
        )
    else:
        kwargs.setdefault("person_ids", [p.pk for p in spot.visitors])
    return engine.book(
        user=kwargs.pop("user", spot.customer), slot_id=slot.pk, now=start - dt.timedelta(hours=1), **kwargs
    )


def tomorrow() -> dt.datetime:
    return timeutil.local_datetime(timeutil.today() + dt.timedelta(days=1), dt.time(10, 0))


def visited(spot: Spot, start: dt.datetime) -> Booking:
    """A booking whose visitors came (checked in at the start)."""
    booking = book_at(spot, start)
    engine.check_in(voucher=engine.voucher_for(booking), staff=None, now=start)
    booking.refresh_from_db()
    return booking
