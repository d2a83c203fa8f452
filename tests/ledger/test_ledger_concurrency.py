"""Appends race: many connections book at one merchant at once, and the chain stays one line."""

from __future__ import annotations

import threading
import time
import traceback

import pytest
from django.db import connection
from factories import make_slot, make_user

from yuyue.booking import services as booking
from yuyue.ledger import services as ledger
from yuyue.ledger.models import LedgerEntry

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

CLIENTS = 24


def test_racing_bookings_and_cancellations_make_one_linear_chain(make_offering, merchant):
    # Two slots and two offerings, so that the racing transactions share only the merchant.
    slots = [make_slot(offering=make_offering(), capacity=CLIENTS) for _ in range(2)]
    users = [make_user() for _ in range(CLIENTS)]
    to_cancel = [booking.book(user=make_user(), slot_id=slots[0].pk) for _ in range(4)]
    barrier = threading.Barrier(CLIENTS + len(to_cancel))
    errors: list[str] = []

    def run(work) -> None:
        try:
            barrier.wait(timeout=30)
            work()
        except BaseException:
            errors.append(traceback.format_exc())
        finally:
            connection.close()

    works = [(lambda u=u, i=i: booking.book(user=u, slot_id=slots[i % 2].pk)) for i, u in enumerate(users)] + [
        (lambda b=b: booking.cancel(booking=type(b).objects.get(pk=b.pk), by=None)) for b in to_cancel
    ]
    threads = [threading.Thread(target=run, args=(w,), daemon=True) for w in works]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert not errors, "\n".join(errors)

    seqs = list(LedgerEntry.objects.filter(merchant=merchant).order_by("seq").values_list("seq", flat=True))
    expected = 4 + CLIENTS + 4  # the first four bookings, the racing bookings, the cancellations
    assert seqs == list(range(1, expected + 1)), "a fork or a gap in the chain"
    report = ledger.verify(merchant=merchant)
    assert report.ok, [str(p) for p in report.problems]
    print(f"{len(works)} racing appends in {time.monotonic() - started:.2f}s on {connection.vendor}")
