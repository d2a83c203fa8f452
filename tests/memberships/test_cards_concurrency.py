"""A card with 3 classes and 8 bookings at once on different slots: exactly 3 succeed.

Each client is a thread with its own connection, all released at once, with real commits. On
PostgreSQL and MariaDB (READ COMMITTED) this proves the conditional UPDATE on the card, taken in
the transaction of the seat; SQLite queues writers.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Sum
from factories import make_merchant, make_offering, make_slot, make_user
from racing import race, tally

from yuyue.booking import services as engine
from yuyue.booking.models import Booking, PaidBy
from yuyue.core import timeutil
from yuyue.memberships.models import Card, CreditEntry
from yuyue.memberships.services import ProductSpec, grant_card, save_product
from yuyue.scheduling.models import Slot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def test_three_classes_eight_parallel_bookings_exactly_three_succeed():
    merchant = make_merchant()
    yoga = make_offering(kind="course", merchant=merchant, price_fen=8000)
    product = save_product(
        merchant=merchant, spec=ProductSpec(name="3次卡", credits=3, valid_days=30, offerings=[yoga])
    )
    user = make_user()
    card = grant_card(product=product, user=user, by=None)
    first = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=2), dt.time(8, 0))
    slots = [make_slot(offering=yoga, start=first + dt.timedelta(hours=i)) for i in range(8)]

    outcomes = race(
        *[(lambda s=s: engine.book(user=user, slot_id=s.pk, pay_with="credit", card_id=card.pk)) for s in slots]
    )

    assert tally(outcomes) == {"ok": 3, "payment_required": 5}
    card.refresh_from_db()
    assert card.credits_left == 0
    booked = Booking.objects.filter(card=card, paid_by=PaidBy.CREDIT)
    assert booked.count() == 3
    # Every refused booking left nothing behind: no seat, no entry.
    assert sum(Slot.objects.filter(pk__in=[s.pk for s in slots]).values_list("reserved", flat=True)) == 3
    assert CreditEntry.objects.filter(card=card).aggregate(s=Sum("delta"))["s"] == 0
    assert CreditEntry.objects.filter(card=card, delta=-1).count() == 3
    assert not Card.objects.filter(credits_left__lt=0).exists()


def test_cancelling_and_booking_at_once_never_lose_or_invent_a_class():
    merchant = make_merchant()
    yoga = make_offering(kind="course", merchant=merchant, price_fen=8000)
    product = save_product(merchant=merchant, spec=ProductSpec(name="2次卡", credits=2, valid_days=30))
    user = make_user()
    card = grant_card(product=product, user=user, by=None)
    first = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=2), dt.time(8, 0))
    held = [
        engine.book(
            user=user, slot_id=make_slot(offering=yoga, start=first + dt.timedelta(hours=i)).pk, pay_with="credit"
        )
        for i in range(2)
    ]
    new_slots = [make_slot(offering=yoga, start=first + dt.timedelta(hours=5 + i)) for i in range(4)]
    early = first - dt.timedelta(days=1)  # well before the cancellation deadline: the classes come back
    outcomes = race(
        *[(lambda b=b: engine.cancel(booking=Booking.objects.get(pk=b.pk), by=user, now=early)) for b in held],
        *[(lambda s=s: engine.book(user=user, slot_id=s.pk, pay_with="credit", card_id=card.pk)) for s in new_slots],
    )
    assert [o.label for o in outcomes[:2]] == ["ok", "ok"]
    card.refresh_from_db()
    active = Booking.objects.filter(card=card, status="confirmed").count()
    assert 0 <= card.credits_left == 2 - active
    assert CreditEntry.objects.filter(card=card).aggregate(s=Sum("delta"))["s"] == card.credits_left
