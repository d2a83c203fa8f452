"""The invariants after any sequence of actions: a Hypothesis state machine over a small world.

Hypothesis books, cancels, reschedules, queues, pays, lets holds expire, checks in and marks
no-shows in random order; refusals (DomainError) are part of the game, anything else fails. After
every step the database itself is asked whether the invariants of DESIGN.md still hold.

Each example builds a fresh merchant and checks only its rows, so examples need no flush between
them; the test runs with real commits (``transaction=True``) like production.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db.models import F, Sum
from factories import (
    make_branch,
    make_id_number,
    make_merchant,
    make_offering,
    make_person,
    make_resource,
    make_slot,
    make_user,
)
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from yuyue.booking import services
from yuyue.booking.models import (
    ACTIVE_STATUSES,
    Attendee,
    Booking,
    BookingEvent,
    Claim,
    ResourceClaim,
    WaitlistEntry,
    WaitlistStatus,
)
from yuyue.catalog.models import Offering
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.scheduling.models import Slot
from yuyue.tenants.models import Merchant

# Where the slots are: (offering name, day offset, start, minutes, uses the coach).
SLOTS = [
    ("scenic", 0, dt.time(9), 60, False),
    ("scenic", 0, dt.time(13), 60, False),
    ("scenic", 1, dt.time(9), 60, False),
    ("course_north", 0, dt.time(10), 60, True),
    ("course_north", 0, dt.time(10, 30), 60, True),  # overlaps the one before: same coach
    ("course_north", 0, dt.time(14), 60, True),
    ("course_south", 0, dt.time(10, 15), 60, True),  # the same coach, another branch
    ("clinic_a", 0, dt.time(9), 30, False),
    ("clinic_a", 1, dt.time(9), 30, False),
    ("clinic_b", 0, dt.time(10), 30, False),  # same department (limit group) as clinic_a
]
PEOPLE_PER_USER = 3
USERS = 3

index = st.integers(min_value=0, max_value=1000)
user_index = st.integers(min_value=0, max_value=USERS - 1)
who = st.lists(st.integers(min_value=0, max_value=PEOPLE_PER_USER - 1), min_size=1, max_size=3, unique=True)
party_size = st.integers(min_value=1, max_value=3)


@dataclass
class World:
    merchant: Merchant
    offerings: dict[int, Offering]
    slots: list[Slot]
    users: list[Any]
    people: list[list[Any]]


def _build_world(per_day: int, capacities: list[int]) -> World:
    merchant = make_merchant()
    north, south = make_branch(merchant=merchant), make_branch(merchant=merchant)
    coach = make_resource(merchant=merchant, type="coach")
    offerings = {
        "scenic": make_offering(
            kind="scenic",
            merchant=merchant,
            policy_overrides={"per_person_per_day": per_day, "max_party_size": 3, "max_reschedules": 3},
        ),
        "course_north": make_offering(
            kind="course", branch=north, policy_overrides={"max_party_size": 2, "max_reschedules": 3}
        ),
        "course_south": make_offering(kind="course", branch=south, policy_overrides={"max_party_size": 2}),
        "clinic_a": make_offering(
            kind="clinic", merchant=merchant, limit_group="内科", price_fen=500, policy_overrides={"max_reschedules": 3}
        ),
        "clinic_b": make_offering(kind="clinic", merchant=merchant, limit_group="内科", price_fen=500),
    }
    day = timeutil.today() + dt.timedelta(days=2)
    slots = [
        make_slot(
            offering=offerings[name],
            start=timeutil.local_datetime(day + dt.timedelta(days=offset), start),
            minutes=minutes,
            capacity=capacity,
            resources=[coach] if coached else [],
        )
        for (name, offset, start, minutes, coached), capacity in zip(SLOTS, capacities, strict=True)
    ]
    # Seven resident IDs among nine entries: some people are in two accounts (a family's
    # grandmother in both children's phones), so limits must follow the ID, not the account.
    ids = [make_id_number() for _ in range(7)]
    numbers = [[ids[0], ids[1], ids[2]], [ids[0], ids[3], ids[4]], [ids[1], ids[5], ids[6]]]
    users = [make_user() for _ in range(USERS)]
    people = [[make_person(owner=u, id_number=n) for n in row] for u, row in zip(users, numbers, strict=True)]
    return World(merchant, {o.pk: o for o in offerings.values()}, slots, users, people)


def has_bookings(machine: BookingWorld) -> bool:
    return machine.booked


def has_waitlist(machine: BookingWorld) -> bool:
    return machine.queued


class BookingWorld(RuleBasedStateMachine):
    world: World
    # Set once something exists to act on, so that steps are not spent on an empty world.
    booked = False
    queued = False

    # --- setting up ----------------------------------------------------------------------

    @initialize(
        per_day=st.sampled_from([1, 2]),
        capacities=st.lists(st.integers(min_value=1, max_value=3), min_size=len(SLOTS), max_size=len(SLOTS)),
        rush=st.lists(st.tuples(user_index, index, who, party_size), max_size=8),
    )
    def build(self, per_day: int, capacities: list[int], rush: list[tuple[int, int, list[int], int]]) -> None:
        """The world, and the bookings of the first minutes after release, so steps have things to act on."""
        self.world = _build_world(per_day, capacities)
        for request in rush:
            self.book(*request)

    def attempt(self, action: Callable[..., Any], **kwargs: Any) -> None:
        """Run one service call: a refusal is an answer, any other exception a bug."""
        try:
            result = action(**kwargs)
            event(f"{action.__name__}: ok")
            self.booked = self.booked or isinstance(result, Booking)
            self.queued = self.queued or isinstance(result, WaitlistEntry)
        except DomainError as exc:
            event(f"{action.__name__}: {exc.code}")

    def booking(self, i: int) -> Booking | None:
        """One of the world's active bookings (what happens to ended ones is tested elsewhere)."""
        active = Booking.objects.filter(merchant=self.world.merchant, status__in=ACTIVE_STATUSES)
        pks = list(active.order_by("pk").values_list("pk", flat=True))
        if not pks:
            return None
        return Booking.objects.select_related("slot", "offering", "user").get(pk=pks[i % len(pks)])

    def party(self, slot: Slot, u: int, people: list[int], size: int) -> dict[str, Any]:
        """Who comes, within the offering's party size (too large a party is tested elsewhere)."""
        policy = self.world.offerings[slot.offering_id].policy
        if policy.party == "people":
            return {"person_ids": [self.world.people[u][p].pk for p in people[: policy.max_party_size]]}
        return {"party_size": min(size, policy.max_party_size)}

    # --- rules ---------------------------------------------------------------------------

    @rule(u=user_index, s=index, people=who, size=party_size)
    def book(self, u: int, s: int, people: list[int], size: int) -> None:
        slot = self.world.slots[s % len(self.world.slots)]
        self.attempt(services.book, user=self.world.users[u], slot_id=slot.pk, **self.party(slot, u, people, size))

    @rule(u=user_index, s=index, people=who, size=party_size)
    @precondition(has_bookings)
    def join_waitlist(self, u: int, s: int, people: list[int], size: int) -> None:
        full = [x for x in self.world.slots if Slot.objects.filter(pk=x.pk, reserved=F("capacity")).exists()]
        if not full:
            return
        slot = full[s % len(full)]
        self.attempt(
            services.join_waitlist, user=self.world.users[u], slot_id=slot.pk, **self.party(slot, u, people, size)
        )

    @rule(i=index)
    @precondition(has_waitlist)
    def leave_waitlist(self, i: int) -> None:
        entries = list(WaitlistEntry.objects.filter(slot__offering__merchant=self.world.merchant).order_by("pk"))
        if entries:
            self.attempt(services.leave_waitlist, entry=entries[i % len(entries)])

    @rule(i=index)
    @precondition(has_bookings)
    def cancel(self, i: int) -> None:
        if booking := self.booking(i):
            self.attempt(services.cancel, booking=booking, by=booking.user)

    @rule(i=index, s=index)
    @precondition(has_bookings)
    def reschedule(self, i: int, s: int) -> None:
        if booking := self.booking(i):
            others = [x for x in self.world.slots if x.offering_id == booking.offering_id and x.pk != booking.slot_id]
            if not others:
                return
            target = others[s % len(others)]
            self.attempt(services.reschedule, booking=booking, slot_id=target.pk, by=booking.user)

    @rule(i=index)
    @precondition(has_bookings)
    def pay(self, i: int) -> None:
        if booking := self.booking(i):
            self.attempt(services.confirm, booking=booking)

    @rule(i=index)
    @precondition(has_bookings)
    def let_the_hold_expire(self, i: int) -> None:
        if booking := self.booking(i):
            self.attempt(services.expire_hold, booking=booking)

    @rule(i=index)
    @precondition(has_bookings)
    def check_in(self, i: int) -> None:
        if booking := self.booking(i):
            self.attempt(
                services.check_in,
                voucher=services.voucher_for(booking),
                staff=None,
                now=booking.slot.start - dt.timedelta(minutes=10),
            )

    @rule(i=index)
    @precondition(has_bookings)
    def no_show(self, i: int) -> None:
        if booking := self.booking(i):
            self.attempt(
                services.mark_no_show, booking=booking, staff=None, now=booking.slot.end + dt.timedelta(minutes=1)
            )

    # --- invariants, read from the database ------------------------------------------------

    def active_bookings(self):
        return Booking.objects.filter(merchant=self.world.merchant, status__in=ACTIVE_STATUSES)

    @invariant()
    def slots_hold_exactly_the_seats_of_their_active_bookings(self) -> None:
        held = dict(
            self.active_bookings().order_by().values("slot_id").annotate(n=Sum("seats")).values_list("slot_id", "n")
        )
        for pk, reserved, capacity in Slot.objects.filter(offering__merchant=self.world.merchant).values_list(
            "pk", "reserved", "capacity"
        ):
            assert 0 <= reserved <= capacity, f"slot {pk}: {reserved}/{capacity}"
            assert reserved == held.get(pk, 0), f"slot {pk}: reserved {reserved}, active seats {held.get(pk, 0)}"

    @invariant()
    def nobody_holds_two_places_in_one_slot_nor_breaks_the_daily_limit(self) -> None:
        rows = Attendee.objects.filter(
            booking__merchant=self.world.merchant, booking__status__in=ACTIVE_STATUSES
        ).values_list("booking_id", "booking__slot_id", "booking__offering_id", "booking__slot__start", "id_hash")
        per_slot: Counter[tuple[int, str]] = Counter()
        per_day: dict[tuple[Any, ...], set[int]] = defaultdict(set)
        for booking_id, slot_id, offering_id, start, id_hash in rows:
            assert id_hash, "real-name attendees carry the blind index of their ID"
            per_slot[slot_id, id_hash] += 1
            policy = self.world.offerings[offering_id].policy
            if policy.per_person_per_day:
                per_day[self.limit_scope(offering_id), timeutil.local_date(start), id_hash].add(booking_id)
        assert all(n == 1 for n in per_slot.values()), per_slot
        for (scope, day, _id), bookings in per_day.items():
            limit = next(
                o.policy.per_person_per_day for o in self.world.offerings.values() if self.limit_scope(o.pk) == scope
            )
            assert len(bookings) <= limit, f"{len(bookings)} bookings on {day} in {scope}, limit {limit}"
        by_account = Counter(
            self.active_bookings().filter(attendees__isnull=True).values_list("slot_id", "user_id").order_by()
        )
        assert all(n == 1 for n in by_account.values()), by_account

    def limit_scope(self, offering_id: int) -> tuple[Any, ...]:
        offering = self.world.offerings[offering_id]
        scope = offering.policy.limit_scope
        if scope == "merchant":
            return ("merchant",)
        if scope == "group" and offering.limit_group:
            return ("group", offering.limit_group)
        return ("offering", offering.pk)

    @invariant()
    def claims_belong_to_active_bookings_on_their_current_slot(self) -> None:
        claims = Claim.objects.filter(booking__merchant=self.world.merchant)
        assert not claims.exclude(booking__status__in=ACTIVE_STATUSES).exists()
        slot_claims: Counter[int] = Counter()
        for booking_id, key, slot_id in claims.filter(key__startswith="slot:").values_list(
            "booking_id", "key", "booking__slot_id"
        ):
            assert key.startswith(f"slot:{slot_id}:"), f"claim {key} left behind by booking {booking_id}"
            slot_claims[booking_id] += 1
        for booking in self.active_bookings().prefetch_related("attendees"):
            assert slot_claims[booking.pk] == max(len(booking.attendees.all()), 1), booking.pk

    @invariant()
    def a_resource_is_in_one_place_at_a_time(self) -> None:
        claims = list(ResourceClaim.objects.filter(resource__merchant=self.world.merchant))
        for a, b in itertools.combinations(claims, 2):
            if a.resource_id == b.resource_id and a.slot_id != b.slot_id:
                assert not (a.starts_at < b.ends_at and b.starts_at < a.ends_at), f"overlap: {a.slot_id}, {b.slot_id}"
        slots = {
            s.pk: s for s in Slot.objects.filter(offering__merchant=self.world.merchant).prefetch_related("resources")
        }
        claimed = {(c.resource_id, c.slot_id) for c in claims}
        for slot in slots.values():
            for resource in slot.resources.all():
                # Busy exactly while the slot has bookings: never double-booked, never blocked for nothing.
                assert ((resource.pk, slot.pk) in claimed) == (slot.reserved > 0), (resource.pk, slot.pk)

    @invariant()
    def waitlist_keys_mark_exactly_the_waiting_entries(self) -> None:
        for pk, status, key, booking_id in WaitlistEntry.objects.filter(
            slot__offering__merchant=self.world.merchant
        ).values_list("pk", "status", "active_key", "booking_id"):
            assert (key is not None) == (status == WaitlistStatus.WAITING), (pk, status, key)
            if status == WaitlistStatus.PROMOTED:
                assert booking_id is not None, pk

    @invariant()
    def every_booking_status_is_the_last_recorded_transition(self) -> None:
        last: dict[int, str] = {}
        for booking_id, to_status in (
            BookingEvent.objects.filter(booking__merchant=self.world.merchant)
            .order_by("booking_id", "id")
            .values_list("booking_id", "to_status")
        ):
            last[booking_id] = to_status
        for pk, status in Booking.objects.filter(merchant=self.world.merchant).values_list("pk", "status"):
            assert last.get(pk) == status, (pk, status, last.get(pk))


@pytest.mark.django_db(transaction=True)
def test_booking_invariants_hold_after_any_sequence_of_actions():
    run_state_machine_as_test(
        BookingWorld,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
