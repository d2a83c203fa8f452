"""The ledger seals every booking event and notices any change made behind the engine's back."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
from django.db import connection
from factories import make_slot, make_user

from yuyue import cli
from yuyue.booking import services as booking
from yuyue.booking.models import BookingEvent
from yuyue.core import timeutil
from yuyue.ledger import services as ledger
from yuyue.ledger.models import ChainHead, Checkpoint, LedgerEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(make_offering):
    """Four bookings and a cancellation: five sealed events of one merchant."""
    slot = make_slot(offering=make_offering(), capacity=10)
    bookings = [booking.book(user=make_user(), slot_id=slot.pk) for _ in range(4)]
    booking.cancel(booking=bookings[0], by=bookings[0].user, reason="plans changed")
    return bookings


def seal_yesterday(merchant) -> dt.date:
    """Move the merchant's entries to yesterday (only days that are over get checkpoints)."""
    yesterday = timeutil.today() - dt.timedelta(days=1)
    noon = timeutil.local_datetime(yesterday, dt.time(12, 0))
    LedgerEntry.objects.filter(merchant=merchant).update(recorded_at=noon)
    return yesterday


def sql(statement: str, *params: object) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def first_problem(merchant) -> ledger.Problem:
    report = ledger.verify(merchant=merchant)
    assert not report.ok
    return report.problems[0]


def test_every_event_is_sealed_in_one_linear_chain(history, merchant):
    entries = list(LedgerEntry.objects.filter(merchant=merchant).order_by("seq"))
    events = list(BookingEvent.objects.filter(booking__merchant=merchant).order_by("id"))
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert [e.event_id for e in entries] == [ev.pk for ev in events]
    assert entries[0].prev_hash == "0" * 64
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.entry_hash
    payload = json.loads(entries[-1].payload)
    assert payload["action"] == "cancel" and payload["reason"] == "plans changed"
    assert payload["at"].endswith("Z")
    assert entries[-1].payload == ledger.canonical_json(payload)  # sorted keys, no whitespace
    head = ChainHead.objects.get(merchant=merchant)
    assert (head.seq, head.entry_hash) == (5, entries[-1].entry_hash)
    report = ledger.verify(merchant=merchant)
    assert report.ok and report.entries == 5


def test_a_failed_booking_leaves_no_entry(make_offering, merchant):
    slot = make_slot(offering=make_offering(), capacity=1)
    booking.book(user=make_user(), slot_id=slot.pk)
    with pytest.raises(booking.DomainError):
        booking.book(user=make_user(), slot_id=slot.pk)
    assert LedgerEntry.objects.filter(merchant=merchant).count() == 1
    assert ledger.verify(merchant=merchant).ok


def test_an_edited_entry_payload_is_detected(history, merchant):
    entry = LedgerEntry.objects.get(merchant=merchant, seq=3)
    sql("UPDATE ledger_ledgerentry SET payload = %s WHERE id = %s", entry.payload.replace('"book"', '"bok"'), entry.pk)
    problem = first_problem(merchant)
    assert problem.seq == 3 and "payload" in problem.message


def test_an_entry_rehashed_after_editing_breaks_the_next_link(history, merchant):
    entry = LedgerEntry.objects.get(merchant=merchant, seq=2)
    text = entry.payload.replace('"book"', '"bok"')
    payload_hash = ledger.sha256(text)
    new_hash = ledger.entry_hash(entry.prev_hash, payload_hash, 2)
    sql(
        "UPDATE ledger_ledgerentry SET payload = %s, payload_hash = %s, entry_hash = %s WHERE id = %s",
        text,
        payload_hash,
        new_hash,
        entry.pk,
    )
    problem = first_problem(merchant)
    # Entry 2 is self-consistent now, but it no longer matches its booking event.
    assert problem.seq == 2 and "changed after it was sealed" in problem.message


def test_an_edited_booking_event_is_detected(history, merchant):
    event = BookingEvent.objects.filter(booking__merchant=merchant, action="cancel").get()
    sql("UPDATE booking_bookingevent SET reason = %s WHERE id = %s", "merchant's fault", event.pk)
    problem = first_problem(merchant)
    assert problem.seq == 5 and f"booking event {event.pk} was changed" in problem.message


def test_a_deleted_entry_is_detected(history, merchant):
    sql("DELETE FROM ledger_ledgerentry WHERE merchant_id = %s AND seq = 2", merchant.pk)
    problem = first_problem(merchant)
    assert problem.seq == 3 and "entry #2" in problem.message


def test_a_deleted_last_entry_is_detected(history, merchant):
    sql("DELETE FROM ledger_ledgerentry WHERE merchant_id = %s AND seq = 5", merchant.pk)
    problem = first_problem(merchant)
    assert problem.seq == 4 and "head" in problem.message


def test_a_deleted_booking_event_is_detected(history, merchant):
    event = BookingEvent.objects.filter(booking__merchant=merchant).order_by("id")[1]
    sql("DELETE FROM booking_bookingevent WHERE id = %s", event.pk)
    problem = first_problem(merchant)
    assert problem.seq == 2 and "was deleted" in problem.message


def test_an_inserted_booking_event_is_detected(history, merchant):
    target = history[1]
    sql(
        "INSERT INTO booking_bookingevent (booking_id, action, from_status, to_status, actor, reason, data, created_at)"
        " VALUES (%s, 'check_in', 'confirmed', 'checked_in', 'staff', '', '{}', %s)",
        target.pk,
        timeutil.now(),
    )
    problem = first_problem(merchant)
    assert problem.seq is None and "is not in the ledger" in problem.message


def test_an_inserted_entry_is_detected(history, merchant):
    last = LedgerEntry.objects.get(merchant=merchant, seq=5)
    text = ledger.canonical_json({"action": "forged"})
    payload_hash = ledger.sha256(text)
    sql(
        "INSERT INTO ledger_ledgerentry (merchant_id, seq, event_id, prev_hash, payload, payload_hash, entry_hash,"
        " recorded_at) VALUES (%s, 6, 999999, %s, %s, %s, %s, %s)",
        merchant.pk,
        last.entry_hash,
        text,
        payload_hash,
        ledger.entry_hash(last.entry_hash, payload_hash, 6),
        timeutil.now(),
    )
    problem = first_problem(merchant)
    assert problem.seq == 6 and "999999 was deleted" in problem.message


def test_checkpoint_catches_a_day_rewritten_with_consistent_hashes(history, merchant):
    today = seal_yesterday(merchant)
    [checkpoint] = ledger.make_checkpoints(day=today, merchant=merchant)
    assert checkpoint.entries == 5 and (checkpoint.first_seq, checkpoint.last_seq) == (1, 5)
    assert ledger.make_checkpoints(day=today, merchant=merchant) == []  # once a day
    exported = ledger.export_checkpoint(checkpoint)
    assert (
        exported["merkle_root"]
        == checkpoint.merkle_root
        == ledger.merkle_root(
            LedgerEntry.objects.filter(merchant=merchant).order_by("seq").values_list("entry_hash", flat=True)
        )
    )
    assert ledger.verify(merchant=merchant).ok

    # Rewrite entry 5 and its event so that every hash of the chain is recomputed consistently.
    event = BookingEvent.objects.get(pk=LedgerEntry.objects.get(merchant=merchant, seq=5).event_id)
    sql("UPDATE booking_bookingevent SET reason = %s WHERE id = %s", "no reason", event.pk)
    sql("DELETE FROM ledger_ledgerentry WHERE merchant_id = %s AND seq = 5", merchant.pk)
    sql(
        "UPDATE ledger_chainhead SET seq = 4, entry_hash = (SELECT entry_hash FROM ledger_ledgerentry"
        " WHERE merchant_id = %s AND seq = 4) WHERE merchant_id = %s",
        merchant.pk,
        merchant.pk,
    )
    assert ledger.rebuild(merchant=merchant) == 1
    seal_yesterday(merchant)  # and backdated, as if sealed that day
    problem = first_problem(merchant)
    assert "Merkle root" in problem.message and str(today) in problem.message


def test_merkle_root_is_order_sensitive_and_handles_odd_counts():
    hashes = [ledger.sha256(str(i)) for i in range(5)]
    assert ledger.merkle_root(hashes) != ledger.merkle_root(list(reversed(hashes)))
    assert ledger.merkle_root(hashes[:1]) != hashes[0]  # leaves are prefixed, a leaf is never a root
    assert ledger.merkle_root([]) == ledger.sha256(b"")


def test_rebuild_seals_events_from_before_the_ledger(history, merchant):
    sql("DELETE FROM ledger_ledgerentry WHERE merchant_id = %s", merchant.pk)
    sql("DELETE FROM ledger_chainhead WHERE merchant_id = %s", merchant.pk)
    assert "not in the ledger" in first_problem(merchant).message
    assert ledger.rebuild(merchant=merchant) == 5
    assert ledger.rebuild(merchant=merchant) == 0
    assert ledger.verify(merchant=merchant).ok


def test_cli_verify_exit_codes(history, merchant, capsys):
    assert cli.main(["ledger", "verify", "--merchant", merchant.slug]) == 0
    assert "ledger OK" in capsys.readouterr().out
    sql("UPDATE ledger_ledgerentry SET payload_hash = %s WHERE merchant_id = %s AND seq = 4", "0" * 64, merchant.pk)
    assert cli.main(["ledger", "verify"]) == 1
    err = capsys.readouterr().err
    assert f"BAD {merchant.slug}: entry #4:" in err
    assert cli.main(["ledger", "verify", "--merchant", "nobody"]) == 2


def test_checkpoints_only_for_days_that_are_over(history, merchant):
    with pytest.raises(ValueError):
        ledger.make_checkpoints(day=timeutil.today(), merchant=merchant)
    assert not Checkpoint.objects.exists()


def test_periodic_job_checkpoints_yesterday_once(history, merchant):
    from yuyue import tasks

    yesterday = seal_yesterday(merchant)
    assert tasks.JOBS["ledger_checkpoint"]() == 1
    assert tasks.JOBS["ledger_checkpoint"]() == 0
    assert Checkpoint.objects.get(merchant=merchant, date=yesterday).entries == 5


def test_cli_checkpoint(history, merchant, capsys):
    day = seal_yesterday(merchant).isoformat()
    assert cli.main(["ledger", "checkpoint", "--date", timeutil.today().isoformat()]) == 2
    assert cli.main(["ledger", "checkpoint", "--date", day]) == 0
    assert "1 checkpoints made" in capsys.readouterr().out
    assert Checkpoint.objects.filter(merchant=merchant, date=dt.date.fromisoformat(day)).exists()
    assert cli.main(["ledger", "checkpoint", "--date", "yesterday-ish"]) == 2


def test_closing_a_slot_seals_the_refund_facts(make_offering, merchant):
    slot = make_slot(offering=make_offering(), capacity=5)
    for _ in range(2):
        booking.book(user=make_user(), slot_id=slot.pk)
    booking.cancel_for_closure(slot_id=slot.pk, by=None, reason="storm")
    closes = [json.loads(e.payload) for e in LedgerEntry.objects.filter(merchant=merchant) if '"close"' in e.payload]
    assert len(closes) == 2 and all(c["data"]["closure"] is True and c["reason"] == "storm" for c in closes)
    assert ledger.verify(merchant=merchant).ok
