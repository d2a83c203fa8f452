"""Every admin page opens, and personal data never shows in full (invariant 6).

One row of every model is made, then each registered model's changelist, add page (where adding
is allowed) and change page are fetched as a superuser.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import factories
import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory
from django.urls import reverse

from yuyue.accounts.models import ApiToken, Ban, EndUser, Person, PointsEntry
from yuyue.booking.models import (
    Attendee,
    Booking,
    BookingEvent,
    Claim,
    IdempotencyKey,
    ResourceClaim,
    Review,
    WaitlistEntry,
)
from yuyue.catalog.models import Offering
from yuyue.core import personal, timeutil
from yuyue.notify.models import InboxMessage, MessageTemplate
from yuyue.scheduling.models import ClosedDate, Slot
from yuyue.tenants.models import Role, Staff

REGISTERED = sorted(admin.site._registry, key=lambda m: m._meta.label)


@dataclass
class World:
    client: Client
    phone: str
    id_number: str
    attendee_phone: str
    attendee_id: str
    person: Person
    slot: Slot
    booking: Booking


@pytest.fixture
def world(db: None) -> World:
    user_model = get_user_model()
    superuser = user_model.objects.create_superuser("root", "root@example.com", None)
    coach_login = user_model.objects.create_user("coach")
    coach_login.groups.add(Group.objects.create(name="coaches"))

    merchant = factories.make_merchant()
    branch = factories.make_branch(merchant=merchant)
    resource = factories.make_resource(merchant=merchant)
    Staff.objects.create(user=coach_login, merchant=merchant, role=Role.COACH, resource=resource)
    offering = factories.make_offering(kind="exhibition", merchant=merchant, branch=branch)
    offering.resources.add(resource)
    schedule = factories.make_schedule(offering=offering, resources=[resource])
    ClosedDate.objects.create(merchant=merchant, offering=offering, date=dt.date(2030, 10, 1), reason="国庆")
    slot = factories.make_slot(offering=offering, resources=[resource], schedule=schedule)

    phone = factories.make_phone()
    id_number = factories.make_id_number()
    end_user = factories.make_user(phone)
    person = factories.make_person(owner=end_user, name="张三丰", id_number=id_number, phone=phone)
    PointsEntry.objects.create(user=end_user, merchant=merchant, delta=10, balance_after=10, reason="welcome")
    Ban.objects.create(
        user=end_user, merchant=merchant, ends_at=timeutil.now() + dt.timedelta(days=30), reason="no-show"
    )
    ApiToken.objects.create(key_hash="a" * 64, user=end_user)

    attendee_phone = factories.make_phone()
    attendee_id = factories.make_id_number(dt.date(1985, 5, 5))
    booking = Booking.objects.create(
        code="ADMINTEST2",
        user=end_user,
        merchant=merchant,
        offering=offering,
        slot=slot,
        status="confirmed",
        answers={"contact": attendee_phone, "note": "靠窗"},
    )
    Slot.objects.filter(pk=slot.pk).update(reserved=1)
    Attendee.objects.create(
        booking=booking,
        person=person,
        name="李四",
        id_number=attendee_id,
        id_hash=personal.id_hash(attendee_id),
        phone=attendee_phone,
        phone_hash=personal.phone_hash(attendee_phone),
    )
    BookingEvent.objects.create(
        booking=booking, action="book", to_status="confirmed", actor="user", actor_user=end_user
    )
    Claim.objects.create(key=f"slot:{slot.pk}:id:{personal.id_hash(attendee_id)}", booking=booking)
    ResourceClaim.objects.create(resource=resource, slot=slot, starts_at=slot.start, ends_at=slot.end)
    WaitlistEntry.objects.create(slot=slot, user=end_user, active_key=f"{slot.pk}:{end_user.pk}")
    IdempotencyKey.objects.create(user=end_user, key="k1", request_hash="b" * 64, booking=booking)
    Review.objects.create(booking=booking, user=end_user, offering=offering, resource=resource, rating=5, text="好")
    InboxMessage.objects.create(
        user=end_user,
        merchant=merchant,
        booking=booking,
        event="confirmed",
        title="预约成功",
        body="您已预约",
        key="k1",
    )
    MessageTemplate.objects.create(merchant=merchant, event="confirmed", title="预约成功", body="您已预约 {offering}")
    from yuyue.memberships.services import ProductSpec, grant_card, save_product

    card_product = save_product(merchant=merchant, spec=ProductSpec(name="10次卡", credits=10, valid_days=180))
    grant_card(product=card_product, user=end_user, by=superuser)
    from yuyue.payments.models import Payment, PaymentNotice, Refund, SandboxTrade

    payment = Payment.objects.create(
        booking=booking, merchant=merchant, provider="sandbox", channel="cashier", out_trade_no="P1", amount_fen=100
    )
    Refund.objects.create(payment=payment, booking=booking, merchant=merchant, out_refund_no="R1", refund_fen=50)
    PaymentNotice.objects.create(provider="sandbox", merchant=merchant, payment=payment, outcome="applied")
    SandboxTrade.objects.create(kind="payment", out_trade_no="P1", amount_fen=100, state="paid", provider_no="S1")

    client = Client()
    client.force_login(superuser)
    return World(client, phone, id_number, attendee_phone, attendee_id, person, slot, booking)


def _url(model: Any, view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", REGISTERED, ids=[m._meta.label_lower for m in REGISTERED])
def test_every_admin_page_opens(world: World, model: Any) -> None:
    model_admin = admin.site._registry[model]
    obj = model.objects.order_by("pk").first()
    assert obj is not None, f"the fixture made no {model._meta.label}"

    assert world.client.get(_url(model, "changelist")).status_code == 200
    assert world.client.get(_url(model, "changelist"), {"q": "1"}).status_code == 200
    assert world.client.get(_url(model, "change", obj.pk)).status_code == 200
    request = RequestFactory().get("/")
    request.user = get_user_model().objects.get(username="root")
    if model_admin.has_add_permission(request):
        assert world.client.get(_url(model, "add")).status_code == 200


PERSONAL_PAGES = [
    (EndUser, "changelist"),
    (EndUser, "change"),
    (Person, "changelist"),
    (Person, "change"),
    (Attendee, "changelist"),
    (Attendee, "change"),
    (Booking, "changelist"),
    (Booking, "change"),
]


@pytest.mark.parametrize(("model", "view"), PERSONAL_PAGES, ids=[f"{m.__name__}-{v}" for m, v in PERSONAL_PAGES])
def test_pages_never_show_phones_or_ids_in_full(world: World, model: Any, view: str) -> None:
    args = [model.objects.order_by("pk").first().pk] if view == "change" else []
    html = world.client.get(_url(model, view, *args)).content.decode()
    for secret in (world.phone, world.id_number, world.attendee_phone, world.attendee_id):
        assert secret not in html
        assert personal.id_hash(secret) not in html
        assert personal.phone_hash(secret) not in html


def test_person_changelist_shows_the_masked_id(world: World) -> None:
    html = world.client.get(_url(Person, "changelist")).content.decode()
    assert world.id_number not in html
    assert personal.mask_id(world.id_number) in html
    assert personal.mask_phone(world.phone) in html


@pytest.mark.parametrize(
    ("model", "term"),
    [
        (EndUser, "phone"),
        (Person, "phone"),
        (Person, "id_number"),
        (Attendee, "attendee_phone"),
        (Attendee, "attendee_id"),
        (Booking, "attendee_id"),
        (Booking, "phone"),
    ],
)
def test_search_by_full_phone_or_id_uses_the_blind_index(world: World, model: Any, term: str) -> None:
    value = getattr(world, term)
    if "phone" in term:
        value = f"+86 {value[:3]} {value[3:7]} {value[7:]}"  # typed the way people write it
    found = world.client.get(_url(model, "changelist"), {"q": value}).context["cl"].result_count
    assert found == 1
    nothing = world.client.get(_url(model, "changelist"), {"q": factories.make_phone()}).context["cl"].result_count
    assert nothing == 0


def test_booking_admin_cannot_add_change_or_delete(world: World) -> None:
    url = _url(Booking, "change", world.booking.pk)
    response = world.client.post(url, {"status": "cancelled", "seats": 5})
    assert response.status_code == 403
    world.booking.refresh_from_db()
    assert (world.booking.status, world.booking.seats) == ("confirmed", 1)
    assert world.client.get(_url(Booking, "add")).status_code == 403
    assert world.client.post(_url(Booking, "delete", world.booking.pk), {"post": "yes"}).status_code == 403
    for model in (Claim, ResourceClaim, BookingEvent):
        assert world.client.get(_url(model, "add")).status_code == 403


def _slot_form(slot: Slot, **changes: Any) -> dict[str, Any]:
    """The editable fields of a booked slot's change form."""
    return {"price_fen": "", "status": slot.status, "capacity": slot.capacity, **changes}


def test_slot_admin_never_writes_reserved(world: World) -> None:
    slot = world.slot  # booked, so its time, offering and resources are read-only too
    url = _url(Slot, "change", slot.pk)
    page = world.client.get(url).content.decode()
    assert 'name="reserved"' not in page
    assert 'name="start_0"' not in page

    # A booking takes a seat while the page is open; saving it must not put the old count back.
    Slot.objects.filter(pk=slot.pk).update(reserved=4)
    response = world.client.post(url, _slot_form(slot, capacity=8, reserved=0))
    assert response.status_code == 302, response.context["adminform"].form.errors
    slot.refresh_from_db()
    assert (slot.capacity, slot.reserved) == (8, 4)

    response = world.client.post(url, _slot_form(slot, capacity=3))
    assert response.status_code == 200
    assert "capacity" in response.context["adminform"].form.errors
    slot.refresh_from_db()
    assert slot.capacity == 8


def _offering_form(world: World, **changes: Any) -> dict[str, Any]:
    offering = world.booking.offering
    data = {
        "merchant": offering.merchant_id,
        "branch": offering.branch_id,
        "kind": offering.kind,
        "title": offering.title,
        "description": "",
        "price_fen": 0,
        "limit_group": "",
        "resources": [r.pk for r in offering.resources.all()],
        "form_fields": "[]",
        "policy_overrides": "{}",
        "is_active": "on",
    }
    data.update(changes)
    return data


def test_offering_json_is_checked_by_the_model(world: World) -> None:
    offering = world.booking.offering
    url = _url(Offering, "change", offering.pk)

    response = world.client.post(url, _offering_form(world, policy_overrides='{"max_party_size": 0}'))
    assert response.status_code == 200
    assert "policy_overrides" in response.context["adminform"].form.errors

    response = world.client.post(url, _offering_form(world, policy_overrides='{"no_such_policy": 1}'))
    assert "policy_overrides" in response.context["adminform"].form.errors

    response = world.client.post(url, _offering_form(world, form_fields='[{"key": "Bad Key", "label": "x"}]'))
    assert "form_fields" in response.context["adminform"].form.errors

    response = world.client.post(url, _offering_form(world, policy_overrides="[1, 2]"))
    assert "policy_overrides" in response.context["adminform"].form.errors

    response = world.client.post(url, _offering_form(world, kind=""))
    assert "kind" in response.context["adminform"].form.errors

    response = world.client.post(
        url,
        _offering_form(
            world,
            policy_overrides='{"max_party_size": 4}',
            form_fields='[{"key": "note", "label": "备注"}]',
        ),
    )
    assert response.status_code == 302
    offering = Offering.objects.get(pk=offering.pk)
    assert offering.policy.max_party_size == 4
    assert offering.form_fields == [{"key": "note", "label": "备注"}]
