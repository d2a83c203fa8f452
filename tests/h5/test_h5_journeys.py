"""Whole journeys on the H5 pages in real Chromium at phone size: sign in with the SMS code, book,
see the voucher, be refused a duplicate, reschedule and cancel, for four kinds; and one journey at
the sizes of common phones and a tablet without anything overflowing sideways."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from factories import make_branch, make_id_number, make_resource, make_slot
from playwright.sync_api import expect

from yuyue.accounts.models import Person
from yuyue.booking.models import Booking, Status
from yuyue.catalog.models import Offering, ResourceType
from yuyue.core import timeutil
from yuyue.integrations.sms import ConsoleSmsBackend

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = [(360, 640), (390, 844), (430, 932), (768, 1024)]


def _tomorrow(hour: int, minute: int = 0) -> dt.datetime:
    return timeutil.local_datetime(timeutil.today() + dt.timedelta(days=1), dt.time(hour, minute))


def sign_in_on_the_page(page: Any, phone: str) -> None:
    """We are on the sign-in page (sent there by a page that needs a user): ask for a code, type it."""
    page.wait_for_url(re.compile(r"/signin/"))
    page.fill("#phone", phone)
    page.click("button[value=send]")
    page.locator("#code").wait_for()
    message = ConsoleSmsBackend.last_for(phone)
    assert message is not None, "the console SMS backend got no code"
    page.fill("#code", message.params["code"])
    page.click("button[value=login]")


def no_sideways_overflow(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    assert width <= viewport, f"{page.url}: {width}px wide in a {viewport}px window"


def open_offering(page: Any, offering: Offering) -> None:
    page.goto(f"/?kind={offering.kind}")
    page.get_by_role("link", name=offering.title).click()
    page.locator("#day-picker").wait_for()


def book_button(page: Any, slot: Any) -> Any:
    return page.locator(f'a[href="/slots/{slot.pk}/book/"]')


def add_person_inline(page: Any, name: str, id_number: str, *, relation: str = "") -> str:
    """Fill "add a person" in the booking form and press Add; returns what the ID check said while typing."""
    details = page.locator("#people-picker details.add-person")
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    page.fill("#person_name", name)
    if relation:
        page.select_option("#person_relation", relation)
    page.locator("#person_id_number").press_sequentially(id_number, delay=5)
    check = page.locator("#person_id_number-check .ok-text")
    check.wait_for()  # checked as it was typed
    said = check.inner_text()
    page.check("#person_sensitive_consent")  # the separate consent an ID number needs
    page.click("#people-picker button:has-text('添加')")
    return said


# --- the four kinds ------------------------------------------------------------------------------


def test_course_with_a_coach(page: Any, make_offering: Any, merchant: Any) -> None:
    branch = make_branch(merchant=merchant, name="静安店", address="愚园东路 128 号")
    coach = make_resource(merchant=merchant, type=ResourceType.COACH, name="林晓雯", title="高级瑜伽导师")
    offering = make_offering("course", branch=branch, title="流瑜伽（静安店）")
    offering.resources.set([coach])
    morning = make_slot(offering=offering, start=_tomorrow(10), capacity=5, resources=[coach])
    evening = make_slot(offering=offering, start=_tomorrow(19), capacity=5, resources=[coach])

    open_offering(page, offering)
    assert "林晓雯" in page.inner_text("main") and "开始前 6 小时以前可免费取消" in page.inner_text("main")
    book_button(page, morning).click()
    sign_in_on_the_page(page, "13700010001")
    page.wait_for_url(f"**/slots/{morning.pk}/book/")
    page.click("button[value=book]")
    page.locator(".voucher svg").wait_for()
    assert "已确认" in page.inner_text(".status")
    code = page.inner_text(".code").strip()

    # The same class again for the same account: refused, on the form, in Chinese.
    page.goto(f"/slots/{morning.pk}/book/")
    page.click("button[value=book]")
    expect(page.locator(".booking-form .alert")).to_contain_text("该预约人已有此项预约")
    assert Booking.objects.filter(slot=morning).count() == 1

    # Move to the evening class, then cancel with the cost shown first.
    page.goto(f"/b/{code}/")
    page.get_by_role("link", name="改期").click()
    page.locator(f"form:has(input[name=slot_id][value='{evening.pk}']) button").click()
    page.wait_for_url(f"**/b/{code}/")
    expect(page.locator(".facts")).to_contain_text("19:00")
    page.get_by_role("link", name="取消预约").click()
    preview = page.locator("#cancel-box .cancel-preview")
    preview.wait_for()
    assert "可免费取消" in preview.inner_text()
    assert page.url.endswith(f"/b/{code}/")  # the preview came in place, no page change
    preview.locator("button").click()
    page.wait_for_url(f"**/b/{code}/")
    expect(page.locator(".status")).to_contain_text("已取消")
    assert Booking.objects.get(code=code).status == Status.CANCELLED


def test_scenic_spot_with_two_real_name_visitors(page: Any, make_offering: Any) -> None:
    offering = make_offering("scenic", title="青岚山门票")
    slot = make_slot(offering=offering, start=_tomorrow(8), minutes=240, capacity=100)

    open_offering(page, offering)
    assert "实名预约" in page.inner_text("main")
    book_button(page, slot).click()
    sign_in_on_the_page(page, "13700010002")
    page.wait_for_url(f"**/slots/{slot.pk}/book/")
    add_person_inline(page, "陈晓明", make_id_number(dt.date(1986, 4, 2)))
    page.locator("#people-picker input[name=people]").first.wait_for()
    add_person_inline(page, "段岚艳", make_id_number(dt.date(1988, 9, 9)), relation="spouse")
    page.locator("#people-picker input[name=people]").nth(1).wait_for()
    boxes = page.locator("#people-picker input[name=people]")
    assert boxes.count() == 2 and all(boxes.nth(i).is_checked() for i in range(2))
    page.click("button[value=book]")
    page.locator(".voucher svg").wait_for()
    facts = page.inner_text(".facts")
    assert "陈晓明" in facts and "段岚艳" in facts and "********" in facts

    # One of them again on the same day: refused next to "who is coming".
    page.goto(f"/slots/{slot.pk}/book/")
    page.locator("#people-picker label:has-text('陈晓明')").click()
    page.click("button[value=book]")
    expect(page.locator("#people-error")).to_contain_text("该预约人已有此项预约")

    page.goto("/me/bookings/")
    page.locator(".booking-card a").first.click()
    page.get_by_role("link", name="取消预约").click()
    page.locator("#cancel-box button").click()
    expect(page.locator(".status")).to_contain_text("已取消")


def test_clinic_for_a_child_with_a_guardian(page: Any, make_offering: Any, merchant: Any) -> None:
    doctor = make_resource(merchant=merchant, type=ResourceType.DOCTOR, name="刘敏", title="副主任医师")
    offering = make_offering("clinic", title="儿科 · 刘敏 副主任医师", limit_group="儿科")
    offering.resources.set([doctor])
    nine = make_slot(offering=offering, start=_tomorrow(9), capacity=5, resources=[doctor])
    ten = make_slot(offering=offering, start=_tomorrow(10), capacity=5, resources=[doctor])

    open_offering(page, offering)
    book_button(page, nine).click()
    sign_in_on_the_page(page, "13700010003")
    page.wait_for_url(f"**/slots/{nine.pk}/book/")
    add_person_inline(page, "张伟", make_id_number(dt.date(1985, 3, 1)))
    page.locator("#people-picker label:has-text('张伟')").wait_for()
    guardian = Person.objects.get(name="张伟")
    child_id = make_id_number(dt.date(2019, 5, 1))
    # A child without a guardian is refused next to the guardian field...
    said = add_person_inline(page, "张小宝", child_id, relation="child")
    assert "未满 14 周岁" in said
    expect(page.locator("#person_guardian-error")).to_contain_text("监护人")
    # ...and accepted with one.
    page.select_option("#person_guardian", label="张伟")
    page.click("#people-picker button:has-text('添加')")
    page.locator("#people-picker label:has-text('张小宝')").wait_for()
    page.locator(f"#person-{guardian.pk}").uncheck()  # only the child sees the doctor
    page.click("button[value=book]")
    page.locator(".voucher svg").wait_for()
    assert "张小宝" in page.inner_text(".facts") and "监护人 张伟" in page.inner_text(".facts")
    code = page.inner_text(".code").strip()

    page.get_by_role("link", name="改期").click()
    page.locator(f"form:has(input[name=slot_id][value='{ten.pk}']) button").click()
    page.wait_for_url(f"**/b/{code}/")
    assert Booking.objects.get(code=code).slot_id == ten.pk


def test_vehicle_with_pickup_destination_and_passengers(page: Any, make_offering: Any, merchant: Any) -> None:
    car = make_resource(merchant=merchant, type=ResourceType.VEHICLE, name="别克 GL8", seats=6)
    offering = make_offering("vehicle", title="机场接送（浦东 / 虹桥）")
    offering.resources.set([car])
    slot = make_slot(offering=offering, start=_tomorrow(14), minutes=120, capacity=1, resources=[car])

    open_offering(page, offering)
    book_button(page, slot).click()
    sign_in_on_the_page(page, "13700010004")
    page.wait_for_url(f"**/slots/{slot.pk}/book/")
    assert page.input_value("#answer_contact_phone") == "13700010004"
    page.fill("#party_size", "3")
    page.fill("#answer_destination", "浦东国际机场 T2")
    page.click("button[value=book]")
    expect(page.locator("#answer_pickup-error")).to_have_text("上车地点为必填项。")
    assert page.input_value("#answer_destination") == "浦东国际机场 T2"
    page.fill("#answer_pickup", "静安寺地铁站 1 号口")
    page.click("button[value=book]")
    page.locator(".voucher svg").wait_for()
    facts = page.inner_text(".facts")
    assert "静安寺地铁站 1 号口" in facts and "浦东国际机场 T2" in facts and "3" in facts

    # The car is taken: the slot is full and offers the waitlist instead.
    open_offering(page, offering)
    assert "已约满" in page.inner_text(".slots")
    page.goto("/me/bookings/")
    page.locator(".booking-card a").first.click()
    page.get_by_role("link", name="取消预约").click()
    page.locator("#cancel-box button").click()
    expect(page.locator(".status")).to_contain_text("已取消")


# --- the same journey on phones and a tablet ----------------------------------------------------


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_booking_fits_phones_and_tablets(
    new_page: Any, make_offering: Any, merchant: Any, width: int, height: int
) -> None:
    branch = make_branch(merchant=merchant, name="徐汇滨江店", address="上海市徐汇区云锦滨江路 560 号 2 楼")
    coach = make_resource(merchant=merchant, type=ResourceType.COACH, name="陈思远", title="普拉提认证教练")
    offering = make_offering("course", branch=branch, title="普拉提垫上课（徐汇滨江店）", price_fen=0)
    offering.resources.set([coach])
    slot = make_slot(offering=offering, start=_tomorrow(12, 15), capacity=10, resources=[coach])
    make_slot(offering=offering, start=_tomorrow(12, 15) + dt.timedelta(days=2), capacity=10, resources=[coach])
    page = new_page(width=width, height=height)

    page.goto("/")
    no_sideways_overflow(page)
    open_offering(page, offering)
    no_sideways_overflow(page)
    # Another day through the date strip, swapped in place, then back to tomorrow.
    page.locator(".strip a").nth(3).click()
    expect(page.locator(".strip a").nth(3)).to_have_attribute("aria-current", "date")
    assert page.url.endswith(f"/o/{offering.pk}/")  # swapped in place, no page change
    no_sideways_overflow(page)
    page.locator(".strip a").nth(1).click()
    book_button(page, slot).wait_for()
    book_button(page, slot).click()
    sign_in_on_the_page(page, f"137000{width:03d}{height % 100:02d}")
    page.wait_for_url(f"**/slots/{slot.pk}/book/")
    no_sideways_overflow(page)
    page.click("button[value=book]")
    page.locator(".voucher svg").wait_for()
    no_sideways_overflow(page)
    page.goto("/me/bookings/")
    no_sideways_overflow(page)
    page.goto("/me/people/")
    no_sideways_overflow(page)


# --- elder-friendly mode (适老化) -----------------------------------------------------------------


def test_elder_mode_has_large_text_and_large_targets(page: Any, make_offering: Any) -> None:
    offering = make_offering("scenic", title="青岚山门票")
    make_slot(offering=offering, start=_tomorrow(8), minutes=240, capacity=100)
    page.goto("/")
    page.get_by_role("button", name="长辈模式（大字）").click()
    expect(page.locator("html")).to_have_class("elder")
    for url in ("/", f"/o/{offering.pk}/", "/signin/"):
        page.goto(url)
        assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 20
        targets = page.locator(
            "main button, main .button, main input:not([type=hidden]), main select, .top nav a, .day"
        )
        for i in range(targets.count()):
            box = targets.nth(i).bounding_box()
            if box is not None:  # hidden ones have none
                assert box["height"] >= 48, f"{url}: target {i} is {box['height']}px high"
        no_sideways_overflow(page)
    # Simpler pages: the merchant directory and reviews are left out.
    page.goto(f"/o/{offering.pk}/")
    assert not page.locator("#reviews-h").is_visible()
    page.get_by_role("button", name="标准模式").click()
    expect(page.locator("html")).not_to_have_class("elder")


def test_keyboard_skip_link_and_visible_focus(page: Any, make_offering: Any) -> None:
    make_offering("course", title="流瑜伽")
    page.goto("/")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.className")
    assert focused == "skip"
    assert page.locator(".skip").is_visible()  # shown when focused
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineWidth")
    assert outline == "3px"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    # The next stop after skipping is inside main, not the header.
    assert page.evaluate("document.activeElement.closest('main') !== null")
