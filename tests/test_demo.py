"""The demo loader: idempotent, every kind present, its history made by the engine, invariants intact.

Loading is the slow part, so the demo is loaded once for every module that reads it (conftest's
``demo_db``, at a small scale) inside a transaction that is rolled back after them; this module
loads it a second time on top, to prove idempotence, in a savepoint undone when the module ends.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.db import transaction
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from factories import DEMO_SCALE

from yuyue import demo
from yuyue.accounts.models import Ban, EndUser, Person, Relation
from yuyue.booking.models import ACTIVE_STATUSES, Booking, Claim, ResourceClaim, Review, Status
from yuyue.catalog.kinds import KINDS
from yuyue.catalog.models import Offering
from yuyue.core import personal, timeutil
from yuyue.scheduling.models import Slot
from yuyue.tenants.models import Merchant, Staff

pytestmark = pytest.mark.django_db

SCALE = DEMO_SCALE  # the size conftest.demo_db loads


def _counts() -> dict[str, int]:
    return {
        "merchants": Merchant.objects.count(),
        "offerings": Offering.objects.count(),
        "slots": Slot.objects.count(),
        "bookings": Booking.objects.count(),
        "reviews": Review.objects.count(),
        "end users": EndUser.objects.count(),
        "people": Person.objects.count(),
        "staff users": get_user_model().objects.count(),
        "staff": Staff.objects.count(),
    }


@pytest.fixture(scope="module")
def loaded(demo_db: Any, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    with django_db_blocker.unblock():
        after_first = _counts()  # other demo modules' tests left nothing: each rolled back its own
        savepoint = transaction.savepoint()
        second = demo.load_demo(scale=SCALE)
        yield {"first": demo_db, "second": second, "after_first": after_first, "after_second": _counts()}
        transaction.savepoint_rollback(savepoint)


def test_loading_twice_adds_nothing_the_second_time(loaded):
    assert loaded["after_first"] == loaded["after_second"]
    assert loaded["first"] == loaded["second"]
    assert loaded["after_first"]["bookings"] > 0


def test_every_kind_has_a_merchant_with_offerings_and_future_slots(loaded):
    now = timeutil.now()
    assert set(demo.SLUGS) == set(KINDS)
    for kind, slug in demo.SLUGS.items():
        merchant = Merchant.objects.get(slug=slug)
        offerings = Offering.objects.filter(merchant=merchant, kind=kind, is_active=True)
        assert offerings.exists(), kind
        assert Slot.objects.filter(offering__in=offerings, start__gt=now).exists(), kind
        assert Slot.objects.filter(offering__in=offerings, start__gt=now + dt.timedelta(days=20)).exists(), kind


def test_history_has_every_ending_and_reviews(loaded):
    past = Booking.objects.filter(slot__end__lt=timeutil.now())
    statuses = set(past.values_list("status", flat=True))
    assert {Status.COMPLETED, Status.CANCELLED, Status.NO_SHOW} <= statuses
    assert past.filter(status=Status.COMPLETED).count() > past.exclude(status=Status.COMPLETED).count()
    assert Review.objects.exists()
    assert not Review.objects.filter(Q(rating__lt=1) | Q(rating__gt=5)).exists()
    assert Booking.objects.filter(slot__start__gt=timeutil.now()).exists(), "upcoming bookings"
    # Every booking was made before its slot started, at a time the engine accepted.
    assert not Booking.objects.filter(created_at__gte=F("slot__start")).exists()
    # Bookings of every kind, made through the engine (each has its "book" event).
    assert set(Booking.objects.values_list("offering__kind", flat=True)) == set(KINDS)
    assert not Booking.objects.exclude(events__action="book").exists()


def test_seats_claims_and_resources_are_consistent(loaded):
    held = Coalesce(Sum("bookings__seats", filter=Q(bookings__status__in=ACTIVE_STATUSES)), 0)
    wrong = Slot.objects.annotate(held=held).exclude(reserved=F("held"))
    assert not wrong.exists(), list(wrong.values("id", "reserved", "held")[:5])
    assert not Slot.objects.filter(reserved__gt=F("capacity")).exists()
    assert not Claim.objects.exclude(booking__status__in=ACTIVE_STATUSES).exists()
    assert not Booking.objects.filter(status__in=ACTIVE_STATUSES, claims__isnull=True).exists()

    # No resource (coach, doctor, vehicle, driver) in two overlapping slots that have bookings.
    busy: dict[int, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
    for claim in ResourceClaim.objects.all():
        busy[claim.resource_id].append((claim.starts_at, claim.ends_at))
    booked = Slot.objects.filter(reserved__gt=0)
    for resource_id, start, end in booked.values_list("resources", "start", "end"):
        if resource_id is not None:
            assert (start, end) in busy[resource_id]
    for periods in busy.values():
        periods.sort()
        for (_, end), (start, _) in itertools.pairwise(periods):
            assert start >= end


def test_customers_have_real_names_and_families(loaded):
    me = EndUser.objects.get(phone_hash=personal.phone_hash(demo.DEMO_PHONE))
    people = {p.relation: p for p in me.people.all()}
    assert people[Relation.SELF].id_number
    child = people[Relation.CHILD]
    assert child.is_minor_on(timeutil.today())
    assert child.guardian_id == people[Relation.SELF].pk
    assert me.bookings.filter(slot__start__gt=timeutil.now()).exists()
    assert me.bookings.filter(status=Status.COMPLETED).exists()
    for person in Person.objects.filter(relation=Relation.SELF):
        assert personal.normalize_id_number(person.id_number) == person.id_number
        assert dt.date(1960, 1, 1) <= person.birth_date <= dt.date(2004, 12, 31)
    # No-shows ban one customer at the clinic on purpose, not most of them.
    assert Ban.objects.count() <= 2


def test_demo_logins_work(loaded, client):
    logins = loaded["first"]
    staff_rows = [row for row in logins if row[0] != "user phone"]
    assert logins[-1][:2] == ("user phone", demo.DEMO_PHONE)
    usernames = [row[0] for row in staff_rows]
    assert len(usernames) == len(set(usernames))
    for kind in demo.KINDS:
        assert f"demo-{kind}-owner" in usernames
        assert f"demo-{kind}-desk" in usernames
    assert {"admin", "demo-course-coach1", "demo-clinic-doctor1", "demo-vehicle-driver1"} <= set(usernames)

    # Hashing is deliberately slow: check a few passwords, and that all accounts share that hash.
    for username in ("admin", "demo-course-owner", "demo-clinic-doctor1"):
        assert authenticate(username=username, password=demo.DEMO_PASSWORD) is not None, username
    users = get_user_model().objects.filter(username__in=usernames)
    assert users.count() == len(usernames)
    assert len(set(users.values_list("password", flat=True))) == 1
    assert all(users.values_list("is_staff", flat=True))

    coach = Staff.objects.select_related("resource").get(user__username="demo-course-coach1")
    assert coach.resource is not None and coach.resource.type == "coach"

    owner = get_user_model().objects.get(username="demo-course-owner")
    assert not owner.is_superuser and owner.has_perm("booking.view_booking")
    client.force_login(owner)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/booking/booking/").status_code == 200
