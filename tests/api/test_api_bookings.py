"""Bookings over the API: every endpoint, the refusals clients branch on, idempotency, documents."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import icalendar
import pytest
from api_helpers import ApiClient, error_code
from django.test import override_settings
from factories import make_branch, make_offering, make_person, make_resource, make_slot, make_user

from yuyue.accounts.models import Ban
from yuyue.accounts.services import change_points, issue_token
from yuyue.booking import services
from yuyue.booking.models import Booking, Status
from yuyue.core import timeutil
from yuyue.scheduling.models import Slot

pytestmark = pytest.mark.django_db


def book(api: ApiClient, slot_id: int, **body) -> object:
    return api.post("/bookings", {"slot_id": slot_id, **body})


def refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert error_code(response) == code


# --- Booking ------------------------------------------------------------------------------------


def test_book_answers_201_with_the_contract_fields(api: ApiClient, tomorrow_10):
    branch = make_branch(address="静安区南京西路1号")
    slot = make_slot(offering=make_offering(kind="course", branch=branch), start=tomorrow_10)
    response = book(api, slot.pk)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "confirmed" and body["party_size"] == 1 and body["amount_fen"] == 0
    assert body["offering"]["branch"]["address"] == "静安区南京西路1号"
    assert body["slot"]["id"] == slot.pk and body["slot"]["remaining"] == 9
    assert body["voucher_url"] == f"/api/v1/bookings/{body['code']}/voucher.svg"
    assert body["calendar_url"] == f"/api/v1/bookings/{body['code']}/calendar.ics"
    assert dt.datetime.fromisoformat(body["created_at"]).utcoffset() == dt.timedelta(hours=8)
    assert Booking.objects.get(code=body["code"]).slot_id == slot.pk


def test_paid_booking_waits_for_payment(api: ApiClient, tomorrow_10):
    slot = make_slot(offering=make_offering(price_fen=9900), start=tomorrow_10)
    body = book(api, slot.pk).json()
    assert (body["status"], body["amount_fen"]) == ("pending_payment", 9900)
    assert body["hold_expires_at"] is not None


def test_real_name_booking_lists_people_masked(api: ApiClient, user, tomorrow_10):
    slot = make_slot(offering=make_offering(kind="scenic"), start=tomorrow_10)
    people = [make_person(owner=user), make_person(owner=user)]
    body = book(api, slot.pk, people=[p.pk for p in people]).json()
    assert [p["person_id"] for p in body["people"]] == [p.pk for p in people]
    assert body["people"][0]["id_number"] == people[0].id_masked
    assert "*" in body["people"][0]["id_number"]
    assert body["party_size"] == 2


def test_vehicle_booking_answers_its_form(api: ApiClient, tomorrow_10):
    slot = make_slot(offering=make_offering(kind="vehicle"), start=tomorrow_10)
    answers = {"pickup": "虹桥机场T2", "destination": "外滩", "contact_phone": "13912345678"}
    response = book(api, slot.pk, party_size=3, answers=answers)
    assert response.status_code == 201
    assert response.json()["answers"] == answers and response.json()["party_size"] == 3
    missing = book(api, slot.pk, party_size=1, answers={"pickup": "虹桥"})
    refused(missing, 422, "invalid")
    assert set(missing.json()["error"]["fields"]) == {"destination", "contact_phone"}


def test_same_idempotency_key_and_body_answers_the_same_booking_with_200(api: ApiClient, tomorrow_10):
    slot = make_slot(start=tomorrow_10, capacity=5)
    headers = {"Idempotency-Key": "retry-1"}
    first = api.post("/bookings", {"slot_id": slot.pk}, headers=headers)
    second = api.post("/bookings", {"slot_id": slot.pk}, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["code"] == second.json()["code"]
    assert Booking.objects.count() == 1
    slot.refresh_from_db()
    assert slot.reserved == 1


def test_same_idempotency_key_with_another_body_is_invalid(api: ApiClient, tomorrow_10):
    slot = make_slot(start=tomorrow_10)
    other = make_slot(offering=slot.offering, start=tomorrow_10 + dt.timedelta(hours=2))
    api.post("/bookings", {"slot_id": slot.pk}, headers={"Idempotency-Key": "k"})
    response = api.post("/bookings", {"slot_id": other.pk}, headers={"Idempotency-Key": "k"})
    refused(response, 422, "invalid")
    assert "Idempotency-Key" in response.json()["error"]["fields"]


def test_idempotency_keys_belong_to_one_account(api: ApiClient, tomorrow_10):
    slot = make_slot(start=tomorrow_10)
    other = ApiClient(issue_token(user=make_user()))
    a = api.post("/bookings", {"slot_id": slot.pk}, headers={"Idempotency-Key": "same"})
    b = other.post("/bookings", {"slot_id": slot.pk}, headers={"Idempotency-Key": "same"})
    assert (a.status_code, b.status_code) == (201, 201) and a.json()["code"] != b.json()["code"]


def test_slot_full(api: ApiClient, tomorrow_10):
    slot = make_slot(start=tomorrow_10, capacity=1)
    services.book(user=make_user(), slot_id=slot.pk)
    refused(book(api, slot.pk), 409, "slot_full")


def test_duplicate_person_on_the_same_slot(api: ApiClient, user, tomorrow_10):
    slot = make_slot(offering=make_offering(kind="scenic"), start=tomorrow_10)
    person = make_person(owner=user)
    assert book(api, slot.pk, people=[person.pk]).status_code == 201
    refused(book(api, slot.pk, people=[person.pk]), 409, "duplicate")


def test_limit_reached_per_id_per_day(api: ApiClient, user, tomorrow_10):
    offering = make_offering(kind="scenic")
    morning = make_slot(offering=offering, start=tomorrow_10)
    afternoon = make_slot(offering=offering, start=tomorrow_10 + dt.timedelta(hours=4))
    person = make_person(owner=user)
    assert book(api, morning.pk, people=[person.pk]).status_code == 201
    refused(book(api, afternoon.pk, people=[person.pk]), 409, "limit_reached")


def test_conflict_when_the_coach_is_busy_elsewhere(api: ApiClient, tomorrow_10):
    coach = make_resource(name="陈教练")
    yoga = make_slot(offering=make_offering(merchant=coach.merchant), start=tomorrow_10, resources=[coach])
    pilates = make_slot(
        offering=make_offering(merchant=coach.merchant), start=tomorrow_10 + dt.timedelta(minutes=30), resources=[coach]
    )
    services.book(user=make_user(), slot_id=yoga.pk)
    refused(book(api, pilates.pk), 409, "conflict")


def test_too_late_after_booking_closes(api: ApiClient):
    soon = timeutil.now() + dt.timedelta(minutes=10)
    slot = make_slot(offering=make_offering(kind="course"), start=soon)  # closes 30 min before
    refused(book(api, slot.pk), 409, "too_late")


def test_banned_account(api: ApiClient, user, tomorrow_10):
    slot = make_slot(start=tomorrow_10)
    Ban.objects.create(
        user=user, merchant=slot.offering.merchant, ends_at=timeutil.now() + dt.timedelta(days=30), reason="爽约"
    )
    response = book(api, slot.pk)
    refused(response, 403, "banned")
    assert "until" in response.json()["error"]


def test_invalid_without_people_for_a_real_name_kind(api: ApiClient, tomorrow_10):
    slot = make_slot(offering=make_offering(kind="clinic"), start=tomorrow_10)
    response = book(api, slot.pk)
    refused(response, 422, "invalid")
    assert "people" in response.json()["error"]["fields"]


def test_someone_elses_person_is_invalid(api: ApiClient, tomorrow_10):
    slot = make_slot(offering=make_offering(kind="scenic"), start=tomorrow_10)
    refused(book(api, slot.pk, people=[make_person().pk]), 422, "invalid")


def test_malformed_body_is_invalid(api: ApiClient):
    refused(api.post("/bookings", {"slot_id": "x"}), 422, "invalid")
    refused(api.post("/bookings", {"people": []}), 422, "invalid")


def test_unknown_slot_is_not_found(api: ApiClient):
    refused(book(api, 987654), 404, "not_found")


def test_booking_needs_a_token(anon: ApiClient, tomorrow_10):
    refused(book(anon, make_slot(start=tomorrow_10).pk), 401, "unauthorized")


@override_settings(RATE_BOOKING_USER="2/60")
def test_booking_creation_is_rate_limited(api: ApiClient, tomorrow_10):
    slots = [make_slot(start=tomorrow_10 + dt.timedelta(hours=h)) for h in range(3)]
    statuses = [book(api, s.pk).status_code for s in slots]
    assert statuses == [201, 201, 429]
    response = book(api, slots[2].pk)
    refused(response, 429, "rate_limited")
    assert int(response["Retry-After"]) >= 1
    assert Booking.objects.count() == 2


# --- Reading ------------------------------------------------------------------------------------


def test_my_bookings_newest_first_and_by_time(api: ApiClient, user, tomorrow_10):
    past_slot = make_slot(start=timeutil.now() - dt.timedelta(days=2))
    old = services.book(user=user, slot_id=past_slot.pk, now=past_slot.start - dt.timedelta(days=1))
    new = services.book(user=user, slot_id=make_slot(start=tomorrow_10).pk)
    services.book(user=make_user(), slot_id=make_slot(start=tomorrow_10).pk)  # someone else's
    body = api.get("/bookings").json()
    assert [b["code"] for b in body["items"]] == [new.code, old.code] and body["count"] == 2
    assert [b["code"] for b in api.get("/bookings", {"when": "upcoming"}).json()["items"]] == [new.code]
    assert [b["code"] for b in api.get("/bookings", {"when": "past"}).json()["items"]] == [old.code]
    refused(api.get("/bookings", {"when": "sometime"}), 422, "invalid")


def test_get_one_booking(api: ApiClient, user, tomorrow_10):
    booking = services.book(user=user, slot_id=make_slot(start=tomorrow_10).pk)
    body = api.get(f"/bookings/{booking.code}").json()
    assert body["code"] == booking.code and body["status"] == "confirmed"


def test_another_users_booking_is_not_found_everywhere(api: ApiClient, tomorrow_10):
    theirs = services.book(user=make_user(), slot_id=make_slot(start=tomorrow_10).pk)
    for path in ("", "/cancel-preview", "/voucher.svg", "/calendar.ics"):
        refused(api.get(f"/bookings/{theirs.code}{path}"), 404, "not_found")
    for path, body in (("/cancel", {}), ("/reschedule", {"slot_id": theirs.slot_id}), ("/review", {"rating": 5})):
        refused(api.post(f"/bookings/{theirs.code}{path}", body), 404, "not_found")
    theirs.refresh_from_db()
    assert theirs.status == Status.CONFIRMED


# --- Cancel and reschedule -------------------------------------------------------------------------


def test_cancel_preview_then_cancel(api: ApiClient, user, tomorrow_10):
    slot = make_slot(start=tomorrow_10, capacity=2)
    booking = services.book(user=user, slot_id=slot.pk)
    preview = api.get(f"/bookings/{booking.code}/cancel-preview").json()
    assert preview == {"allowed": True, "refund_fen": 0, "points_penalty": 0, "reason": preview["reason"]}
    response = api.post(f"/bookings/{booking.code}/cancel", {"reason": "有事"})
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    slot.refresh_from_db()
    assert slot.reserved == 0


def test_cancel_without_a_body(api: ApiClient, user, tomorrow_10):
    booking = services.book(user=user, slot_id=make_slot(start=tomorrow_10).pk)
    response = api.client.post(
        f"/api/v1/bookings/{booking.code}/cancel",
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


def test_late_cancel_preview_shows_the_points(api: ApiClient, user):
    start = timeutil.now() + dt.timedelta(hours=3)  # course: free until 6 h before, then 10 points
    booking = services.book(user=user, slot_id=make_slot(start=start).pk)
    change_points(user=user, merchant=booking.merchant, delta=30, reason="完成课程")
    preview = api.get(f"/bookings/{booking.code}/cancel-preview").json()
    assert preview["allowed"] is True and preview["points_penalty"] == 10
    api.post(f"/bookings/{booking.code}/cancel")
    user.refresh_from_db()
    assert user.points_balance == 20


def test_cancel_after_the_start_is_too_late(api: ApiClient, user):
    start = timeutil.now() + dt.timedelta(hours=1)
    booking = services.book(user=user, slot_id=make_slot(start=start).pk, now=start - dt.timedelta(days=1))
    Slot.objects.filter(pk=booking.slot_id).update(
        start=timeutil.now() - dt.timedelta(minutes=5), end=timeutil.now() + dt.timedelta(minutes=55)
    )
    assert api.get(f"/bookings/{booking.code}/cancel-preview").json()["allowed"] is False
    refused(api.post(f"/bookings/{booking.code}/cancel"), 409, "too_late")


def test_reschedule_keeps_the_code_and_moves_the_seat(api: ApiClient, user, tomorrow_10):
    slot = make_slot(start=tomorrow_10)
    later = make_slot(offering=slot.offering, start=tomorrow_10 + dt.timedelta(days=1))
    booking = services.book(user=user, slot_id=slot.pk)
    response = api.post(f"/bookings/{booking.code}/reschedule", {"slot_id": later.pk})
    assert response.status_code == 200
    assert response.json()["code"] == booking.code and response.json()["slot"]["id"] == later.pk
    assert response.json()["reschedule_count"] == 1


def test_reschedule_to_a_full_slot_changes_nothing(api: ApiClient, user, tomorrow_10):
    slot = make_slot(start=tomorrow_10)
    full = make_slot(offering=slot.offering, start=tomorrow_10 + dt.timedelta(days=1), capacity=1)
    services.book(user=make_user(), slot_id=full.pk)
    booking = services.book(user=user, slot_id=slot.pk)
    refused(api.post(f"/bookings/{booking.code}/reschedule", {"slot_id": full.pk}), 409, "slot_full")
    booking.refresh_from_db()
    assert booking.slot_id == slot.pk


def test_reschedule_to_another_offering_is_invalid(api: ApiClient, user, tomorrow_10):
    booking = services.book(user=user, slot_id=make_slot(start=tomorrow_10).pk)
    elsewhere = make_slot(start=tomorrow_10 + dt.timedelta(days=1))
    response = api.post(f"/bookings/{booking.code}/reschedule", {"slot_id": elsewhere.pk})
    refused(response, 422, "invalid")
    assert "slot_id" in response.json()["error"]["fields"]


def test_reschedule_limit_reached(api: ApiClient, user, tomorrow_10):
    offering = make_offering(policy_overrides={"max_reschedules": 1})
    slots = [make_slot(offering=offering, start=tomorrow_10 + dt.timedelta(days=d)) for d in range(3)]
    booking = services.book(user=user, slot_id=slots[0].pk)
    assert api.post(f"/bookings/{booking.code}/reschedule", {"slot_id": slots[1].pk}).status_code == 200
    refused(api.post(f"/bookings/{booking.code}/reschedule", {"slot_id": slots[2].pk}), 409, "limit_reached")


# --- Voucher and calendar ----------------------------------------------------------------------------


def test_voucher_is_an_svg_qr_carrying_the_signed_code(api: ApiClient, user, tomorrow_10):
    booking = services.book(user=user, slot_id=make_slot(start=tomorrow_10).pk)
    response = api.get(f"/bookings/{booking.code}/voucher.svg")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    root = ET.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert booking.code in root.find("{http://www.w3.org/2000/svg}title").text
    assert root.find("{http://www.w3.org/2000/svg}path") is not None
    voucher = services.voucher_for(booking)
    assert voucher.startswith(booking.code + ".")
    assert services.booking_for_voucher(voucher).pk == booking.pk


def test_a_forged_voucher_is_refused(user, tomorrow_10):
    booking = services.book(user=user, slot_id=make_slot(start=tomorrow_10).pk)
    with pytest.raises(services.DomainError, match=r"^not_found"):
        services.booking_for_voucher(f"{booking.code}.000000000000")


def test_no_voucher_before_payment_or_after_cancelling(api: ApiClient, user, tomorrow_10):
    unpaid = services.book(user=user, slot_id=make_slot(offering=make_offering(price_fen=100), start=tomorrow_10).pk)
    refused(api.get(f"/bookings/{unpaid.code}/voucher.svg"), 402, "payment_required")
    cancelled = services.book(user=user, slot_id=make_slot(start=tomorrow_10).pk)
    services.cancel(booking=cancelled, by=user)
    refused(api.get(f"/bookings/{cancelled.code}/voucher.svg"), 409, "not_allowed")


def test_calendar_is_valid_icalendar_with_address_and_reminder(api: ApiClient, user, tomorrow_10):
    branch = make_branch(city="上海", address="浦东新区世纪大道100号")
    offering = make_offering(kind="course", branch=branch, title="空中瑜伽")
    booking = services.book(user=user, slot_id=make_slot(offering=offering, start=tomorrow_10, minutes=90).pk)
    response = api.get(f"/bookings/{booking.code}/calendar.ics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(response.content)
    assert calendar["VERSION"] == "2.0" and calendar["PRODID"]
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]) == f"{booking.code}@yuyue"
    assert event["SUMMARY"] == "空中瑜伽"
    assert "浦东新区世纪大道100号" in str(event["LOCATION"])
    assert booking.code in str(event["DESCRIPTION"])
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert start == tomorrow_10 and end - start == dt.timedelta(minutes=90)
    assert str(start.tzinfo) == "Asia/Shanghai"
    assert event.decoded("DTSTAMP").utcoffset() == dt.timedelta(0)
    (alarm,) = event.walk("VALARM")
    assert alarm["ACTION"] == "DISPLAY" and alarm.decoded("TRIGGER") == -dt.timedelta(hours=2)
    assert calendar.walk("VTIMEZONE")  # the zone travels with the file
    assert b"\r\n" in response.content  # RFC 5545 line endings


# --- Waitlist and review --------------------------------------------------------------------------


def test_waitlist_for_a_full_slot(api: ApiClient, tomorrow_10):
    slot = make_slot(start=tomorrow_10, capacity=1)
    services.book(user=make_user(), slot_id=slot.pk)
    response = api.post(f"/slots/{slot.pk}/waitlist", {})
    assert response.status_code == 201 and response.json()["position"] == 1
    refused(api.post(f"/slots/{slot.pk}/waitlist", {}), 409, "duplicate")


def test_waitlist_with_seats_left_is_invalid(api: ApiClient, tomorrow_10):
    slot = make_slot(start=tomorrow_10, capacity=3)
    refused(api.post(f"/slots/{slot.pk}/waitlist", {}), 422, "invalid")
    refused(api.post("/slots/424242/waitlist", {}), 404, "not_found")


def test_review_after_the_visit(api: ApiClient, user):
    start = timeutil.now() + dt.timedelta(minutes=30)
    slot = make_slot(start=start)
    booking = services.book(user=user, slot_id=slot.pk, now=start - dt.timedelta(days=1))
    refused(api.post(f"/bookings/{booking.code}/review", {"rating": 5, "text": "好"}), 409, "not_allowed")
    services.check_in(voucher=services.voucher_for(booking), staff=None, now=start)
    response = api.post(f"/bookings/{booking.code}/review", {"rating": 4, "text": "老师很专业"})
    assert response.status_code == 201 and response.json()["rating"] == 4
    refused(api.post(f"/bookings/{booking.code}/review", {"rating": 5}), 409, "duplicate")
    refused(api.post(f"/bookings/{booking.code}/review", {"rating": 6}), 422, "invalid")


# --- Hostile input ----------------------------------------------------------------------------------


def test_out_of_range_numbers_and_nul_characters_are_invalid_not_server_errors(api: ApiClient, tomorrow_10):
    slot = make_slot(start=tomorrow_10)
    huge = 10**30
    refused(book(api, huge), 422, "invalid")
    refused(book(api, slot.pk, people=[huge]), 422, "invalid")
    refused(api.get("/bookings", {"offset": huge}), 422, "invalid")
    refused(api.get(f"/offerings/{huge}"), 422, "invalid")
    refused(api.get("/offerings", {"q": "瑜伽\x00"}), 422, "invalid")
    refused(book(api, slot.pk, answers={"note": "a\x00b"}), 422, "invalid")
    refused(api.get("/bookings/AB%00CD"), 422, "invalid")
    refused(api.post("/me/people", {"name": "张\x00三", "relation": "self"}), 422, "invalid")
    assert not Booking.objects.exists()


def test_leave_the_waitlist(api: ApiClient, tomorrow_10):
    slot = make_slot(start=tomorrow_10, capacity=1)
    services.book(user=make_user(), slot_id=slot.pk)
    entry_id = api.post(f"/slots/{slot.pk}/waitlist", {}).json()["id"]
    assert api.delete(f"/me/waitlist/{entry_id}").status_code == 204
    refused(api.delete(f"/me/waitlist/{entry_id}"), 409, "not_allowed")
    assert api.post(f"/slots/{slot.pk}/waitlist", {}).status_code == 201  # may queue again


def test_someone_elses_waitlist_entry_is_not_found(api: ApiClient, tomorrow_10):
    slot = make_slot(start=tomorrow_10, capacity=1)
    services.book(user=make_user(), slot_id=slot.pk)
    theirs = services.join_waitlist(user=make_user(), slot_id=slot.pk)
    refused(api.delete(f"/me/waitlist/{theirs.pk}"), 404, "not_found")
