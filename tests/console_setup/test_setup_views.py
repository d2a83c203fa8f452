"""The set-up pages through HTTP: forms save through the services, errors are shown, roles are enforced."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from factories import console_client, make_branch, make_resource, make_slot, make_user
from urls_under_test import offering_data, setup_url_cases

from yuyue.booking import services as engine
from yuyue.booking.models import Booking
from yuyue.catalog.models import Offering, Resource
from yuyue.console.models import AuditEntry
from yuyue.core import timeutil
from yuyue.scheduling.models import ClosedDate, Schedule, Slot, SlotStatus

pytestmark = pytest.mark.django_db

TODAY = timeutil.today()


def at(days: int, hour: int) -> dt.datetime:
    return timeutil.local_datetime(TODAY + dt.timedelta(days=days), dt.time(hour))


@pytest.fixture
def coach(merchant) -> Resource:
    return make_resource(merchant=merchant, name="林教练")


@pytest.fixture
def course(merchant, make_offering, coach) -> Offering:
    offering = make_offering(title="晨间流瑜伽", branch=make_branch(merchant=merchant))
    offering.resources.add(coach)
    return offering


@pytest.fixture
def owner(merchant) -> Client:
    return console_client(merchant)


def rule_form(offering: Offering, **changes: Any) -> dict[str, Any]:
    data = {
        "offering": offering.pk,
        "weekdays": ["0", "2", "4"],
        "start_time": "07:00",
        "end_time": "08:00",
        "capacity": "12",
        "price_yuan": "68",
        "valid_from": TODAY.isoformat(),
    }
    data.update(changes)
    return data


def test_owner_creates_a_weekly_rule_and_its_slots_appear(owner, course, coach):
    response = owner.post(reverse("console:schedule_new"), rule_form(course, resources=[coach.pk]))

    assert response.status_code == 302 and response["Location"] == reverse("console:schedules")
    rule = Schedule.objects.get(offering=course)
    assert (rule.weekdays, rule.capacity, rule.price_fen) == ([0, 2, 4], 12, 6800)
    slots = Slot.objects.filter(schedule=rule)
    assert slots.count() == sum(1 for d in range(30) if (TODAY + dt.timedelta(d)).weekday() in (0, 2, 4))
    assert set(slots.values_list("resources", flat=True)) == {coach.pk}
    entry = AuditEntry.objects.get(action="schedule.create")
    assert entry.object_id == str(rule.pk) and entry.detail["created"] == slots.count()
    page = owner.get(reverse("console:schedules")).content.decode()
    assert "晨间流瑜伽" in page and "林教练" in page


def test_a_bad_rule_shows_its_errors_and_saves_nothing(owner, course):
    response = owner.post(
        reverse("console:schedule_new"),
        rule_form(course, weekdays=[], end_time="06:00", capacity="0"),
    )

    assert response.status_code == 422
    page = response.content.decode()
    assert "请更正下面标出的字段" in page or "correct the fields" in page
    assert page.count('class="errorlist') >= 3
    assert not Schedule.objects.exists()


def test_a_conflicting_rule_is_refused_with_the_other_offering_named(owner, merchant, make_offering, course, coach):
    other = make_offering(title="普拉提小班")
    owner.post(reverse("console:schedule_new"), rule_form(other, resources=[coach.pk]))

    response = owner.post(reverse("console:schedule_new"), rule_form(course, resources=[coach.pk], start_time="07:30"))

    assert response.status_code == 422
    page = response.content.decode()
    assert "林教练" in page and "普拉提小班" in page
    assert not Schedule.objects.filter(offering=course).exists()


def test_editing_a_rule_reports_booked_slots_it_no_longer_covers(owner, course):
    owner.post(reverse("console:schedule_new"), rule_form(course, weekdays=[str(d) for d in range(7)]))
    rule = Schedule.objects.get(offering=course)
    booked = Slot.objects.filter(schedule=rule, start__gt=timeutil.now()).order_by("start")[1]
    engine.book(user=make_user(), slot_id=booked.pk)
    keep = [str(d) for d in range(7) if d != timeutil.local_date(booked.start).weekday()]

    response = owner.post(
        reverse("console:schedule_edit", args=[rule.pk]), rule_form(course, weekdays=keep), follow=True
    )

    page = response.content.decode()
    assert f"{timeutil.local_date(booked.start):%m-%d}" in page
    booked.refresh_from_db()
    assert booked.status == SlotStatus.OPEN and booked.reserved == 1


def test_the_calendar_shows_fill_rate_and_a_coach_sees_only_their_own(merchant, make_offering, course, coach):
    mine = make_slot(offering=course, start=at(1, 9), capacity=4, resources=[coach])
    for _ in range(3):
        engine.book(user=make_user(), slot_id=mine.pk)
    theirs = make_slot(offering=make_offering(title="陶艺体验"), start=at(1, 14))
    query = {"date": (TODAY + dt.timedelta(days=1)).isoformat()}

    page = console_client(merchant).get(reverse("console:calendar"), query).content.decode()
    assert "3/4" in page and "band-high" in page and "陶艺体验" in page
    day = console_client(merchant).get(reverse("console:calendar"), {**query, "view": "day"}).content.decode()
    assert "晨间流瑜伽" in day and "陶艺体验" in day

    coach_page = (
        console_client(merchant, "coach", resource=coach).get(reverse("console:calendar"), query).content.decode()
    )
    assert "晨间流瑜伽" in coach_page and "陶艺体验" not in coach_page
    coach_client = console_client(merchant, "coach", resource=coach)
    assert coach_client.get(reverse("console:slot_detail", args=[theirs.pk])).status_code == 404
    assert coach_client.get(reverse("console:slot_detail", args=[mine.pk])).status_code == 200


def test_capacity_below_booked_is_refused_with_a_message(owner, course):
    slot = make_slot(offering=course, start=at(2, 9), capacity=5)
    for _ in range(3):
        engine.book(user=make_user(), slot_id=slot.pk)

    response = owner.post(reverse("console:slot_capacity", args=[slot.pk]), {"capacity": "2"}, follow=True)

    assert "3" in response.content.decode() and 'class="message error"' in response.content.decode()
    slot.refresh_from_db()
    assert slot.capacity == 5
    owner.post(reverse("console:slot_capacity", args=[slot.pk]), {"capacity": "3"})
    slot.refresh_from_db()
    assert slot.capacity == 3
    assert AuditEntry.objects.get(action="slot.capacity").detail == {"before": 5, "after": 3}


def test_close_a_day_shows_the_count_first_then_cancels(owner, merchant, course):
    slot = make_slot(offering=course, start=at(3, 9))
    bookings = [engine.book(user=make_user(), slot_id=slot.pk) for _ in range(2)]
    form = {"day": (TODAY + dt.timedelta(days=3)).isoformat(), "scope": "merchant", "reason": "台风停业"}

    preview = owner.post(reverse("console:close_day"), form)

    assert preview.status_code == 200
    assert 'data-testid="preview-bookings">2<' in preview.content.decode()
    assert Booking.objects.filter(status="confirmed").count() == 2  # nothing happened yet

    done = owner.post(reverse("console:close_day"), {**form, "confirm": "yes"})

    assert done.status_code == 302 and done["Location"] == reverse("console:closed_dates")
    for booking in bookings:
        booking.refresh_from_db()
        assert (booking.status, booking.cancel_reason) == ("cancelled", "台风停业")
    assert ClosedDate.objects.filter(merchant=merchant, reason="台风停业").exists()
    assert AuditEntry.objects.get(action="day.close").detail["cancelled"] == 2
    assert "台风停业" in owner.get(reverse("console:closed_dates")).content.decode()


def test_a_branch_scope_needs_a_branch(owner):
    response = owner.post(reverse("console:close_day"), {"day": TODAY.isoformat(), "scope": "branch", "reason": "停电"})
    assert response.status_code == 422 and not ClosedDate.objects.exists()


def test_offering_editor_saves_form_rows_and_policy(owner, merchant):
    data = offering_data(
        title="亲子陶艺",
        kind="activity",
        late_cancel_refund_percent="80",
        no_show_ban="on",
        no_show_count="2",
        no_show_window_days="30",
        no_show_ban_days="7",
        **{
            "ff-TOTAL_FORMS": "2",
            "ff-0-key": "child_age",
            "ff-0-label": "孩子年龄",
            "ff-0-type": "number",
            "ff-0-required": "on",
            "ff-1-key": "size",
            "ff-1-label": "围裙尺码",
            "ff-1-type": "choice",
            "ff-1-choices": "S，M、L",
        },
    )

    response = owner.post(reverse("console:offering_new"), data)

    assert response.status_code == 302
    offering = Offering.objects.get(title="亲子陶艺")
    assert offering.price_fen == 8800
    assert [f.key for f in offering.form] == ["child_age", "size"]
    assert offering.form[1].choices == ["S", "M", "L"]
    assert offering.policy.late_cancel_refund_percent == 80
    assert offering.policy.no_show_ban is not None and offering.policy.no_show_ban.ban_days == 7
    assert AuditEntry.objects.filter(action="offering.create", object_id=str(offering.pk)).exists()
    assert owner.get(reverse("console:offering_edit", args=[offering.pk])).status_code == 200


def test_offering_editor_shows_policy_and_row_errors(owner):
    data = offering_data(
        late_cancel_refund_percent="150",
        holiday_capacity_factor="0",
        **{"ff-TOTAL_FORMS": "1", "ff-0-key": "Bad Key", "ff-0-label": "问题"},
    )

    response = owner.post(reverse("console:offering_new"), data)

    assert response.status_code == 422
    page = response.content.decode()
    assert 'data-testid="rows-error"' in page and "100" in page
    assert not Offering.objects.exists()


def test_resource_editor_saves_and_lists(owner, merchant):
    response = owner.post(
        reverse("console:resource_new"), {"name": "宇通大巴", "type": "vehicle", "seats": "45", "plate": "沪b6789"}
    )
    assert response.status_code == 302
    bus = Resource.objects.get(name="宇通大巴")
    assert (bus.seats, bus.plate, bus.is_active) == (45, "沪B6789", False)  # the box was not ticked
    assert "宇通大巴" in owner.get(reverse("console:resources")).content.decode()


def test_another_merchants_objects_are_404(owner, make_offering):
    stranger = make_slot(start=at(1, 9))
    for name, kwargs in [
        ("slot_detail", {"slot_id": stranger.pk}),
        ("offering_edit", {"offering_id": stranger.offering_id}),
        ("resource_edit", {"resource_id": make_resource().pk}),
    ]:
        assert owner.get(reverse(f"console:{name}", kwargs=kwargs)).status_code == 404
    assert owner.post(reverse("console:slot_close", args=[stranger.pk]), {"reason": "x"}).status_code == 404
    stranger.refresh_from_db()
    assert stranger.status == SlotStatus.OPEN


@pytest.mark.parametrize("role", ["coach", "doctor", "driver", "staff"])
def test_roles_without_the_right_get_403_on_every_change_url(merchant, course, coach, role):
    shop = SimpleNamespace(
        merchant=merchant,
        course=course,
        coach=coach,
        slot=make_slot(offering=course, start=at(1, 10), resources=[coach]),
        later_slot=make_slot(offering=course, start=at(2, 10), resources=[coach]),
    )
    client = console_client(merchant, role, resource=coach if role == "coach" else None)
    changes = [row for row in setup_url_cases(shop) if row[3] in {"schedules.change", "catalog.change"}]
    assert len(changes) >= 15
    before = (Schedule.objects.count(), Slot.objects.filter(status=SlotStatus.OPEN).count(), Offering.objects.count())
    for name, kwargs, method, _permission, *data in changes:
        url = reverse(f"console:{name}", kwargs=kwargs)
        response = client.get(url) if method == "GET" else client.post(url, data[0] if data else {})
        assert response.status_code == 403, f"{role} {method} {url}"
    after = (Schedule.objects.count(), Slot.objects.filter(status=SlotStatus.OPEN).count(), Offering.objects.count())
    assert after == before
    assert client.get(reverse("console:calendar")).status_code == 200


def test_close_a_slot_then_reopen_it_from_its_page(owner, course):
    slot = make_slot(offering=course, start=at(2, 18))
    booking = engine.book(user=make_user(), slot_id=slot.pk)

    page = owner.post(reverse("console:slot_close", args=[slot.pk]), {"reason": "教练生病"}, follow=True)

    assert "已取消 1 个预约" in page.content.decode() or "1 bookings were cancelled" in page.content.decode()
    booking.refresh_from_db()
    assert (booking.status, booking.cancel_reason) == ("cancelled", "教练生病")
    owner.post(reverse("console:slot_reopen", args=[slot.pk]))
    slot.refresh_from_db()
    assert slot.status == SlotStatus.OPEN
    assert [e.action for e in AuditEntry.objects.order_by("pk")] == ["slot.close", "slot.reopen"]


def test_removing_a_closed_date_is_audited(owner, merchant):
    closed = ClosedDate.objects.create(merchant=merchant, date=TODAY + dt.timedelta(days=9), reason="盘点")
    response = owner.post(reverse("console:closed_date_delete", args=[closed.pk]))
    assert response.status_code == 302 and not ClosedDate.objects.exists()
    assert AuditEntry.objects.get(action="day.reopen").detail["reason"] == "盘点"


def test_branch_limited_manager_closes_only_their_branch(merchant, make_offering):
    north, south = make_branch(merchant=merchant), make_branch(merchant=merchant)
    here = make_slot(offering=make_offering(branch=north, title="北店课"), start=at(2, 9))
    there = make_slot(offering=make_offering(branch=south, title="南店课"), start=at(2, 9))
    client = console_client(merchant, "manager", branches=[north])
    day = (TODAY + dt.timedelta(days=2)).isoformat()

    calendar = client.get(reverse("console:calendar"), {"date": day}).content.decode()
    assert "北店课" in calendar and "南店课" not in calendar
    refused = client.post(
        reverse("console:close_day"), {"day": day, "scope": "merchant", "reason": "x", "confirm": "yes"}
    )
    assert refused.status_code == 422
    other = client.post(
        reverse("console:close_day"),
        {"day": day, "scope": "branch", "branch": south.pk, "reason": "x", "confirm": "yes"},
    )
    assert other.status_code == 422
    done = client.post(
        reverse("console:close_day"),
        {"day": day, "scope": "branch", "branch": north.pk, "reason": "停水", "confirm": "yes"},
    )
    assert done.status_code == 302
    assert Slot.objects.get(pk=here.pk).status == SlotStatus.CLOSED
    assert Slot.objects.get(pk=there.pk).status == SlotStatus.OPEN
