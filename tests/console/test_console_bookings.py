"""Bookings from the desk: list and search, detail, phone booking, cancel, no-show, move, approval.
Every change goes through the engine and leaves an audit entry."""

from __future__ import annotations

import pytest
from console_world import sign_in
from django.test import Client
from django.urls import reverse
from factories import make_id_number

from yuyue.accounts.models import EndUser
from yuyue.booking.models import Booking, BookingEvent, Status
from yuyue.console.models import AuditEntry
from yuyue.core import personal, timeutil
from yuyue.privacy import consent
from yuyue.privacy.models import Consent, ConsentKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(shop_a):
    return sign_in(Client(), shop_a.staff["staff"], shop_a.merchant)


def listed(client: Client, **params) -> str:
    response = client.get(reverse("console:bookings"), params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_list_filters_by_offering_status_date_and_resource(shop_a, desk):
    page = listed(desk, offering=shop_a.exhibition.pk)
    assert shop_a.visit.code in page and shop_a.booking.code not in page
    page = listed(desk, status="pending_approval")
    assert shop_a.pending.code in page and shop_a.visit.code not in page
    tomorrow = timeutil.local_date(shop_a.slot.start).isoformat()
    page = listed(desk, date_from=tomorrow, date_to=tomorrow)
    assert shop_a.booking.code in page and shop_a.past_booking.code not in page
    page = listed(desk, resource=shop_a.coach.pk)
    assert shop_a.booking.code in page and shop_a.visit.code not in page


def test_search_by_code_phone_and_name(shop_a, desk):
    assert shop_a.visit.code in listed(desk, q=shop_a.visit.code.lower())
    # An attendee's phone is stored encrypted and found through its blind index.
    page = listed(desk, q="139 1234 5678")
    assert shop_a.visit.code in page and shop_a.booking.code not in page
    # The account's phone finds every booking of the account.
    page = listed(desk, q=shop_a.customer.phone)
    assert shop_a.booking.code in page and shop_a.visit.code in page and shop_a.pending.code not in page
    name = shop_a.visit.attendees.first().name
    page = listed(desk, q=name)
    assert shop_a.visit.code in page and shop_a.booking.code not in page


def test_the_detail_shows_history_and_masks_personal_data_for_front_desk(shop_a, desk):
    page = desk.get(reverse("console:booking", args=[shop_a.visit.code])).content.decode()
    attendee = shop_a.visit.attendees.first()
    assert attendee.name in page
    assert attendee.id_masked in page and attendee.id_number not in page
    history = page[page.index('data-testid="booking-history"') :]
    assert "预约" in history and "待支付 → 已确认" in history  # the booking's events, in words
    owner = sign_in(Client(), shop_a.staff["owner"], shop_a.merchant)
    # The owner too sees a masked ID; the full one only through the audited action (tests/privacy).
    owner_page = owner.get(reverse("console:booking", args=[shop_a.visit.code])).content.decode()
    assert attendee.id_masked in owner_page and attendee.id_number not in owner_page


def test_cancel_needs_a_reason_and_is_audited(shop_a, desk):
    url = reverse("console:booking_cancel", args=[shop_a.booking.code])
    desk.post(url, {"reason": " "})
    assert Booking.objects.get(pk=shop_a.booking.pk).status == Status.CONFIRMED
    desk.post(url, {"reason": "顾客来电取消"})
    booking = Booking.objects.get(pk=shop_a.booking.pk)
    assert booking.status == Status.CANCELLED and booking.cancel_reason == "顾客来电取消"
    event = BookingEvent.objects.get(booking=booking, action="cancel")
    assert event.actor_staff == shop_a.staff["staff"]
    entry = AuditEntry.objects.get(action="booking.cancel", object_id=str(booking.pk))
    assert entry.staff_user == shop_a.staff["staff"] and entry.merchant == shop_a.merchant
    assert entry.detail == {"reason": "顾客来电取消"} and entry.ip == "127.0.0.1"
    # Staff cancellations cost the customer no points.
    assert booking.user.points_balance == 0


def test_no_show_only_after_the_start(shop_a, desk):
    desk.post(reverse("console:booking_no_show", args=[shop_a.booking.code]))
    assert Booking.objects.get(pk=shop_a.booking.pk).status == Status.CONFIRMED
    response = desk.post(reverse("console:booking_no_show", args=[shop_a.absent.code]), follow=True)
    assert Booking.objects.get(pk=shop_a.absent.pk).status == Status.NO_SHOW
    assert "已标记为爽约" in response.content.decode()
    assert AuditEntry.objects.filter(action="booking.no_show", object_id=str(shop_a.absent.pk)).exists()


def test_move_to_another_slot_keeps_the_code(shop_a, desk):
    desk.post(reverse("console:booking_move", args=[shop_a.booking.code]), {"slot_id": shop_a.later_slot.pk})
    booking = Booking.objects.get(pk=shop_a.booking.pk)
    assert booking.slot_id == shop_a.later_slot.pk and booking.reschedule_count == 1
    entry = AuditEntry.objects.get(action="booking.move")
    assert entry.detail == {"from_slot": shop_a.slot.pk, "to_slot": shop_a.later_slot.pk}
    # Not to a slot of another offering.
    response = desk.post(
        reverse("console:booking_move", args=[shop_a.booking.code]), {"slot_id": shop_a.exhibition_slot.pk}, follow=True
    )
    assert Booking.objects.get(pk=shop_a.booking.pk).slot_id == shop_a.later_slot.pk
    assert "请选择同一预约项目的其他时段" in response.content.decode()


def test_approve_and_reject(shop_a, desk):
    desk.post(reverse("console:booking_approve", args=[shop_a.pending.code]))
    assert Booking.objects.get(pk=shop_a.pending.pk).status == Status.CONFIRMED  # free: straight to confirmed
    desk.post(reverse("console:booking_reject", args=[shop_a.pending.code]), {"reason": "名额已满"})
    assert Booking.objects.get(pk=shop_a.pending.pk).status == Status.CONFIRMED  # too late to reject
    assert list(AuditEntry.objects.filter(object_id=str(shop_a.pending.pk)).values_list("action", flat=True)) == [
        "booking.approve"
    ]


def test_phone_booking_creates_the_account_and_people_and_follows_the_same_rules(shop_a, desk):
    id_number = make_id_number()
    data = {
        "offering": shop_a.exhibition.pk,
        "slot_id": shop_a.exhibition_slot.pk,
        "phone": "13600001111",
        "person_0_name": "来电人",
        "person_0_id_number": id_number,
    }
    # An ID number needs the caller's separate consent, read to them by the desk: without the tick,
    # nothing is stored (no account, no person, no booking).
    unconsented = desk.post(reverse("console:booking_new"), data)
    assert unconsented.status_code == 400
    assert "请勾选单独同意" in unconsented.content.decode()  # the refusal's own message, beside the texts
    assert not EndUser.objects.filter(phone_hash=personal.phone_hash("13600001111")).exists()
    data["sensitive_consent"] = "1"
    response = desk.post(reverse("console:booking_new"), data)
    assert response.status_code == 302
    booking = Booking.objects.get(user__phone_hash__isnull=False, attendees__name="来电人")
    recorded = Consent.objects.get(user=booking.user)
    assert (recorded.kind, recorded.text_version, recorded.person.name) == (
        ConsentKind.ID_NUMBER,
        consent.CURRENT[ConsentKind.ID_NUMBER],
        "来电人",
    )
    assert recorded.ip == "127.0.0.1" and recorded.withdrawn_at is None
    assert booking.booked_by == shop_a.staff["staff"] and booking.user.phone == "13600001111"
    audit = AuditEntry.objects.get(action="booking.create", object_id=str(booking.pk))
    assert audit.detail["sensitive_consent"] is True
    # The same person again on the same slot: the engine's duplicate rule, as for users online.
    again = desk.post(reverse("console:booking_new"), data)
    assert again.status_code == 400
    assert Booking.objects.filter(attendees__id_hash=booking.attendees.get().id_hash).count() == 1
    # A real-name offering without an ID number is refused and books nothing.
    before = Booking.objects.count()
    refused = desk.post(reverse("console:booking_new"), {**data, "person_0_name": "无证件", "person_0_id_number": ""})
    assert refused.status_code == 400 and Booking.objects.count() == before


def test_phone_booking_of_a_count_based_offering(shop_a, desk):
    response = desk.post(
        reverse("console:booking_new"),
        {"offering": shop_a.course.pk, "slot_id": shop_a.later_slot.pk, "phone": "13600002222", "party_size": "1"},
    )
    assert response.status_code == 302
    assert Booking.objects.filter(slot=shop_a.later_slot, user__phone_hash__isnull=False).count() == 1


def test_a_bad_phone_is_a_field_error(shop_a, desk):
    response = desk.post(
        reverse("console:booking_new"),
        {"offering": shop_a.course.pk, "slot_id": shop_a.later_slot.pk, "phone": "12345"},
    )
    assert response.status_code == 400 and "请输入有效的手机号" in response.content.decode()


def test_numbers_too_large_for_any_id_are_refused_not_a_server_error(shop_a, desk, client):
    from yuyue.accounts import services as accounts

    huge = str(10**20)
    assert desk.get(reverse("console:bookings"), {"offering": huge}).status_code == 400
    assert desk.get(reverse("console:bookings"), {"page": huge}).status_code == 200
    assert desk.get(f"/console/customers/{huge}/").status_code == 404
    owner = sign_in(Client(), shop_a.staff["owner"], shop_a.merchant)
    assert owner.post(f"/console/reviews/{huge}/visibility/", {"hidden": "1"}).status_code == 404
    moved = desk.post(reverse("console:booking_move", args=[shop_a.booking.code]), {"slot_id": huge})
    assert moved.status_code == 302
    new = desk.post(
        reverse("console:booking_new"), {"offering": shop_a.course.pk, "slot_id": huge, "phone": "13600003333"}
    )
    assert new.status_code == 400
    token = accounts.issue_token(staff_user=shop_a.staff["owner"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert client.get("/api/v1/merchant/bookings", {"offset": huge}, **auth).status_code in (200, 422)
    assert client.get("/api/v1/merchant/bookings", {"branch": huge}, **auth).status_code == 422
    assert client.get("/api/v1/merchant/bookings", HTTP_X_MERCHANT=huge, **auth).status_code == 403
