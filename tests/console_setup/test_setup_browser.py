"""Browser journeys of the set-up pages: an owner signs in, edits a weekly rule, closes a day."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import User
from factories import make_branch, make_merchant, make_resource, make_user

from yuyue.booking import services as engine
from yuyue.booking.models import Booking
from yuyue.catalog.models import Offering
from yuyue.core import timeutil
from yuyue.scheduling import services as scheduling
from yuyue.scheduling.models import ClosedDate, Schedule, Slot, SlotStatus
from yuyue.tenants.models import Staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "yuyue-demo"
TODAY = timeutil.today()


@pytest.fixture
def studio() -> dict:
    """A yoga studio like the demo's: an owner, a coach, a class with a weekly rule and bookings."""
    merchant = make_merchant(name="静心瑜伽")
    owner = User.objects.create_user("studio-owner", password=PASSWORD, first_name="店长")
    Staff.objects.create(user=owner, merchant=merchant, role="owner")
    coach = make_resource(merchant=merchant, name="周教练")
    course = Offering.objects.create(
        merchant=merchant, branch=make_branch(merchant=merchant, name="静安店"), kind="course", title="哈他瑜伽"
    )
    change = scheduling.save_schedule(
        offering=course,
        spec=scheduling.ScheduleSpec(
            weekdays=list(range(7)),
            start_time=dt.time(19),
            end_time=dt.time(20),
            capacity=10,
            valid_from=TODAY,
            resources=[coach],
        ),
    )
    return {"merchant": merchant, "course": course, "schedule": change.schedule, "coach": coach}


def sign_in(page, next_url: str) -> None:
    page.goto(f"/console/login/?next={next_url}")
    page.fill("#id_username", "studio-owner")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(next_url)))


def test_owner_edits_a_weekly_rule_in_the_browser(new_page, studio):
    schedule = studio["schedule"]
    day = TODAY + dt.timedelta(days=2)
    busy = Slot.objects.get(schedule=schedule, start=timeutil.local_datetime(day, dt.time(19)))
    for _ in range(3):
        engine.book(user=make_user(), slot_id=busy.pk)
    page = new_page(width=1280, height=800)
    sign_in(page, "/console/schedules/")

    page.click("[data-testid=schedule-row] >> text=编辑")
    page.wait_for_selector("[data-testid=schedule-form]")
    page.fill("#id_capacity", "2")
    page.fill("#id_start_time", "19:00")
    page.fill("#id_price_yuan", "75")
    page.click("text=保存并更新时段")

    page.wait_for_url(re.compile("/console/schedules/$"))
    assert "已保存" in page.inner_text(".messages")
    assert "已预约" in page.inner_text(".messages")  # the busy slot keeps 3 places
    schedule.refresh_from_db()
    assert (schedule.capacity, schedule.price_fen) == (2, 7500)
    busy.refresh_from_db()
    assert (busy.capacity, busy.reserved) == (3, 3)
    # Slots already started (today's, in the evening) keep their capacity; every later one follows the rule.
    later = Slot.objects.filter(schedule=schedule, start__gt=timeutil.now()).exclude(pk=busy.pk)
    assert set(later.values_list("capacity", flat=True)) == {2}

    # The calendar shows the slot as full.
    page.goto(f"/console/calendar/?date={day.isoformat()}")
    card = page.locator(f"section[data-date='{day.isoformat()}'] [data-testid=slot]")
    assert "3/3" in card.inner_text()
    assert "band-full" in (card.get_attribute("class") or "")


def test_owner_closes_a_day_in_the_browser(new_page, studio):
    day = TODAY + dt.timedelta(days=3)
    slot = Slot.objects.get(schedule=studio["schedule"], start=timeutil.local_datetime(day, dt.time(19)))
    bookings = [engine.book(user=make_user(), slot_id=slot.pk) for _ in range(4)]
    page = new_page(width=1280, height=800)
    sign_in(page, f"/console/closed-days/new/?date={day.isoformat()}")

    page.fill("#id_reason", "台风红色预警，暂停营业")
    page.click("text=查看影响范围")
    preview = page.locator("[data-testid=close-day-preview]")
    preview.wait_for()
    assert page.inner_text("[data-testid=preview-bookings]") == "4"
    assert not ClosedDate.objects.exists()  # nothing closed before confirming

    page.click("[data-testid=confirm-close]")
    page.wait_for_url(re.compile("/console/closed-days/$"))
    assert "4" in page.inner_text(".messages")
    assert "台风红色预警" in page.inner_text("[data-testid=closed-dates]")
    slot.refresh_from_db()
    assert (slot.status, slot.reserved) == (SlotStatus.CLOSED, 0)
    assert set(Booking.objects.filter(pk__in=[b.pk for b in bookings]).values_list("status", "cancel_reason")) == {
        ("cancelled", "台风红色预警，暂停营业")
    }
    assert Schedule.objects.get(pk=studio["schedule"].pk).is_active
