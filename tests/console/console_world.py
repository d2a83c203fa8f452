"""The world console tests run in: staff of every role, and a merchant (Shop) with one of everything."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from factories import (
    STAFF_PASSWORD,
    console_sign_in,
    make_branch,
    make_merchant,
    make_offering,
    make_person,
    make_resource,
    make_slot,
    make_staff,
    make_user,
)

from yuyue.accounts import services as accounts
from yuyue.accounts.models import Ban, EndUser
from yuyue.booking import services as engine
from yuyue.booking.models import Booking, Review, Status
from yuyue.catalog.models import Offering, Resource
from yuyue.console.models import AuditEntry, CustomerNote
from yuyue.core import timeutil
from yuyue.scheduling.models import Slot
from yuyue.tenants.models import Branch, Merchant

PASSWORD = STAFF_PASSWORD
sign_in = console_sign_in


@dataclass
class Shop:
    """One merchant with something of everything the console shows."""

    merchant: Merchant
    branch: Branch
    coach: Resource
    course: Offering  # count-based, with a coach
    exhibition: Offering  # real-name visitors
    approval: Offering  # needs approval
    slot: Slot  # course slot, tomorrow, with the coach
    later_slot: Slot
    past_slot: Slot  # started an hour ago (no-show possible)
    exhibition_slot: Slot
    approval_slot: Slot
    customer: EndUser
    booking: Booking  # confirmed course booking on ``slot``
    past_booking: Booking  # checked in, reviewed
    absent: Booking  # confirmed on the slot that has started: can be marked no-show
    visit: Booking  # exhibition booking with two named visitors
    pending: Booking  # awaiting approval
    review: Review
    ban: Ban
    note: CustomerNote
    audit: AuditEntry
    staff: dict[str, User] = field(default_factory=dict)


def build_shop(name: str) -> Shop:
    merchant = make_merchant(name=name)
    branch = make_branch(merchant=merchant)
    coach = make_resource(merchant=merchant, branch=branch)
    course = make_offering(kind="course", merchant=merchant, branch=branch)
    course.resources.add(coach)
    exhibition = make_offering(kind="exhibition", merchant=merchant, branch=branch, price_fen=3000)
    approval = make_offering(
        kind="activity", merchant=merchant, branch=branch, policy_overrides={"requires_approval": True}
    )
    tomorrow = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=1), dt.time(10, 0))
    slot = make_slot(offering=course, start=tomorrow, resources=[coach])
    later_slot = make_slot(offering=course, start=tomorrow + dt.timedelta(days=1), resources=[coach])
    past_start = timeutil.now() - dt.timedelta(hours=1)
    past_slot = make_slot(offering=course, start=past_start, minutes=180, resources=[coach])
    exhibition_slot = make_slot(offering=exhibition, start=tomorrow + dt.timedelta(hours=3))
    approval_slot = make_slot(offering=approval, start=tomorrow + dt.timedelta(hours=5))

    customer = make_user()
    booking = engine.book(user=customer, slot_id=slot.pk)
    past_booking = engine.book(user=customer, slot_id=past_slot.pk, now=past_start - dt.timedelta(hours=2))
    visitors = [make_person(owner=customer, phone="13912345678"), make_person(owner=customer)]
    visit = engine.book(user=customer, slot_id=exhibition_slot.pk, person_ids=[p.pk for p in visitors])
    engine.confirm(booking=visit)
    pending = engine.book(
        user=make_user(), slot_id=approval_slot.pk, answers={"name": "报名人", "phone": "13812345678"}
    )
    absent = engine.book(user=make_user(), slot_id=past_slot.pk, now=past_start - dt.timedelta(hours=2))
    # A checked-in booking to review: check the past booking in while its slot is on.
    engine.check_in(voucher=engine.voucher_for(past_booking), staff=None)
    past_booking.refresh_from_db()
    review = engine.add_review(booking=past_booking, user=customer, rating=4, text="不错")
    ban = accounts.ban(
        user=customer, merchant=merchant, until=timeutil.now() + dt.timedelta(days=3), reason="测试", by=None
    )
    owner = make_staff(merchant, "owner")
    note = CustomerNote.objects.create(merchant=merchant, user=customer, author=owner, text="常客")
    audit = AuditEntry.objects.create(merchant=merchant, staff_user=owner, action="booking.cancel")
    shop = Shop(
        merchant=merchant,
        branch=branch,
        coach=coach,
        course=course,
        exhibition=exhibition,
        approval=approval,
        slot=slot,
        later_slot=later_slot,
        past_slot=past_slot,
        exhibition_slot=exhibition_slot,
        approval_slot=approval_slot,
        customer=customer,
        booking=booking,
        past_booking=past_booking,
        absent=absent,
        visit=visit,
        pending=pending,
        review=review,
        ban=ban,
        note=note,
        audit=audit,
    )
    shop.staff["owner"] = owner
    for role in ("manager", "staff", "doctor", "driver"):
        shop.staff[role] = make_staff(merchant, role)
    shop.staff["coach"] = make_staff(merchant, "coach", resource=coach)
    assert pending.status == Status.PENDING_APPROVAL
    return shop
