"""The H5 pages through Django's test client: what each page shows, and each refusal next to its field."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from factories import make_id_number, make_person, make_resource, make_slot, make_user
from h5_session import sign_in_client

from yuyue.accounts.models import Person
from yuyue.booking import services as engine
from yuyue.booking.models import Booking, Review, Status, WaitlistEntry
from yuyue.catalog.models import ResourceType
from yuyue.core import timeutil
from yuyue.integrations.sms import ConsoleSmsBackend

pytestmark = pytest.mark.django_db


def text(response: Any) -> str:
    return html.unescape(response.content.decode())


def error_next_to(response: Any, input_id: str) -> str:
    """The error message rendered right under an input (``<p class="error" id="<input>-error">``)."""
    found = re.search(rf'<p class="error" id="{re.escape(input_id)}-error">(.*?)</p>', response.content.decode(), re.S)
    assert found, f"no error next to {input_id}"
    return html.unescape(found.group(1)).strip()


def has_cjk(value: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in value)


# --- home ----------------------------------------------------------------------------------------


def test_home_shows_kinds_merchants_and_branches(client: Client, course_slot: Any) -> None:
    page = text(client.get("/"))
    assert 'lang="zh-Hans"' in page
    for label in ("课程", "景区", "门诊挂号", "车辆"):
        assert label in page
    assert course_slot.offering.merchant.name in page
    assert "静安店" in page and "愚园东路 128 号" in page
    assert "<main" in page and "<header" in page and "<nav" in page and "<footer" in page


def test_search_finds_offerings_by_word_and_kind(client: Client, course_slot: Any, scenic_slot: Any) -> None:
    found = text(client.get("/", {"q": "瑜伽"}))
    assert "流瑜伽" in found and "青岚山门票" not in found
    by_kind = text(client.get("/", {"kind": "scenic"}))
    assert "青岚山门票" in by_kind and "流瑜伽" not in by_kind
    nothing = text(client.get("/", {"q": "不存在的东西"}))
    assert "没有找到" in nothing


def test_search_as_you_type_returns_only_the_results(client: Client, course_slot: Any) -> None:
    response = client.get("/", {"q": "瑜伽"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results")
    page = text(response)
    assert "流瑜伽" in page and "<html" not in page


# --- offering page and slots -------------------------------------------------------------------


def test_offering_page_shows_description_place_price_policies_coach_and_reviews(
    client: Client, course_slot: Any, customer: Any
) -> None:
    offering = course_slot.offering
    offering.price_fen = 9900
    offering.save()
    past = make_slot(
        offering=offering,
        start=timeutil.now() - dt.timedelta(days=2),
        resources=list(course_slot.resources.all()),
    )
    booking = engine.book(user=customer, slot_id=past.pk, now=past.start - dt.timedelta(hours=3))
    engine.confirm(booking=booking, now=past.start - dt.timedelta(hours=2))
    visited = engine.check_in(voucher=engine.voucher_for(booking), staff=None, now=past.start)
    engine.add_review(booking=visited, user=customer, rating=4, text="老师讲解细致")

    page = text(client.get(reverse("h5:offering", args=[offering.pk])))
    assert "流瑜伽" in page and "跟随呼吸串联体式。" in page
    assert "静安店" in page and "愚园东路 128 号" in page
    assert "¥99.00" in page
    # Policies in plain words: the cancel deadline and what cancelling later costs.
    assert "开始前 6 小时" in page and "10 积分" in page
    assert "林晓雯" in page and "高级瑜伽导师" in page and "★ 4.0" in page
    assert "老师讲解细致" in page


def test_real_name_rules_and_party_size_are_spelled_out(client: Client, scenic_slot: Any) -> None:
    page = text(client.get(reverse("h5:offering", args=[scenic_slot.offering.pk])))
    assert "身份证号" in page  # real-name booking
    assert "每单最多 5 人" in page


def test_slots_of_another_day_come_without_a_reload(client: Client, course_slot: Any) -> None:
    offering = course_slot.offering
    later = make_slot(offering=offering, start=course_slot.start + dt.timedelta(days=2, hours=4), capacity=8)
    day = timeutil.local_date(later.start).isoformat()
    response = client.get(reverse("h5:offering_slots", args=[offering.pk]), {"date": day}, HTTP_HX_REQUEST="true")
    page = text(response)
    assert "<html" not in page and 'id="day-picker"' in page
    assert "14:00–15:00" in page and "剩余 8 个名额" in page
    assert reverse("h5:book", args=[later.pk]) in page
    assert f'href="?date={day}#slots"' in page  # also works without scripts


def test_without_scripts_a_day_link_is_a_page(client: Client, course_slot: Any) -> None:
    day = timeutil.local_date(course_slot.start).isoformat()
    response = client.get(reverse("h5:offering_slots", args=[course_slot.offering.pk]), {"date": day})
    assert response.status_code == 302 and response["Location"].endswith(f"?date={day}#slots")


def test_a_full_slot_offers_the_waitlist(client: Client, course_slot: Any) -> None:
    course_slot.capacity = 0
    course_slot.save()
    page = text(client.get(reverse("h5:offering", args=[course_slot.offering.pk])))
    assert "已约满" in page and "候补" in page


def test_inactive_offering_is_not_found(client: Client, course_slot: Any) -> None:
    course_slot.offering.is_active = False
    course_slot.offering.save()
    assert client.get(reverse("h5:offering", args=[course_slot.offering.pk])).status_code == 404


# --- sign-in -------------------------------------------------------------------------------------


def test_pages_needing_a_user_send_to_sign_in_and_back(client: Client) -> None:
    response = client.get("/me/bookings/?tab=past")
    assert response.status_code == 302
    assert response["Location"] == "/signin/?next=%2Fme%2Fbookings%2F%3Ftab%3Dpast"


def test_sign_in_with_the_sms_code_and_sign_out(client: Client) -> None:
    phone = "13700002222"
    sent = client.post("/signin/", {"phone": phone, "action": "send", "next": "/me/people/"})
    assert sent.status_code == 200 and 'id="code"' in text(sent)
    code = ConsoleSmsBackend.last_for(phone).params["code"]
    response = client.post("/signin/", {"phone": phone, "code": code, "action": "login", "next": "/me/people/"})
    assert response.status_code == 302 and response["Location"] == "/me/people/"
    assert client.get("/me/people/").status_code == 200
    client.post("/signout/")
    assert client.get("/me/people/").status_code == 302


def test_sign_in_refuses_an_outside_next(client: Client) -> None:
    phone = "13700003333"
    client.post("/signin/", {"phone": phone, "action": "send"})
    code = ConsoleSmsBackend.last_for(phone).params["code"]
    response = client.post("/signin/", {"phone": phone, "code": code, "next": "https://evil.example/"})
    assert response["Location"] == "/me/bookings/"


def test_a_bad_phone_is_shown_next_to_the_phone(client: Client) -> None:
    response = client.post("/signin/", {"phone": "12345", "action": "send"})
    assert response.status_code == 422
    assert error_next_to(response, "phone") == "请输入有效的手机号。"


def test_a_wrong_code_is_shown_next_to_the_code(client: Client) -> None:
    phone = "13700004444"
    client.post("/signin/", {"phone": phone, "action": "send"})
    right = ConsoleSmsBackend.last_for(phone).params["code"]
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    response = client.post("/signin/", {"phone": phone, "code": wrong, "action": "login"})
    assert response.status_code == 422
    with translation.override("zh-hans"):
        assert error_next_to(response, "code") == gettext("The code is not correct.")
    empty = client.post("/signin/", {"phone": phone, "code": "", "action": "login"})
    assert error_next_to(empty, "code") == "请输入短信中的验证码。"


# --- booking form ------------------------------------------------------------------------------


def test_course_booking_goes_to_the_booking_page_with_its_voucher(signed_in: Client, course_slot: Any) -> None:
    form = text(signed_in.get(reverse("h5:book", args=[course_slot.pk])))
    assert "流瑜伽" in form and "林晓雯" in form
    response = signed_in.post(reverse("h5:book", args=[course_slot.pk]), {"action": "book", "form_key": "k1"})
    booking = Booking.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/b/{booking.code}/"
    page = text(signed_in.get(response["Location"]))
    assert "已确认" in page and "<svg" in page and booking.code in page
    assert reverse("h5:calendar", args=[booking.code]) in page


def test_a_double_submitted_form_books_once(signed_in: Client, course_slot: Any) -> None:
    url = reverse("h5:book", args=[course_slot.pk])
    first = signed_in.post(url, {"action": "book", "form_key": "same"})
    again = signed_in.post(url, {"action": "book", "form_key": "same"})
    assert first["Location"] == again["Location"]
    assert Booking.objects.count() == 1


def test_a_duplicate_booking_is_refused_next_to_who_is_coming(signed_in: Client, scenic_slot: Any, adult: Any) -> None:
    url = reverse("h5:book", args=[scenic_slot.pk])
    assert signed_in.post(url, {"people": [adult.pk], "form_key": "a"}).status_code == 302
    response = signed_in.post(url, {"people": [adult.pk], "form_key": "b"})
    assert response.status_code == 422
    assert error_next_to(response, "people") == "该预约人已有此项预约。"
    assert Booking.objects.count() == 1


def test_nobody_chosen_is_shown_next_to_who_is_coming(signed_in: Client, scenic_slot: Any, adult: Any) -> None:
    response = signed_in.post(reverse("h5:book", args=[scenic_slot.pk]), {"form_key": "x"})
    assert error_next_to(response, "people") == "请选择预约人。"


def test_a_visitor_without_an_id_is_refused_for_real_name_booking(
    signed_in: Client, scenic_slot: Any, customer: Any
) -> None:
    no_id = make_person(owner=customer, name="王小明", real_name=False)
    response = signed_in.post(reverse("h5:book", args=[scenic_slot.pk]), {"people": [no_id.pk], "form_key": "x"})
    assert error_next_to(response, "people") == "每位预约人均须提供身份证号。"


def test_vehicle_form_asks_pickup_destination_and_passengers(signed_in: Client, vehicle_slot: Any) -> None:
    page = text(signed_in.get(reverse("h5:book", args=[vehicle_slot.pk])))
    for label in ("上车地点", "目的地", "联系电话", "乘车人数"):
        assert label in page
    assert 'value="13900001111"' in page  # the contact phone starts as the account's own
    assert "开始前 2 小时以前可免费取消" in page  # the rules are at hand before booking


def test_missing_pickup_is_shown_next_to_pickup(signed_in: Client, vehicle_slot: Any) -> None:
    response = signed_in.post(
        reverse("h5:book", args=[vehicle_slot.pk]),
        {"party_size": "2", "answer_destination": "浦东机场", "answer_contact_phone": "13900001111", "form_key": "x"},
    )
    assert response.status_code == 422
    assert error_next_to(response, "answer_pickup") == "上车地点为必填项。"
    assert 'value="浦东机场"' in text(response)  # what was typed stays


def test_too_many_passengers_is_shown_next_to_passengers(signed_in: Client, vehicle_slot: Any) -> None:
    answers = {"answer_pickup": "静安寺", "answer_destination": "浦东机场", "answer_contact_phone": "13900001111"}
    response = signed_in.post(
        reverse("h5:book", args=[vehicle_slot.pk]), {"party_size": "9", "form_key": "x", **answers}
    )
    assert error_next_to(response, "party_size") == "该车辆共有 6 个座位。"
    ok = signed_in.post(reverse("h5:book", args=[vehicle_slot.pk]), {"party_size": "3", "form_key": "y", **answers})
    booking = Booking.objects.get()
    assert ok.status_code == 302 and booking.party_size == 3 and booking.answers["pickup"] == "静安寺"


def test_a_bad_phone_answer_is_shown_next_to_it(signed_in: Client, vehicle_slot: Any) -> None:
    response = signed_in.post(
        reverse("h5:book", args=[vehicle_slot.pk]),
        {"party_size": "1", "answer_pickup": "a", "answer_destination": "b", "answer_contact_phone": "123"},
    )
    assert error_next_to(response, "answer_contact_phone") == "联系电话填写有误。"


def test_a_full_slot_takes_people_onto_the_waitlist(signed_in: Client, course_slot: Any, customer: Any) -> None:
    course_slot.capacity = 0
    course_slot.save()
    form = text(signed_in.get(reverse("h5:book", args=[course_slot.pk])))
    assert 'value="waitlist"' in form
    response = signed_in.post(reverse("h5:book", args=[course_slot.pk]), {"action": "waitlist"})
    assert response["Location"] == "/me/bookings/"
    assert WaitlistEntry.objects.get().user == customer
    page = text(signed_in.get("/me/bookings/"))
    assert "候补第 1 位" in page and "流瑜伽" in page


def test_clinic_child_is_booked_with_a_guardian(signed_in: Client, clinic_slot: Any, adult: Any, customer: Any) -> None:
    child = make_person(
        owner=customer, name="张小宝", relation="child", birth_date=dt.date(2019, 5, 1), guardian_id=adult.pk
    )
    response = signed_in.post(reverse("h5:book", args=[clinic_slot.pk]), {"people": [child.pk], "form_key": "x"})
    assert response.status_code == 302
    page = text(signed_in.get(response["Location"]))
    assert "张小宝" in page and "监护人 张伟" in page


# --- my people, inline and on their own page ----------------------------------------------------


def test_a_person_is_added_inline_and_comes_back_chosen(signed_in: Client, scenic_slot: Any, adult: Any) -> None:
    response = signed_in.post(
        reverse("h5:person_add"),
        {
            "people": [adult.pk],
            "person_name": "李雷",
            "person_id_number": make_id_number(dt.date(1992, 2, 2)),
            "person_sensitive_consent": "1",
        },
        HTTP_HX_REQUEST="true",
    )
    page = text(response)
    added = Person.objects.get(name="李雷")
    assert "<html" not in page and 'id="people-picker"' in page
    assert f'value="{added.pk}" id="person-{added.pk}" checked' in page
    assert f'value="{adult.pk}" id="person-{adult.pk}" checked' in page


def test_a_child_without_guardian_is_refused_next_to_the_guardian(signed_in: Client, adult: Any) -> None:
    response = signed_in.post(
        reverse("h5:person_add"),
        {"person_name": "张小宝", "person_relation": "child", "person_id_number": make_id_number(dt.date(2019, 5, 1))},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200  # htmx swaps the picker with the message in it
    assert error_next_to(response, "person_guardian") == "未满 14 周岁的儿童须从常用人中指定监护人。"
    assert not Person.objects.filter(name="张小宝").exists()


def test_a_bad_id_number_is_refused_next_to_it(signed_in: Client) -> None:
    response = signed_in.post(
        reverse("h5:person_add"), {"person_name": "李雷", "person_id_number": "110105199001011230"}
    )
    assert response.status_code == 422
    assert error_next_to(response, "person_id_number") == "该身份证号无效。"


def test_missing_name_is_refused_next_to_the_name(signed_in: Client) -> None:
    response = signed_in.post(reverse("h5:person_add"), {"person_name": ""})
    assert has_cjk(error_next_to(response, "person_name"))


def test_the_id_number_is_checked_as_it_is_typed(client: Client) -> None:
    valid = make_id_number(dt.date(2019, 5, 1))
    ok = text(client.post(reverse("h5:check_id"), {"person_id_number": valid}))
    assert "✓" in ok and "2019-05-01" in ok and "监护人" in ok
    typing = text(client.post(reverse("h5:check_id"), {"person_id_number": "1101051990"}))
    assert "10/18" in typing
    bad = text(
        client.post(reverse("h5:check_id"), {"person_id_number": valid[:-1] + ("0" if valid[-1] != "0" else "1")})
    )
    assert "✗" in bad and "该身份证号无效。" in bad


def test_people_page_adds_and_removes(signed_in: Client, customer: Any) -> None:
    response = signed_in.post(
        reverse("h5:person_add"),
        {
            "person_name": "韩梅梅",
            "person_relation": "spouse",
            "person_id_number": make_id_number(),
            "person_sensitive_consent": "1",
        },
    )
    assert response.status_code == 302
    person = Person.objects.get(name="韩梅梅")
    page = text(signed_in.get("/me/people/"))
    assert "韩梅梅" in page and person.id_masked in page and person.id_number not in page
    signed_in.post(reverse("h5:person_remove", args=[person.pk]))
    assert "韩梅梅" not in text(signed_in.get("/me/people/"))


# --- the booking page: cancel, reschedule, review, voucher, calendar ------------------------------


@pytest.fixture
def course_booking(customer: Any, course_slot: Any) -> Booking:
    return engine.book(user=customer, slot_id=course_slot.pk)


def test_cancel_shows_what_it_costs_first(signed_in: Client, course_booking: Booking) -> None:
    preview = signed_in.get(reverse("h5:cancel", args=[course_booking.code]), HTTP_HX_REQUEST="true")
    page = text(preview)
    assert "<html" not in page and "免费取消" in page and "不扣积分" in page
    response = signed_in.post(reverse("h5:cancel", args=[course_booking.code]), {"reason": "临时有事"})
    assert response.status_code == 302
    course_booking.refresh_from_db()
    assert course_booking.status == Status.CANCELLED
    assert "已取消" in text(signed_in.get(response["Location"]))


def test_a_late_cancel_says_how_many_points_it_costs(signed_in: Client, customer: Any, make_offering: Any) -> None:
    offering = make_offering("course")
    soon = make_slot(offering=offering, start=timeutil.now() + dt.timedelta(hours=3))
    booking = engine.book(user=customer, slot_id=soon.pk)
    page = text(signed_in.get(reverse("h5:cancel", args=[booking.code])))
    assert "扣除积分：10" in page


def test_reschedule_moves_to_another_time_of_the_same_offering(
    signed_in: Client, course_booking: Booking, course_slot: Any
) -> None:
    later = make_slot(offering=course_slot.offering, start=course_slot.start + dt.timedelta(hours=3))
    page = text(signed_in.get(reverse("h5:reschedule", args=[course_booking.code])))
    assert "13:00–14:00" in page and "当前时间" in page
    response = signed_in.post(reverse("h5:reschedule", args=[course_booking.code]), {"slot_id": later.pk})
    assert response.status_code == 302
    course_booking.refresh_from_db()
    assert course_booking.slot_id == later.pk


def test_reschedule_to_another_offering_is_refused_on_the_page(
    signed_in: Client, course_booking: Booking, make_offering: Any
) -> None:
    other = make_slot(offering=make_offering("course"))
    response = signed_in.post(reverse("h5:reschedule", args=[course_booking.code]), {"slot_id": other.pk})
    assert response.status_code == 422
    assert "请选择同一预约项目的其他时段" in text(response)


def test_review_after_the_visit(signed_in: Client, customer: Any, course_slot: Any) -> None:
    booking = engine.book(user=customer, slot_id=course_slot.pk)
    assert 'name="rating"' not in text(signed_in.get(f"/b/{booking.code}/"))
    engine.check_in(voucher=engine.voucher_for(booking), staff=None, now=course_slot.start)
    page = text(signed_in.get(f"/b/{booking.code}/"))
    assert 'name="rating"' in page
    signed_in.post(reverse("h5:review", args=[booking.code]), {"rating": "5", "text": "很好"})
    review = Review.objects.get()
    assert review.rating == 5 and review.text == "很好"
    assert "很好" in text(signed_in.get(f"/b/{booking.code}/"))


def test_voucher_and_calendar_files(signed_in: Client, course_booking: Booking) -> None:
    svg = signed_in.get(reverse("h5:voucher", args=[course_booking.code]))
    assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content
    ics = signed_in.get(reverse("h5:calendar", args=[course_booking.code]))
    assert ics["Content-Type"].startswith("text/calendar") and b"BEGIN:VEVENT" in ics.content


def test_someone_elses_booking_is_not_found(client: Client, course_booking: Booking) -> None:
    sign_in_client(client, make_user())
    for name in ("booking", "voucher", "calendar", "cancel"):
        assert client.get(reverse(f"h5:{name}", args=[course_booking.code])).status_code == 404


def test_my_bookings_upcoming_and_past(signed_in: Client, customer: Any, course_booking: Booking) -> None:
    engine.cancel(booking=course_booking, by=customer)
    coming = engine.book(user=customer, slot_id=make_slot(offering=course_booking.offering).pk)
    upcoming = text(signed_in.get("/me/bookings/"))
    past = text(signed_in.get("/me/bookings/?tab=past"))
    assert coming.code in upcoming and course_booking.code not in upcoming
    assert course_booking.code in past and coming.code not in past


# --- elder mode and English ------------------------------------------------------------------------


def test_elder_mode_is_a_cookie_toggle(client: Client, course_slot: Any) -> None:
    response = client.post(reverse("h5:elder"), {"on": "1", "next": "/"})
    assert response.cookies["yuyue_elder"].value == "1"
    page = text(client.get("/"))
    assert 'class="elder"' in page and "标准模式" in page
    client.post(reverse("h5:elder"), {"on": "0", "next": "/"})
    assert 'class="elder"' not in text(client.get("/"))


def test_english_switch(client: Client, course_slot: Any) -> None:
    client.post(reverse("h5:set_language"), {"language": "en", "next": "/"})
    page = text(client.get(reverse("h5:offering", args=[course_slot.offering.pk])))
    assert 'lang="en"' in page and "Good to know" in page and "Free cancellation until 6 hours" in page


def test_every_input_has_a_label(signed_in: Client, vehicle_slot: Any, scenic_slot: Any, adult: Any) -> None:
    make_resource(type=ResourceType.COACH)
    for url in (
        "/signin/",
        "/me/people/",
        reverse("h5:book", args=[vehicle_slot.pk]),
        reverse("h5:book", args=[scenic_slot.pk]),
    ):
        page = (Client() if url == "/signin/" else signed_in).get(url).content.decode()
        ids = re.findall(r'<(?:input|select|textarea)(?![^>]*type="(?:hidden|submit)")[^>]*\bid="([^"]+)"', page)
        assert ids, url
        for input_id in ids:
            assert f'for="{input_id}"' in page, f"{url}: #{input_id} has no label"


# --- states a slot or booking can be in ----------------------------------------------------------


def test_a_slot_not_open_yet_says_when_it_opens(client: Client, make_offering: Any) -> None:
    offering = make_offering("scenic")  # opens 7 days ahead at 20:00
    start = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=9), dt.time(9, 0))
    slot = make_slot(offering=offering, start=start)
    day = timeutil.local_date(start).isoformat()
    page = text(client.get(reverse("h5:offering_slots", args=[offering.pk]), {"date": day}, HTTP_HX_REQUEST="true"))
    opens = timeutil.local_date(start) - dt.timedelta(days=7)
    assert f"{opens:%m-%d} 20:00 开放" in page
    assert reverse("h5:book", args=[slot.pk]) not in page


def test_an_unpaid_booking_shows_no_voucher_yet(signed_in: Client, customer: Any, make_offering: Any) -> None:
    booking = engine.book(user=customer, slot_id=make_slot(offering=make_offering("course", price_fen=9900)).pk)
    assert booking.status == Status.PENDING_PAYMENT
    page = text(signed_in.get(f"/b/{booking.code}/"))
    assert "待支付" in page and "<svg" not in page
    assert signed_in.get(reverse("h5:voucher", args=[booking.code])).status_code == 404


def test_leaving_the_waitlist(signed_in: Client, customer: Any, course_slot: Any) -> None:
    course_slot.capacity = 0
    course_slot.save()
    entry = engine.join_waitlist(user=customer, slot_id=course_slot.pk)
    response = signed_in.post(reverse("h5:waitlist_leave", args=[entry.pk]))
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.status == "cancelled"
    assert "候补中" not in text(signed_in.get("/me/bookings/"))


@override_settings(RATE_BOOKING_USER="1/60")
def test_booking_too_often_is_refused_at_the_top(signed_in: Client, course_slot: Any, make_offering: Any) -> None:
    other = make_slot(offering=make_offering("course"))
    assert signed_in.post(reverse("h5:book", args=[course_slot.pk]), {"form_key": "a"}).status_code == 302
    response = signed_in.post(reverse("h5:book", args=[other.pk]), {"form_key": "b"})
    assert response.status_code == 422
    assert "请求过于频繁" in text(response)
    assert Booking.objects.count() == 1


def test_add_a_person_on_the_booking_form_without_scripts(signed_in: Client, scenic_slot: Any, adult: Any) -> None:
    url = reverse("h5:book", args=[scenic_slot.pk])
    response = signed_in.post(
        url,
        {
            "action": "add_person",
            "people": [adult.pk],
            "person_name": "李雷",
            "person_id_number": make_id_number(),
            "person_sensitive_consent": "1",
        },
    )
    added = Person.objects.get(name="李雷")
    page = text(response)
    assert response.status_code == 200 and not Booking.objects.exists()
    assert f'id="person-{added.pk}" checked' in page and f'id="person-{adult.pk}" checked' in page


def test_the_enter_key_adds_the_person_being_typed_else_books(signed_in: Client, scenic_slot: Any, adult: Any) -> None:
    url = reverse("h5:book", args=[scenic_slot.pk])
    typing = signed_in.post(url, {"action": "enter", "people": [adult.pk], "person_name": "韩梅梅"})
    added = Person.objects.get(name="韩梅梅")
    assert f'id="person-{added.pk}" checked' in text(typing)
    assert not Booking.objects.exists()
    done = signed_in.post(url, {"action": "enter", "people": [adult.pk], "person_name": "", "form_key": "k"})
    assert done.status_code == 302 and Booking.objects.count() == 1


def test_every_page_has_lang_landmarks_and_one_main_heading(
    signed_in: Client, customer: Any, course_slot: Any, scenic_slot: Any
) -> None:
    booking = engine.book(user=customer, slot_id=course_slot.pk)
    urls = [
        "/",
        reverse("h5:offering", args=[course_slot.offering.pk]),
        reverse("h5:book", args=[scenic_slot.pk]),
        reverse("h5:booking", args=[booking.code]),
        reverse("h5:cancel", args=[booking.code]),
        reverse("h5:reschedule", args=[booking.code]),
        "/me/bookings/",
        "/me/people/",
        "/signin/",
    ]
    for url in urls:
        page = (Client() if url == "/signin/" else signed_in).get(url).content.decode()
        assert re.search(r'<html lang="zh-Hans"', page), url
        assert page.count("<h1") == 1, url
        for landmark in ("<header", "<nav", '<main id="main"', "<footer", 'href="#main"'):
            assert landmark in page, f"{url}: no {landmark}"
        assert "<img" not in page or re.search(r"<img(?![^>]*\balt=)", page) is None, f"{url}: image without alt"


def test_signed_in_people_skip_the_sign_in_page(signed_in: Client) -> None:
    response = signed_in.get("/signin/?next=/me/people/")
    assert response.status_code == 302 and response["Location"] == "/me/people/"


def test_an_htmx_request_without_a_user_is_sent_to_sign_in(client: Client) -> None:
    response = client.get("/b/ABC/cancel/", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/b/ABC/")
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/signin/?next=%2Fb%2FABC%2F"


def test_home_shows_the_next_booking_of_a_signed_in_user(signed_in: Client, course_booking: Booking) -> None:
    page = text(signed_in.get("/"))
    assert "下一个预约" in page and f"/b/{course_booking.code}/" in page
