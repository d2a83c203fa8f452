"""Points and cards through every front door: the JSON API, the H5 pages and the merchant console."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from factories import console_sign_in, make_merchant, make_offering, make_slot, make_staff, make_user

from yuyue.accounts.models import PointsEntry
from yuyue.accounts.services import change_points, issue_token, points_at
from yuyue.booking import services as engine
from yuyue.booking.models import Booking, PaidBy, Status
from yuyue.console.models import AuditEntry
from yuyue.h5.auth import SESSION_KEY
from yuyue.memberships.models import Card, CardProduct
from yuyue.memberships.services import ProductSpec, grant_card, save_product
from yuyue.tenants.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def studio() -> Any:
    merchant = make_merchant(name="一念瑜伽")
    yoga = make_offering(kind="course", merchant=merchant, title="流瑜伽", price_fen=8000)
    product = save_product(
        merchant=merchant, spec=ProductSpec(name="10次卡", credits=10, valid_days=180, price_fen=100000)
    )
    return merchant, yoga, product


def api_client(user: Any) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {issue_token(user=user)}")


def h5_client(user: Any) -> Client:
    client = Client()
    session = client.session
    session[SESSION_KEY] = user.pk
    session.save()
    return client


def desk_client(merchant: Any, role: str = Role.OWNER) -> tuple[Client, User]:
    staff = make_staff(merchant, role)
    return console_sign_in(Client(), staff, merchant), staff


# --- JSON API ---------------------------------------------------------------------------------------


def test_api_books_with_a_card_and_shows_how_it_was_paid(studio):
    _merchant, yoga, product = studio
    user = make_user()
    card = grant_card(product=product, user=user, by=None)
    client = api_client(user)
    body = {"slot_id": make_slot(offering=yoga).pk, "pay_with": "credit", "card_id": card.pk}
    response = client.post("/api/v1/bookings", body, content_type="application/json")
    assert response.status_code == 201, response.json()
    booking = response.json()
    assert (booking["status"], booking["paid_by"], booking["card_id"], booking["amount_fen"]) == (
        "confirmed",
        "credit",
        card.pk,
        0,
    )
    money = client.post("/api/v1/bookings", {"slot_id": make_slot(offering=yoga).pk}, content_type="application/json")
    assert (money.json()["status"], money.json()["paid_by"]) == ("pending_payment", "money")


def test_api_refuses_a_card_without_classes_with_payment_required(studio):
    _merchant, yoga, _product = studio
    client = api_client(make_user())
    body = {"slot_id": make_slot(offering=yoga).pk, "pay_with": "credit"}
    response = client.post("/api/v1/bookings", body, content_type="application/json")
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "payment_required"
    wrong = client.post("/api/v1/bookings", {**body, "pay_with": "bitcoin"}, content_type="application/json")
    assert wrong.status_code == 422 and "pay_with" in wrong.json()["error"]["fields"]
    assert not Booking.objects.exists()


def test_api_lists_my_points_per_merchant_and_my_cards(studio):
    merchant, yoga, product = studio
    user = make_user()
    museum = make_merchant(name="美术馆")
    change_points(user=user, merchant=merchant, delta=20, reason="完成课程")
    change_points(user=user, merchant=museum, delta=5, reason="参观")
    card = grant_card(product=product, user=user, by=None)
    engine.book(user=user, slot_id=make_slot(offering=yoga).pk, pay_with="credit")
    client = api_client(user)

    points = client.get("/api/v1/me/points").json()
    assert points["total"] == 25 and points["count"] == 2
    assert {(b["merchant"]["name"], b["balance"]) for b in points["balances"]} == {("一念瑜伽", 20), ("美术馆", 5)}
    assert points["entries"][0]["reason"] == "参观"
    only_studio = client.get("/api/v1/me/points", {"merchant": merchant.pk}).json()
    assert [e["delta"] for e in only_studio["entries"]] == [20] and only_studio["count"] == 1

    cards = client.get("/api/v1/me/cards").json()["items"]
    assert [(c["id"], c["credits_left"], c["credits_total"], c["usable"]) for c in cards] == [(card.pk, 9, 10, True)]
    assert [e["delta"] for e in cards[0]["entries"]] == [-1, 10]
    assert cards[0]["entries"][0]["booking_code"]
    assert Client().get("/api/v1/me/cards").status_code == 401


# --- H5 ----------------------------------------------------------------------------------------------


def test_h5_booking_form_offers_the_card_and_books_with_it(studio):
    _merchant, yoga, product = studio
    user = make_user()
    card = grant_card(product=product, user=user, by=None)
    slot = make_slot(offering=yoga)
    client = h5_client(user)
    page = client.get(reverse("h5:book", args=[slot.pk])).content.decode()
    assert 'data-testid="pay-with"' in page and f'value="{card.pk}"' in page
    response = client.post(reverse("h5:book", args=[slot.pk]), {"action": "book", "pay_with": str(card.pk)})
    assert response.status_code == 302
    booking = Booking.objects.get(user=user)
    assert (booking.status, booking.paid_by, booking.card_id) == (Status.CONFIRMED, PaidBy.CREDIT, card.pk)
    assert "10次卡" in client.get(reverse("h5:booking", args=[booking.code])).content.decode()
    owner, _staff = desk_client(yoga.merchant)
    assert "10次卡" in owner.get(reverse("console:booking", args=[booking.code])).content.decode()
    other = make_slot(offering=yoga, start=slot.start + dt.timedelta(days=1))
    client.post(reverse("h5:book", args=[other.pk]), {"action": "book", "pay_with": "money"})
    assert Booking.objects.get(slot=other).paid_by == PaidBy.MONEY


def test_h5_booking_form_without_a_usable_card_shows_no_choice(studio):
    _merchant, yoga, _product = studio
    page = h5_client(make_user()).get(reverse("h5:book", args=[make_slot(offering=yoga).pk])).content.decode()
    assert 'data-testid="pay-with"' not in page


def test_h5_points_and_cards_pages_show_balances_entries_and_cards(studio):
    merchant, _yoga, product = studio
    user = make_user()
    change_points(user=user, merchant=merchant, delta=20, reason="完成课程 流瑜伽")
    grant_card(product=product, user=user, by=None)
    client = h5_client(user)
    points = client.get(reverse("h5:points")).content.decode()
    assert "一念瑜伽" in points and "完成课程 流瑜伽" in points and "+20" in points
    cards = client.get(reverse("h5:cards")).content.decode()
    assert "10次卡" in cards and 'data-testid="my-cards"' in cards
    assert reverse("h5:points") in client.get(reverse("h5:my_bookings")).content.decode()  # linked from the account
    assert Client().get(reverse("h5:points")).status_code == 302  # sign in first


# --- Console -----------------------------------------------------------------------------------------


def customer_of(merchant: Any, yoga: Any) -> Any:
    """A customer of the merchant (the console shows only people who booked there)."""
    user = make_user()
    engine.book(user=user, slot_id=make_slot(offering=yoga).pk)
    return user


def test_console_lists_creates_and_edits_card_products(studio):
    merchant, yoga, product = studio
    owner, _staff = desk_client(merchant)
    listing = owner.get(reverse("console:card_products")).content.decode()
    assert "10次卡" in listing
    created = owner.post(
        reverse("console:card_product_new"),
        {"name": "20次卡", "credits": "20", "valid_days": "365", "price_yuan": "1800", "offerings": [yoga.pk]},
    )
    assert created.status_code == 302
    new = CardProduct.objects.get(name="20次卡")
    assert (new.credits, new.price_fen, list(new.offerings.all())) == (20, 180000, [yoga])
    bad = owner.post(reverse("console:card_product", args=[product.pk]), {"name": "", "credits": "0"})
    assert bad.status_code == 400
    product.refresh_from_db()
    assert product.name == "10次卡"
    assert AuditEntry.objects.filter(merchant=merchant, action="card_product.save").count() == 1


def test_console_issues_a_card_and_adjusts_points_with_an_audit_entry(studio):
    merchant, yoga, product = studio
    customer = customer_of(merchant, yoga)
    owner, staff = desk_client(merchant)
    back = owner.post(reverse("console:customer_grant_card", args=[customer.pk]), {"product": product.pk})
    assert back.status_code == 302
    card = Card.objects.get(user=customer)
    assert (card.credits_left, card.granted_by, card.merchant) == (10, staff, merchant)
    owner.post(reverse("console:customer_points", args=[customer.pk]), {"delta": "15", "reason": "老客户回馈"})
    owner.post(reverse("console:customer_points", args=[customer.pk]), {"delta": "-40", "reason": "误加"})
    assert points_at(user=customer, merchant_id=merchant.pk) == 0  # -40 capped at the 15 there were
    assert [e.delta for e in PointsEntry.objects.filter(user=customer).order_by("id")] == [15, -15]
    refused = owner.post(reverse("console:customer_points", args=[customer.pk]), {"delta": "abc", "reason": ""})
    assert refused.status_code == 302 and PointsEntry.objects.filter(user=customer).count() == 2
    actions = list(AuditEntry.objects.filter(merchant=merchant).values_list("action", flat=True))
    assert sorted(actions) == ["card.grant", "points.adjust", "points.adjust"]
    page = owner.get(reverse("console:customer", args=[customer.pk])).content.decode()
    assert 'data-testid="customer-cards"' in page and "10次卡" in page and "老客户回馈" in page


def test_front_desk_sees_cards_and_points_but_cannot_issue_or_adjust(studio):
    merchant, yoga, product = studio
    customer = customer_of(merchant, yoga)
    desk, _staff = desk_client(merchant, Role.FRONT_DESK)
    page = desk.get(reverse("console:customer", args=[customer.pk])).content.decode()
    assert 'data-testid="customer-memberships"' in page
    assert reverse("console:customer_grant_card", args=[customer.pk]) not in page
    assert (
        desk.post(reverse("console:customer_grant_card", args=[customer.pk]), {"product": product.pk}).status_code
        == 403
    )
    assert (
        desk.post(reverse("console:customer_points", args=[customer.pk]), {"delta": "5", "reason": "x"}).status_code
        == 403
    )
    assert not Card.objects.exists() and not PointsEntry.objects.exists()


def test_a_card_product_of_another_merchant_cannot_be_issued(studio):
    merchant, yoga, _product = studio
    customer = customer_of(merchant, yoga)
    theirs = save_product(merchant=make_merchant(), spec=ProductSpec(name="外店卡", credits=5, valid_days=30))
    owner, _staff = desk_client(merchant)
    response = owner.post(reverse("console:customer_grant_card", args=[customer.pk]), {"product": theirs.pk})
    assert response.status_code == 404 and not Card.objects.exists()
