"""The world assistant tests run in: a yoga studio with classes over the next days, two customers
(A and B) with a booking each. Helpers are in assistant_world.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from assistant_world import at
from factories import make_merchant, make_offering, make_slot, make_user

from yuyue.accounts import services as accounts
from yuyue.booking import services as engine
from yuyue.booking.models import Booking
from yuyue.catalog.models import Offering
from yuyue.scheduling.models import Slot
from yuyue.tenants.models import Merchant


@dataclass
class Studio:
    merchant: Merchant
    yoga: Offering
    slot: Slot  # A's class, in two days at 10:00
    evening: Slot  # same day 19:00
    next_day: Slot  # the day after at 10:00
    full: Slot  # same day 12:00, no seats left
    customer_a: Any
    customer_b: Any
    booking_a: Booking
    booking_b: Booking
    token_a: str
    token_b: str


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings: Any) -> None:
    # Notifications go out at once whatever time the tests run.
    settings.NOTIFY_QUIET_HOURS = ""


@pytest.fixture
def studio(db: None) -> Studio:
    merchant = make_merchant(name="一念瑜伽", phone="021-55550000")
    yoga = make_offering(kind="course", merchant=merchant, title="流瑜伽")
    slot = make_slot(offering=yoga, start=at(2, 10), capacity=5)
    evening = make_slot(offering=yoga, start=at(2, 19), capacity=5)
    next_day = make_slot(offering=yoga, start=at(3, 10), capacity=5)
    full = make_slot(offering=yoga, start=at(2, 12), capacity=1)
    customer_a, customer_b = make_user("13900000001"), make_user("13900000002")
    engine.book(user=make_user(), slot_id=full.pk)
    booking_a = engine.book(user=customer_a, slot_id=slot.pk)
    booking_b = engine.book(user=customer_b, slot_id=slot.pk)
    token_a, token_b = accounts.issue_tokens([customer_a, customer_b])
    return Studio(
        merchant, yoga, slot, evening, next_day, full, customer_a, customer_b, booking_a, booking_b, token_a, token_b
    )
