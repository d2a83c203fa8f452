"""Check-in (核销): by scanned voucher or typed code, once; the gate API answers a second scan with 409."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from console_world import build_shop, sign_in
from django.db import connection
from django.test import Client
from django.urls import reverse

from yuyue.accounts import services as accounts
from yuyue.booking import services as engine
from yuyue.booking.models import Booking, BookingEvent, Status
from yuyue.console.models import AuditEntry


def checkin_page(client: Client, code: str):
    return client.post(reverse("console:checkin"), {"code": code})


@pytest.mark.django_db
def test_a_scanned_voucher_checks_in_once_and_says_when_the_second_time(shop_a):
    desk = sign_in(Client(), shop_a.staff["staff"], shop_a.merchant)
    voucher = engine.voucher_for(shop_a.absent)
    first = checkin_page(desk, voucher)
    assert first.status_code == 200
    page = first.content.decode()
    assert "核销成功" in page and shop_a.course.title in page and shop_a.absent.code in page
    booking = Booking.objects.get(pk=shop_a.absent.pk)
    assert booking.status == Status.CHECKED_IN
    second = checkin_page(desk, voucher)
    assert second.status_code == 409
    assert "已于" in second.content.decode() and f"{booking.checked_in_at.astimezone():%Y}" in second.content.decode()
    assert AuditEntry.objects.filter(action="booking.check_in", object_id=str(booking.pk)).count() == 1


@pytest.mark.django_db
def test_a_typed_booking_code_works_too(shop_a):
    desk = sign_in(Client(), shop_a.staff["coach"], shop_a.merchant)  # coaches check in their classes
    response = checkin_page(desk, shop_a.absent.code.lower())
    assert response.status_code == 200
    assert Booking.objects.get(pk=shop_a.absent.pk).status == Status.CHECKED_IN


@pytest.mark.django_db
def test_a_forged_or_unknown_voucher_is_not_found(shop_a):
    desk = sign_in(Client(), shop_a.staff["staff"], shop_a.merchant)
    assert checkin_page(desk, f"{shop_a.absent.code}.000000000000").status_code == 404
    assert checkin_page(desk, "ZZZZZZZZZZ").status_code == 404
    assert Booking.objects.get(pk=shop_a.absent.pk).status == Status.CONFIRMED


@pytest.mark.django_db
def test_too_early_is_refused_with_the_time_it_opens(shop_a):
    desk = sign_in(Client(), shop_a.staff["staff"], shop_a.merchant)
    response = checkin_page(desk, shop_a.booking.code)  # tomorrow's class
    assert response.status_code == 409 and "起可核销" in response.content.decode()
    assert Booking.objects.get(pk=shop_a.booking.pk).status == Status.CONFIRMED


@pytest.mark.django_db
def test_gate_api_checks_in_and_answers_409_duplicate_with_the_first_time(shop_a, client):
    token = accounts.issue_token(staff_user=shop_a.staff["staff"])
    voucher = engine.voucher_for(shop_a.absent)

    def scan():
        return client.post(
            "/api/v1/merchant/checkins",
            {"voucher": voucher},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )

    first = scan()
    assert first.status_code == 200
    assert first.json()["code"] == shop_a.absent.code and first.json()["status"] == "checked_in"
    second = scan()
    assert second.status_code == 409
    error = second.json()["error"]
    assert error["code"] == "duplicate"
    assert error["checked_in_at"] == Booking.objects.get(pk=shop_a.absent.pk).checked_in_at.isoformat()


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_concurrent_scans_of_one_voucher_admit_exactly_once():
    """Eight gates scan the same voucher at the same moment: one admits, seven say duplicate."""
    shop = build_shop("并发核销")
    tokens = [accounts.issue_token(staff_user=shop.staff["staff"]) for _ in range(8)]
    voucher = engine.voucher_for(shop.absent)
    barrier = threading.Barrier(len(tokens))
    outcomes: list[str] = []
    lock = threading.Lock()

    def gate(token: str) -> None:
        try:
            barrier.wait(timeout=30)
            response = Client().post(
                "/api/v1/merchant/checkins",
                {"voucher": voucher},
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )
            outcome = "ok" if response.status_code == 200 else response.json()["error"]["code"]
        except Exception as exc:
            outcome = f"crash:{exc!r}"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=gate, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert Counter(outcomes) == {"ok": 1, "duplicate": 7}, outcomes
    assert BookingEvent.objects.filter(booking=shop.absent, action="check_in").count() == 1
    assert AuditEntry.objects.filter(action="booking.check_in", object_id=str(shop.absent.pk)).count() == 1
