"""The demo data (made by the booking engine) verifies, and a tampered copy fails naming the entry."""

from __future__ import annotations

import pytest
from django.db import connection

from yuyue import cli
from yuyue.booking.models import BookingEvent
from yuyue.ledger.models import LedgerEntry
from yuyue.tenants.models import Merchant

pytestmark = pytest.mark.django_db


def test_demo_history_verifies_and_tampering_is_named(demo_db, capsys):
    # The demo loaded once for every module that reads it (conftest.demo_db); the tampering below
    # is undone with this test's transaction.
    events = BookingEvent.objects.count()
    assert events > 100 and LedgerEntry.objects.count() == events
    assert cli.main(["ledger", "verify"]) == 0
    assert f"{Merchant.objects.count()} merchants, {events} entries" in capsys.readouterr().out

    victim = LedgerEntry.objects.filter(merchant__slug="demo-clinic").order_by("seq")[10]
    with connection.cursor() as cursor:  # a "corrected" history: the event's status quietly changed
        cursor.execute("UPDATE booking_bookingevent SET to_status = 'cancelled' WHERE id = %s", [victim.event_id])
    assert cli.main(["ledger", "verify"]) == 1
    err = capsys.readouterr().err
    assert f"BAD demo-clinic: entry #{victim.seq}: booking event {victim.event_id} was changed" in err
    assert cli.main(["ledger", "verify", "--merchant", "demo-scenic"]) == 0
