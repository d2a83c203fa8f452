"""The invariants under real concurrency: many connections racing on one database.

Like pretix's ``src/tests/concurrency_tests/``: every client is a thread with its own database
connection, all released at once by a barrier, and the tests run with real commits
(``transaction=True``) so each connection sees what the others committed. One test shows the
race is real: the same rush through a read-then-write check (no conditional UPDATE) oversells on
PostgreSQL and MariaDB. The last section does not leave timing to chance: it pauses one request
at a chosen step while another runs to completion, for interleavings a rush hits only rarely.

On SQLite the same tests pass because writers queue (``BEGIN IMMEDIATE``); on PostgreSQL and
MariaDB (READ COMMITTED) they prove the conditional update, the claim rows and the locks.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
import traceback
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from factories import make_branch, make_id_number, make_person, make_resource, make_slot, make_user
from racing import Outcome, race, tally

from yuyue.booking import services
from yuyue.booking.models import (
    ACTIVE_STATUSES,
    Booking,
    Claim,
    IdempotencyKey,
    ResourceClaim,
    Status,
    WaitlistEntry,
    WaitlistStatus,
)
from yuyue.core import ids, timeutil
from yuyue.core.errors import DomainError
from yuyue.scheduling.models import Slot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


# --------------------------------------------------------------------------------------------
# Racing
# --------------------------------------------------------------------------------------------


def at(hour: int, minute: int = 0, *, days: int = 2) -> dt.datetime:
    """A local time ``days`` from today: inside every kind's booking window, far from any deadline."""
    return timeutil.local_datetime(timeutil.today() + dt.timedelta(days=days), dt.time(hour, minute))


def assert_seats_add_up(*slots: Slot) -> None:
    """Invariant 1 from the database: reserved equals the seats of the slot's active bookings."""
    for slot in slots:
        slot.refresh_from_db()
        held = Booking.objects.filter(slot=slot, status__in=ACTIVE_STATUSES).aggregate(n=Sum("seats"))["n"] or 0
        assert 0 <= slot.reserved <= slot.capacity
        assert slot.reserved == held, f"slot {slot.pk}: reserved {slot.reserved}, active seats {held}"


def assert_claims_held_by_active_bookings() -> None:
    assert not Claim.objects.exclude(booking__status__in=ACTIVE_STATUSES).exists()


def fresh(booking: Booking) -> Booking:
    """A booking instance of one's own: threads must not share model instances."""
    return Booking.objects.get(pk=booking.pk)


# --------------------------------------------------------------------------------------------
# Invariant 1: seats
# --------------------------------------------------------------------------------------------


def test_fifty_clients_for_the_last_ten_seats_get_exactly_ten(make_offering):
    slot = make_slot(offering=make_offering(), start=at(10), capacity=15)
    for _ in range(5):
        services.book(user=make_user(), slot_id=slot.pk)
    clients = [partial(services.book, user=make_user(), slot_id=slot.pk) for _ in range(50)]

    outcomes = race(*clients)

    assert tally(outcomes) == {"ok": 10, "slot_full": 40}
    assert_seats_add_up(slot)
    assert slot.reserved == 15
    assert Booking.objects.filter(slot=slot).count() == 15


# --------------------------------------------------------------------------------------------
# Invariant 2: no duplicates, per-ID limits
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("accounts", [20, 1], ids=["twenty-accounts-one-id", "one-account"])
def test_one_person_from_twenty_clients_books_the_slot_once(make_offering, accounts):
    slot = make_slot(offering=make_offering(kind="scenic"), start=at(10), capacity=50)
    id_number = make_id_number()
    people = [make_person(id_number=id_number) for _ in range(accounts)]
    clients = [
        partial(services.book, user=person.owner, slot_id=slot.pk, person_ids=[person.pk])
        for person in itertools.islice(itertools.cycle(people), 20)
    ]

    outcomes = race(*clients)

    assert tally(outcomes) == {"ok": 1, "duplicate": 19}
    assert_seats_add_up(slot)
    assert slot.reserved == 1
    assert_claims_held_by_active_bookings()


@pytest.mark.parametrize("accounts", [20, 1], ids=["twenty-accounts-one-id", "one-account"])
@pytest.mark.parametrize("per_day", [1, 2])
def test_per_id_daily_limit_holds_when_twenty_slots_of_one_day_are_booked_at_once(make_offering, per_day, accounts):
    offering = make_offering(kind="scenic", policy_overrides={"per_person_per_day": per_day})
    slots = [make_slot(offering=offering, start=at(8) + dt.timedelta(minutes=30 * i), minutes=30) for i in range(20)]
    id_number = make_id_number()
    people = [make_person(id_number=id_number) for _ in range(accounts)]
    clients = [
        partial(services.book, user=person.owner, slot_id=slot.pk, person_ids=[person.pk])
        for person, slot in zip(itertools.cycle(people), slots, strict=False)
    ]

    outcomes = race(*clients)

    assert tally(outcomes) == {"ok": per_day, "limit_reached": 20 - per_day}
    assert Booking.objects.filter(offering=offering, status__in=ACTIVE_STATUSES).count() == per_day
    assert Claim.objects.filter(key__startswith="day:").count() == per_day
    assert_seats_add_up(*slots)


# --------------------------------------------------------------------------------------------
# Invariant 3: a resource in one place at a time
# --------------------------------------------------------------------------------------------


def test_one_coach_booked_from_two_branches_at_once_ends_up_in_one_place(merchant, make_offering):
    coach = make_resource(merchant=merchant, type="coach")
    north, south = make_branch(merchant=merchant), make_branch(merchant=merchant)
    in_north = make_slot(offering=make_offering(branch=north), start=at(10), minutes=60, capacity=20, resources=[coach])
    in_south = make_slot(
        offering=make_offering(branch=south), start=at(10, 30), minutes=60, capacity=20, resources=[coach]
    )
    targets = [in_north, in_south] * 20
    clients = [partial(services.book, user=make_user(), slot_id=slot.pk) for slot in targets]

    outcomes = race(*clients)

    per_slot = {
        slot.pk: tally([o for o, target in zip(outcomes, targets, strict=True) if target == slot])
        for slot in (in_north, in_south)
    }
    assert sorted(per_slot.values(), key=str) == [{"conflict": 20}, {"ok": 20}]
    winner = next(pk for pk, counts in per_slot.items() if counts == {"ok": 20})
    assert list(ResourceClaim.objects.filter(resource=coach).values_list("slot_id", flat=True)) == [winner]
    assert_no_overlapping_resource_claims()
    assert_seats_add_up(in_north, in_south)


def assert_no_overlapping_resource_claims() -> None:
    claims = list(ResourceClaim.objects.order_by("resource_id", "starts_at"))
    for a, b in itertools.combinations(claims, 2):
        if a.resource_id == b.resource_id and a.slot_id != b.slot_id:
            assert not (a.starts_at < b.ends_at and b.starts_at < a.ends_at), f"claims {a.pk} and {b.pk} overlap"


# --------------------------------------------------------------------------------------------
# Waitlist, reschedule, check-in
# --------------------------------------------------------------------------------------------


def test_waitlist_promotion_racing_new_bookings_gives_freed_seats_to_the_queue_first(make_offering):
    slot = make_slot(offering=make_offering(), start=at(10), capacity=10)
    bookings = [services.book(user=make_user(), slot_id=slot.pk) for _ in range(10)]
    queue = [services.join_waitlist(user=make_user(), slot_id=slot.pk) for _ in range(3)]
    cancels = [partial(services.cancel, booking=fresh(b), by=b.user) for b in bookings[:5]]
    newcomers = [partial(services.book, user=make_user(), slot_id=slot.pk) for _ in range(10)]

    outcomes = race(*cancels, *newcomers)

    assert tally(outcomes[:5]) == {"ok": 5}
    new = tally(outcomes[5:])
    assert set(new) <= {"ok", "slot_full"}
    # Five seats came free and three went to the waiting people, whatever the interleaving.
    assert new.get("ok", 0) <= 2
    for entry in queue:
        entry.refresh_from_db()
        assert entry.status == WaitlistStatus.PROMOTED and entry.active_key is None
        assert entry.booking is not None and entry.booking.status in ACTIVE_STATUSES
        assert entry.booking.user_id == entry.user_id and entry.booking.slot_id == slot.pk
    assert_seats_add_up(slot)
    assert slot.reserved == 5 + 3 + new.get("ok", 0)
    assert_claims_held_by_active_bookings()


def test_thirty_cancellations_of_one_slot_at_once_all_succeed(make_offering):
    """On MariaDB the status UPDATE's foreign-key check takes a shared lock on the slot; a release
    that only then asks for the write lock deadlocks with every other one (until retries run out)."""
    slot = make_slot(offering=make_offering(), start=at(10), capacity=30)
    bookings = [services.book(user=make_user(), slot_id=slot.pk) for _ in range(30)]

    outcomes = race(*[partial(services.cancel, booking=fresh(b), by=b.user) for b in bookings])

    assert tally(outcomes) == {"ok": 30}
    assert_seats_add_up(slot)
    assert slot.reserved == 0
    assert not Claim.objects.exists()


def test_opposite_reschedules_race_without_errors_and_keep_the_counts(make_offering):
    offering = make_offering(policy_overrides={"max_reschedules": 5})
    first = make_slot(offering=offering, start=at(10), capacity=10)
    second = make_slot(offering=offering, start=at(14), capacity=10)
    on_first = [services.book(user=make_user(), slot_id=first.pk) for _ in range(8)]
    on_second = [services.book(user=make_user(), slot_id=second.pk) for _ in range(8)]
    moves = [(b, second) for b in on_first] + [(b, first) for b in on_second]
    clients = [partial(services.reschedule, booking=fresh(b), slot_id=to.pk, by=b.user) for b, to in moves]

    outcomes = race(*clients)

    counts = tally(outcomes)
    assert set(counts) <= {"ok", "slot_full"}
    assert counts.get("ok", 0) >= 2  # the first move in either direction always fits
    for (booking, to), outcome in zip(moves, outcomes, strict=True):
        origin = booking.slot_id
        booking.refresh_from_db()
        assert booking.slot_id == (to.pk if outcome.label == "ok" else origin)
    moved_away = sum(o.label == "ok" for o in outcomes[:8])
    moved_here = sum(o.label == "ok" for o in outcomes[8:])
    assert_seats_add_up(first, second)
    assert (first.reserved, second.reserved) == (8 - moved_away + moved_here, 8 - moved_here + moved_away)
    assert_claims_held_by_active_bookings()


def test_cancel_and_reschedule_of_the_same_booking_at_once_do_one_or_the_other(make_offering):
    offering = make_offering(policy_overrides={"max_reschedules": 5})
    first = make_slot(offering=offering, start=at(10), capacity=10)
    second = make_slot(offering=offering, start=at(14), capacity=10)
    bookings = [services.book(user=make_user(), slot_id=first.pk) for _ in range(3)]
    clients = []
    for b in bookings:
        clients += [
            partial(services.reschedule, booking=fresh(b), slot_id=second.pk, by=b.user),
            partial(services.cancel, booking=fresh(b), by=b.user),
        ]

    outcomes = race(*clients)

    assert set(tally(outcomes[0::2])) <= {"ok", "not_allowed"}
    assert tally(outcomes[1::2]) == {"ok": 3}
    for b in bookings:
        b.refresh_from_db()
        assert b.status == Status.CANCELLED
    assert_seats_add_up(first, second)
    assert (first.reserved, second.reserved) == (0, 0)
    assert not Claim.objects.exists()


def test_ten_scanners_admit_one_voucher_once(make_offering):
    slot = make_slot(offering=make_offering(), start=timeutil.now() + dt.timedelta(hours=1), capacity=5)
    booking = services.book(user=make_user(), slot_id=slot.pk)
    voucher = services.voucher_for(booking)
    clients = [partial(services.check_in, voucher=voucher, staff=None, merchant=slot.offering.merchant)] * 10

    outcomes = race(*clients)

    assert tally(outcomes) == {"ok": 1, "duplicate": 9}
    booking.refresh_from_db()
    assert booking.status == Status.CHECKED_IN
    first = booking.checked_in_at.isoformat()
    assert {o.refusal.details["checked_in_at"] for o in outcomes if o.refusal is not None} == {first}
    assert booking.events.filter(action="check_in").count() == 1


# --------------------------------------------------------------------------------------------
# The race is real
# --------------------------------------------------------------------------------------------

BUSINESS_LIMIT = 10


def naive_book(*, user, slot_id: int) -> Booking:
    """What invariant 1 forbids: read the count, think, write the count back.

    Each step is correct on its own; under concurrency the reads are stale and updates are lost.
    """
    with transaction.atomic():
        slot = Slot.objects.select_related("offering").get(pk=slot_id)
        if slot.reserved + 1 > BUSINESS_LIMIT:
            raise DomainError("slot_full")
        time.sleep(0.05)  # any real request has some gap between reading and writing
        Slot.objects.filter(pk=slot_id).update(reserved=slot.reserved + 1)
        return Booking.objects.create(
            code=ids.booking_code(),
            user=user,
            merchant_id=slot.offering.merchant_id,
            offering=slot.offering,
            slot=slot,
            status=Status.CONFIRMED,
        )


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite runs every transaction with BEGIN IMMEDIATE, so writers (even naive ones) never overlap",
)
def test_without_the_conditional_update_fifty_clients_oversell(make_offering):
    # The database allows 1000 so that its CHECK constraint stays out of the way: the naive code
    # alone is supposed to keep the business limit of 10, and it cannot.
    slot = make_slot(offering=make_offering(), start=at(10), capacity=1000)
    clients = [partial(naive_book, user=make_user(), slot_id=slot.pk) for _ in range(50)]

    outcomes = race(*clients)

    admitted = tally(outcomes).get("ok", 0)
    slot.refresh_from_db()
    booked = Booking.objects.filter(slot=slot).count()
    assert admitted > BUSINESS_LIMIT or slot.reserved != booked, (admitted, slot.reserved, booked)


# --------------------------------------------------------------------------------------------
# Interleavings, made to happen: one request paused at a chosen point while another runs in its
# own connection. Each of these was a real gap in the engine; they keep it closed.
# --------------------------------------------------------------------------------------------


class Meanwhile:
    """``action`` run to completion in another thread (its own connection) when ``start`` is called.

    If the action needs a lock the paused request holds, ``start`` gives up waiting after
    ``patience`` seconds and the paused request goes on; ``outcome`` then waits for the end.
    """

    def __init__(self, action: Callable[[], Any], patience: float = 2.0) -> None:
        self.action = action
        self.patience = patience
        self.thread: threading.Thread | None = None
        self.result: list[Outcome] = []

    def start(self) -> None:
        def run() -> None:
            try:
                self.result.append(Outcome(value=self.action()))
            except DomainError as exc:
                self.result.append(Outcome(refusal=exc))
            except BaseException as exc:
                self.result.append(Outcome(crash=exc, trace=traceback.format_exc()))
            finally:
                connection.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        self.thread.join(self.patience)

    def outcome(self) -> Outcome:
        assert self.thread is not None, "the paused request never reached the chosen point"
        self.thread.join(60)
        assert self.result, "the other request hung"
        assert self.result[0].crash is None, self.result[0].trace
        return self.result[0]


def meanwhile_after(monkeypatch, step: str, action: Callable[[], Any]) -> Meanwhile:
    """When this thread's request has done ``services.<step>`` (the first time), run ``action``."""
    original = getattr(services, step)
    me = threading.current_thread()
    other = Meanwhile(action)

    def step_then_pause(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if threading.current_thread() is me and other.thread is None:
            other.start()
        return result

    monkeypatch.setattr(services, step, step_then_pause)
    return other


def attempt(action: Callable[[], Any]) -> Outcome:
    try:
        return Outcome(value=action())
    except DomainError as exc:
        return Outcome(refusal=exc)


@pytest.mark.parametrize("capacity", [5, 1], ids=["seats-left", "last-seat"])
def test_a_retry_with_the_same_idempotency_key_gets_the_first_booking_even_while_it_commits(
    monkeypatch, make_offering, capacity
):
    """API.md: "Same key and body again → the same booking". A client that retries (a double tap,
    a timeout) while the first request is still running must not be told ``duplicate`` — nor
    ``slot_full`` when the first attempt took the last seat."""
    slot = make_slot(offering=make_offering(), start=at(10), capacity=capacity)
    user = make_user()
    request = partial(services.book, user=user, slot_id=slot.pk, idempotency_key="tap-1")
    # The retry has read the slot (with a seat left) when the first request runs and commits:
    # the retry's key INSERT (or, where seats come first, its seat UPDATE) then finds it.
    first = meanwhile_after(monkeypatch, "_open_slot", request)

    retry = attempt(request)

    original = first.outcome()
    assert original.label == "ok"
    assert retry.label == "ok", f"the retry was refused: {retry.label}"
    assert retry.value.pk == original.value.pk and retry.value.replayed
    assert_seats_add_up(slot)
    assert slot.reserved == 1


@pytest.mark.parametrize("capacity", [5, 1], ids=["seats-left", "last-seat"])
def test_eight_clients_racing_with_one_idempotency_key_get_one_booking(make_offering, capacity):
    """A client that sends the same request with the same key from several connections at once
    (retries on a flaky network) gets one booking, answered to every one of them: the key's
    unique index makes the others wait for the first and then replay it."""
    slot = make_slot(offering=make_offering(), start=at(10), capacity=capacity)
    user = make_user()

    outcomes = race(*[partial(services.book, user=user, slot_id=slot.pk, idempotency_key="rush-1")] * 8)

    assert tally(outcomes) == {"ok": 8}
    assert len({o.value.pk for o in outcomes}) == 1
    assert sum(not o.value.replayed for o in outcomes) == 1  # one made it, seven were answered with it
    assert Booking.objects.filter(slot=slot).count() == 1
    assert IdempotencyKey.objects.filter(user=user).count() == 1
    assert_seats_add_up(slot)
    assert slot.reserved == 1


def test_one_idempotency_key_raced_for_different_requests_books_one_of_them(make_offering):
    """The same key with different bodies at once: one request is booked, the others are told the
    key belongs to another request, and nothing of theirs is left behind."""
    offering = make_offering()
    slots = [make_slot(offering=offering, start=at(9 + n), capacity=3) for n in range(6)]
    user = make_user()

    outcomes = race(*[partial(services.book, user=user, slot_id=slot.pk, idempotency_key="rush-2") for slot in slots])

    assert tally(outcomes) == {"ok": 1, "invalid": 5}
    assert all("Idempotency-Key" in o.refusal.fields for o in outcomes if o.refusal is not None)
    booked = next(o.value for o in outcomes if o.refusal is None)
    assert not booked.replayed
    assert list(Booking.objects.values_list("pk", flat=True)) == [booked.pk]
    assert_seats_add_up(*slots)
    assert sum(slot.reserved for slot in slots) == 1
    assert_claims_held_by_active_bookings()


@pytest.mark.parametrize(
    "moment",
    [
        "_give_back_seats",  # the cancellation has given the seat back, the promotion is next
        "book",  # the cancellation has booked the first in line, not yet committed
    ],
)
def test_someone_who_left_the_waitlist_is_not_booked_from_it(monkeypatch, make_offering, moment):
    slot = make_slot(offering=make_offering(), start=at(10), capacity=1)
    holder = make_user()
    booking = services.book(user=holder, slot_id=slot.pk)
    first = services.join_waitlist(user=make_user(), slot_id=slot.pk)
    second = services.join_waitlist(user=make_user(), slot_id=slot.pk)
    # While the holder's cancellation is under way, the first in line leaves the queue.
    leave = meanwhile_after(
        monkeypatch, moment, partial(services.leave_waitlist, entry=WaitlistEntry.objects.get(pk=first.pk))
    )

    services.cancel(booking=booking, by=holder)

    left = leave.outcome()
    first.refresh_from_db()
    second.refresh_from_db()
    if left.label == "ok":  # they left: the seat goes to the next in line
        assert (first.status, first.booking_id) == (WaitlistStatus.CANCELLED, None), (
            f"left the waitlist, yet {first.status} with booking {first.booking_id}"
        )
        assert second.status == WaitlistStatus.PROMOTED
    else:  # the promotion came first, and leaving said so
        assert first.status == WaitlistStatus.PROMOTED
    assert_seats_add_up(slot)
    assert_claims_held_by_active_bookings()


def test_a_booking_checked_in_while_it_is_being_rescheduled_is_not_moved(monkeypatch, make_offering):
    # A policy where both are possible at the same time: check-in opens 3 h before, changes close 1 h before.
    offering = make_offering(policy_overrides={"checkin_opens_minutes_before": 180, "cancel_deadline_hours": 1})
    start = timeutil.now() + dt.timedelta(hours=2)
    here = make_slot(offering=offering, start=start, capacity=5)
    there = make_slot(offering=offering, start=start + dt.timedelta(hours=1), capacity=5)
    user = make_user()
    booking = services.book(user=user, slot_id=here.pk)
    # The move has checked the booking may move and taken the new seat; meanwhile the gate scans it.
    scan = meanwhile_after(
        monkeypatch, "_take_seats", partial(services.check_in, voucher=services.voucher_for(booking), staff=None)
    )

    moved = attempt(partial(services.reschedule, booking=fresh(booking), slot_id=there.pk, by=user))

    scanned = scan.outcome()
    booking.refresh_from_db()
    history = list(booking.events.order_by("id").values_list("action", "from_status"))
    assert [action for action, _ in history] in (["book", "reschedule", "check_in"], ["book", "check_in"]), history
    if scanned.label == "ok" and moved.label != "ok":
        assert booking.slot_id == here.pk
    assert booking.status == Status.CHECKED_IN
    assert_seats_add_up(here, there)


def test_joining_the_waitlist_just_as_a_seat_frees_up_does_not_leave_the_seat_empty(monkeypatch, make_offering):
    slot = make_slot(offering=make_offering(), start=at(10), capacity=1)
    holder = make_user()
    booking = services.book(user=holder, slot_id=slot.pk)
    # The joiner has seen the slot full; meanwhile the holder cancels (nobody is waiting yet).
    cancel = meanwhile_after(monkeypatch, "_open_slot", partial(services.cancel, booking=fresh(booking), by=holder))

    joined = attempt(partial(services.join_waitlist, user=make_user(), slot_id=slot.pk))

    assert cancel.outcome().label == "ok"
    slot.refresh_from_db()
    waiting = WaitlistEntry.objects.filter(slot=slot, status=WaitlistStatus.WAITING).count()
    # Told to book directly, or booked at once: never left waiting beside a free seat.
    assert not (waiting and slot.remaining), f"join: {joined.label}; {waiting} waiting, {slot.remaining} seat free"
    assert_seats_add_up(slot)
