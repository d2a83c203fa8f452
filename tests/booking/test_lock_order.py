"""The order of a booking's transaction: locks that other bookings wait for come last.

Every booking of a slot waits for the slot row's lock (the seat UPDATE), every booking of a
merchant for its ledger chain head. Both are held until the COMMIT, so a booking takes them at
the end of its transaction, after the rows only it touches; on a hot slot that is what bounds
bookings per second. (InnoDB must take the seat first: see ``services._seats_first``.) These
tests read the statements a booking sends, with real commits.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from factories import make_person, make_slot

from yuyue.booking import services
from yuyue.booking.models import Booking, BookingEvent, Claim, IdempotencyKey
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.ledger.models import ChainHead, LedgerEntry
from yuyue.ledger.services import verify
from yuyue.notify.models import OutboxItem
from yuyue.scheduling.models import Slot

pytestmark = pytest.mark.django_db(transaction=True)


def at(hour: int) -> dt.datetime:
    return timeutil.local_datetime(timeutil.today() + dt.timedelta(days=2), dt.time(hour))


def is_seat_update(sql: str) -> bool:
    return sql.startswith("UPDATE") and "scheduling_slot" in sql.split("SET")[0]


def is_ledger(sql: str) -> bool:
    return "ledger_chainhead" in sql or "ledger_ledgerentry" in sql


def is_account_lock(sql: str) -> bool:
    return sql.startswith("SELECT") and "accounts_enduser" in sql.split("WHERE")[0]


def transaction_of(**booking) -> list[str]:
    """The statements of one booking's transaction, between BEGIN and COMMIT."""
    with CaptureQueriesContext(connection) as queries:
        services.book(**booking)
    sql = [q["sql"].strip() for q in queries.captured_queries]
    begin = next(i for i, s in enumerate(sql) if s.upper().startswith("BEGIN"))
    assert sql[-1].upper() == "COMMIT", sql[-1]
    return sql[begin + 1 : -1]


@pytest.mark.parametrize("key", [None, "tap-1"], ids=["no-key", "idempotency-key"])
def test_a_booking_takes_the_seats_and_then_the_ledger_head_at_the_end(make_offering, key):
    slot = make_slot(offering=make_offering(kind="scenic"), start=at(10), capacity=5)
    someone = make_person()
    services.book(user=someone.owner, slot_id=slot.pk, person_ids=[someone.pk])  # the chain head exists now
    person = make_person()

    sql = transaction_of(user=person.owner, slot_id=slot.pk, person_ids=[person.pk], idempotency_key=key)

    # First the customer's row, share-locked (an account deletion waits for it, or it for the
    # deletion): it blocks no other booking. Then the rows only this booking touches.
    assert is_account_lock(sql[0]), sql[0]
    sql = sql[1:]
    seats = [i for i, s in enumerate(sql) if is_seat_update(s)]
    ledger = [i for i, s in enumerate(sql) if is_ledger(s)]
    assert len(seats) == 1 and ledger
    # The ledger append is the end of the transaction, right before its COMMIT.
    assert ledger == list(range(len(sql) - len(ledger), len(sql)))
    if services._seats_first():
        assert seats == [0]  # InnoDB: the seat first (a foreign-key check would deadlock it otherwise)
        assert all(is_ledger(s) for s in sql[ledger[0] :])
    else:
        # Nothing between the seats and the ledger: the slot's lock is held for the ledger append only.
        assert seats[0] == ledger[0] - 1
        assert all(s.startswith("INSERT") for s in sql[: seats[0]])
    if connection.vendor == "postgresql":
        assert len(ledger) == 1  # lock the head, insert the entry, move the head: one statement
    # No savepoints: the idempotency key and the claims are plain INSERTs (both claims in one).
    assert not any(s.upper().startswith(("SAVEPOINT", "RELEASE")) for s in sql)
    assert sum("booking_claim" in s for s in sql) == 1
    assert sum("booking_idempotencykey" in s for s in sql) == (1 if key else 0)
    assert verify().ok


def test_a_seat_update_that_finds_no_room_rolls_back_everything_before_it(make_offering, monkeypatch):
    """The read saw a seat, but another booking took it before the UPDATE: the rows written
    before the UPDATE (booking, key, claims, event, outbox) all go, with the usual answer."""
    slot = make_slot(offering=make_offering(kind="scenic"), start=at(10), capacity=2)
    someone = make_person()
    services.book(user=someone.owner, slot_id=slot.pk, person_ids=[someone.pk])
    read = services._open_slot

    def read_then_sold_out(*args, **kwargs):
        found = read(*args, **kwargs)
        Slot.objects.filter(pk=slot.pk).update(reserved=2)  # a booking elsewhere took the last seat
        return found

    monkeypatch.setattr(services, "_open_slot", read_then_sold_out)
    rows = [Booking, BookingEvent, Claim, IdempotencyKey, OutboxItem, LedgerEntry]
    counts = [m.objects.count() for m in rows]
    head = ChainHead.objects.get(merchant_id=slot.offering.merchant_id).seq
    person = make_person()

    with pytest.raises(DomainError) as refused:
        services.book(user=person.owner, slot_id=slot.pk, person_ids=[person.pk], idempotency_key="k-1")

    assert refused.value.code == "slot_full"
    assert [m.objects.count() for m in rows] == counts
    assert ChainHead.objects.get(merchant_id=slot.offering.merchant_id).seq == head
    assert verify().ok


def test_a_taken_claim_is_refused_with_its_own_reason_after_the_rollback(make_offering):
    """Claims go in one INSERT, so which key was taken is looked up once the transaction is
    rolled back: the same person again is a duplicate; another slot that day, the daily limit."""
    offering = make_offering(kind="scenic")  # one visit per resident ID per day
    morning, afternoon = (make_slot(offering=offering, start=at(h), capacity=5) for h in (10, 15))
    person = make_person()
    services.book(user=person.owner, slot_id=morning.pk, person_ids=[person.pk])

    with pytest.raises(DomainError) as again:
        services.book(user=person.owner, slot_id=morning.pk, person_ids=[person.pk])
    with pytest.raises(DomainError) as later:
        services.book(user=person.owner, slot_id=afternoon.pk, person_ids=[person.pk])

    assert (again.value.code, later.value.code) == ("duplicate", "limit_reached")
    assert Booking.objects.count() == 1 and Claim.objects.count() == 2
