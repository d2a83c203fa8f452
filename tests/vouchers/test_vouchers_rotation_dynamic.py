"""Vouchers: signing keys rotate, gates spot forgeries without the database, dynamic QR codes expire."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation
from factories import make_slot, make_user

from yuyue.booking import services
from yuyue.booking.models import Status
from yuyue.core.errors import DomainError
from yuyue.h5.auth import SESSION_KEY

pytestmark = pytest.mark.django_db


def sign_in_client(client: Client, user) -> Client:
    session = client.session
    session[SESSION_KEY] = user.pk
    session.save()
    return client


OLD, NEW = "old-voucher-key-0123456789", "new-voucher-key-9876543210"


@pytest.fixture
def booking(make_offering):
    return services.book(user=make_user(), slot_id=make_slot(offering=make_offering()).pk)


@pytest.fixture
def dynamic(make_offering):
    offering = make_offering(policy_overrides={"dynamic_voucher": True})
    return services.book(user=make_user(), slot_id=make_slot(offering=offering).pk)


def test_without_voucher_keys_vouchers_are_signed_as_before(booking, settings):
    settings.VOUCHER_KEYS = []
    code, _signature = services.voucher_for(booking).split(".")
    assert code == booking.code
    assert services.check_voucher(services.voucher_for(booking)).genuine


def test_rotated_keys_sign_with_the_newest_and_still_accept_older_ones(booking, settings):
    settings.VOUCHER_KEYS = [OLD]
    issued_before = services.voucher_for(booking)
    settings.VOUCHER_KEYS = [NEW, OLD]
    issued_after = services.voucher_for(booking)
    assert issued_after != issued_before
    assert services.check_voucher(issued_before).genuine and services.check_voucher(issued_after).genuine
    assert services.booking_for_voucher(issued_before).pk == booking.pk
    settings.VOUCHER_KEYS = [NEW]  # the old key retired: vouchers signed with it are refused
    assert not services.check_voucher(issued_before).genuine
    with pytest.raises(DomainError) as refused:
        services.booking_for_voucher(issued_before)
    assert refused.value.code == "not_found"


def test_gate_check_needs_no_database(booking, dynamic, django_assert_num_queries):
    valid = services.voucher_for(booking)
    live = services.voucher_for(dynamic)
    forged = f"{booking.code}.{'0' * 12}"
    with django_assert_num_queries(0):
        assert services.check_voucher(valid) == services.VoucherCheck(genuine=True, code=booking.code)
        assert not services.check_voucher(forged).genuine
        assert not services.check_voucher("garbage").genuine
        assert not services.check_voucher(f"ZZZZ{booking.code}.{valid.split('.')[1]}").genuine
        checked = services.check_voucher(live)
        assert checked.genuine and checked.dynamic and checked.current


def test_dynamic_voucher_changes_every_step(dynamic):
    start = dynamic.slot.start
    first = services.voucher_for(dynamic, now=start)
    assert len(first.split(".")) == 3
    assert services.voucher_for(dynamic, now=start + dt.timedelta(seconds=31)) != first
    steps = {services.voucher_for(dynamic, now=start + dt.timedelta(seconds=30 * i)) for i in range(10)}
    assert len(steps) == 10


def test_gate_accepts_a_current_dynamic_code_within_one_step_of_skew(dynamic):
    at = dynamic.slot.start
    shown = services.voucher_for(dynamic, now=at - dt.timedelta(seconds=25))  # the phone's clock runs behind
    checked = services.check_in(voucher=shown, staff=None, now=at)
    assert checked.status == Status.CHECKED_IN


def test_screenshot_of_an_old_dynamic_code_is_refused(dynamic):
    at = dynamic.slot.start
    screenshot = services.voucher_for(dynamic, now=at - dt.timedelta(minutes=5))
    with pytest.raises(DomainError) as refused:
        services.check_in(voucher=screenshot, staff=None, now=at)
    assert refused.value.code == "not_allowed"
    with translation.override("en"):
        assert "out of date" in str(refused.value.message)
    dynamic.refresh_from_db()
    assert dynamic.status == Status.CONFIRMED and dynamic.checked_in_at is None


def test_static_voucher_of_a_dynamic_offering_is_refused(dynamic):
    static = f"{dynamic.code}.{services._voucher_signature(dynamic.code)}"
    with pytest.raises(DomainError) as refused:
        services.check_in(voucher=static, staff=None, now=dynamic.slot.start)
    with translation.override("en"):
        assert "live QR code" in str(refused.value.message)


def test_forged_time_part_is_refused(dynamic):
    signed = services.voucher_for(dynamic, now=dynamic.slot.start).rsplit(".", 1)[0]
    with pytest.raises(DomainError):
        services.check_in(voucher=f"{signed}.12345678", staff=None, now=dynamic.slot.start)


def test_h5_booking_page_polls_the_dynamic_code(dynamic, client: Client):
    signed_in = sign_in_client(client, dynamic.user)
    page = signed_in.get(reverse("h5:booking", args=[dynamic.code])).content.decode()
    assert 'data-testid="dynamic-voucher"' in page
    assert f'hx-get="{reverse("h5:voucher", args=[dynamic.code])}"' in page and 'hx-trigger="every 5s"' in page
    svg = signed_in.get(reverse("h5:voucher", args=[dynamic.code]))
    assert svg["Content-Type"] == "image/svg+xml" and svg["Cache-Control"] == "private, no-store"


def test_h5_booking_page_of_a_static_voucher_does_not_poll(booking, client: Client):
    page = sign_in_client(client, booking.user).get(reverse("h5:booking", args=[booking.code])).content.decode()
    assert "<svg" in page and "dynamic-voucher" not in page


def test_console_gate_refuses_a_screenshot_and_admits_the_live_code(dynamic, merchant):
    from django.contrib.auth.models import User

    from yuyue.console import services as console
    from yuyue.console.access import desk_for
    from yuyue.tenants.models import Staff

    staff = Staff.objects.create(user=User.objects.create(username="gate"), merchant=merchant, role="front_desk")
    desk = desk_for(staff)
    at = dynamic.slot.start
    screenshot = services.voucher_for(dynamic, now=at - dt.timedelta(minutes=3))
    with pytest.raises(DomainError) as refused:
        console.check_in(desk=desk, ip=None, text=screenshot, now=at)
    with translation.override("en"):
        assert "out of date" in str(refused.value.message)
    done = console.check_in(desk=desk, ip=None, text=services.voucher_for(dynamic, now=at), now=at)
    assert done.status == Status.CHECKED_IN
