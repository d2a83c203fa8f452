"""Weekly rules edited by staff: future slots follow, bookings are never lost, resources never doubled."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import make_resource, make_schedule, make_user

from yuyue.booking import services as engine
from yuyue.catalog.models import ResourceType
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.scheduling import services
from yuyue.scheduling.models import Schedule, Slot, SlotStatus
from yuyue.scheduling.services import ScheduleSpec

pytestmark = pytest.mark.django_db

TODAY = timeutil.today()
# A fixed "now": early morning of today, so every slot from today on is in the future.
NOW = timeutil.local_datetime(TODAY, dt.time(0, 30))


def spec(**changes) -> ScheduleSpec:
    values = dict(
        weekdays=list(range(7)),
        start_time=dt.time(9),
        end_time=dt.time(10),
        capacity=10,
        valid_from=TODAY,
    )
    values.update(changes)
    return ScheduleSpec(**values)


def future_slots(schedule: Schedule):
    return Slot.objects.filter(schedule=schedule, start__gte=NOW, status=SlotStatus.OPEN).order_by("start")


def day_at(days: int, hour: int, minute: int = 0) -> dt.datetime:
    return timeutil.local_datetime(TODAY + dt.timedelta(days=days), dt.time(hour, minute))


def test_a_new_rule_makes_its_slots_for_the_horizon(make_offering):
    offering = make_offering()

    change = services.save_schedule(offering=offering, spec=spec(slot_minutes=30), now=NOW)

    assert change.created == services.HORIZON_DAYS * 2
    assert future_slots(change.schedule).count() == services.HORIZON_DAYS * 2
    assert {s.capacity for s in future_slots(change.schedule)} == {10}


def test_editing_capacity_and_price_reaches_future_slots_but_never_below_what_is_booked(make_offering):
    offering = make_offering(policy_overrides={"opens_days_ahead": 60})
    schedule = services.save_schedule(offering=offering, spec=spec(capacity=5), now=NOW).schedule
    busy = future_slots(schedule)[1]
    for _ in range(4):
        engine.book(user=make_user(), slot_id=busy.pk)

    change = services.save_schedule(offering=offering, schedule=schedule, spec=spec(capacity=2, price_fen=800), now=NOW)

    busy.refresh_from_db()
    assert busy.capacity == 4 and busy.reserved == 4  # held at what is booked
    assert [s.pk for s in change.held] == [busy.pk]
    others = future_slots(schedule).exclude(pk=busy.pk)
    assert {s.capacity for s in others} == {2}
    assert {s.price_fen for s in future_slots(schedule)} == {800}
    assert change.created == 0


def test_removing_weekdays_removes_empty_slots_and_reports_booked_ones(make_offering):
    offering = make_offering(policy_overrides={"opens_days_ahead": 60})
    schedule = services.save_schedule(offering=offering, spec=spec(), now=NOW).schedule
    booked = next(s for s in future_slots(schedule) if timeutil.local_date(s.start).weekday() == 6)
    booking = engine.book(user=make_user(), slot_id=booked.pk)

    change = services.save_schedule(offering=offering, schedule=schedule, spec=spec(weekdays=[0, 1, 2, 3, 4]), now=NOW)

    days = {timeutil.local_date(s.start).weekday() for s in future_slots(schedule).exclude(pk=booked.pk)}
    assert days == {0, 1, 2, 3, 4}
    assert [s.pk for s in change.kept] == [booked.pk]  # reported, not dropped
    booked.refresh_from_db()
    assert booked.status == SlotStatus.OPEN and booked.reserved == 1
    booking.refresh_from_db()
    assert booking.status == "confirmed"
    assert (
        change.removed == sum(1 for d in range(services.HORIZON_DAYS) if (TODAY + dt.timedelta(d)).weekday() >= 5) - 1
    )


def test_moving_the_time_replaces_empty_slots_and_can_move_back(make_offering):
    offering = make_offering()
    schedule = services.save_schedule(offering=offering, spec=spec(), now=NOW).schedule

    services.save_schedule(
        offering=offering, schedule=schedule, spec=spec(start_time=dt.time(14), end_time=dt.time(15)), now=NOW
    )
    assert {timeutil.local_datetime(TODAY, dt.time(14)).hour} == {
        s.start.astimezone(timeutil.local_zone()).hour for s in future_slots(schedule)
    }
    services.save_schedule(offering=offering, schedule=schedule, spec=spec(), now=NOW)
    assert {s.start.astimezone(timeutil.local_zone()).hour for s in future_slots(schedule)} == {9}
    assert future_slots(schedule).count() == services.HORIZON_DAYS


def test_switching_a_rule_off_removes_its_empty_future_slots(make_offering):
    offering = make_offering()
    schedule = services.save_schedule(offering=offering, spec=spec(), now=NOW).schedule

    change = services.set_schedule_active(schedule=schedule, active=False, now=NOW)

    assert change.removed == services.HORIZON_DAYS
    assert not future_slots(schedule).exists()
    assert services.set_schedule_active(schedule=schedule, active=True, now=NOW).created == services.HORIZON_DAYS


def test_bad_input_is_refused_field_by_field_and_saves_nothing(make_offering, merchant):
    offering = make_offering()
    stranger = make_resource()  # another merchant's coach

    with pytest.raises(DomainError) as refusal:
        services.save_schedule(
            offering=offering,
            spec=spec(
                weekdays=[], end_time=dt.time(8), capacity=0, resources=[stranger], valid_until=TODAY - dt.timedelta(1)
            ),
            now=NOW,
        )

    assert refusal.value.code == "invalid"
    assert set(refusal.value.fields) == {"weekdays", "end_time", "capacity", "resources", "valid_until"}
    assert not Schedule.objects.exists()


def test_slot_longer_than_the_opening_hours_is_refused(make_offering):
    with pytest.raises(DomainError) as refusal:
        services.save_schedule(offering=make_offering(), spec=spec(slot_minutes=90), now=NOW)
    assert set(refusal.value.fields) == {"slot_minutes"}


def test_holiday_factor_change_applies_to_future_holiday_slots(make_offering):
    from yuyue.catalog.services import OfferingSpec, save_offering

    # National Day week 2026 seen from late September.
    now = timeutil.local_datetime(dt.date(2026, 9, 25), dt.time(8))
    holiday, workday = dt.date(2026, 10, 2), dt.date(2026, 10, 12)
    assert timeutil.is_statutory_holiday(holiday) and not timeutil.is_statutory_holiday(workday)
    offering = make_offering(kind="course", policy_overrides={"opens_days_ahead": None})
    schedule = services.save_schedule(
        offering=offering, spec=spec(capacity=100, valid_from=dt.date(2026, 9, 25)), now=now
    ).schedule
    on_holiday = Slot.objects.get(schedule=schedule, start=timeutil.local_datetime(holiday, dt.time(9)))
    on_workday = Slot.objects.get(schedule=schedule, start=timeutil.local_datetime(workday, dt.time(9)))
    for _ in range(70):
        engine.book(user=make_user(), slot_id=on_holiday.pk, now=now)

    save_offering(
        merchant=offering.merchant,
        offering=offering,
        spec=OfferingSpec(
            kind="course", title=offering.title, policy={"holiday_mode": "factor", "holiday_capacity_factor": 0.5}
        ),
        now=now,
    )

    on_holiday.refresh_from_db()
    on_workday.refresh_from_db()
    assert on_holiday.capacity == 70  # would be 50, but 70 places are booked
    assert on_workday.capacity == 100
    assert (
        Slot.objects.get(schedule=schedule, start=timeutil.local_datetime(dt.date(2026, 10, 3), dt.time(9))).capacity
        == 50
    )


# --- resource conflicts ------------------------------------------------------------------------


def test_a_coach_cannot_get_two_overlapping_rules_even_across_branches(merchant, make_offering):
    from factories import make_branch

    coach = make_resource(merchant=merchant, name="王教练")
    yoga = make_offering(branch=make_branch(merchant=merchant), title="流瑜伽")
    pilates = make_offering(branch=make_branch(merchant=merchant), title="普拉提")
    services.save_schedule(offering=yoga, spec=spec(weekdays=[1], resources=[coach]), now=NOW)

    with pytest.raises(DomainError) as refusal:
        services.save_schedule(
            offering=pilates,
            spec=spec(weekdays=[1, 3], start_time=dt.time(9, 30), end_time=dt.time(11), resources=[coach]),
            now=NOW,
        )

    assert refusal.value.code == "conflict"
    assert "王教练" in refusal.value.message and "流瑜伽" in refusal.value.message
    assert not Schedule.objects.filter(offering=pilates).exists()


def test_rules_of_one_coach_on_other_days_or_times_are_fine(merchant, make_offering):
    coach = make_resource(merchant=merchant)
    services.save_schedule(offering=make_offering(), spec=spec(weekdays=[1], resources=[coach]), now=NOW)
    services.save_schedule(offering=make_offering(), spec=spec(weekdays=[2], resources=[coach]), now=NOW)
    services.save_schedule(
        offering=make_offering(),
        spec=spec(weekdays=[1], start_time=dt.time(10), end_time=dt.time(11), resources=[coach]),
        now=NOW,
    )
    assert Schedule.objects.count() == 3


def test_a_rule_is_refused_over_a_one_off_slot_of_its_coach(merchant, make_offering):
    driver = make_resource(merchant=merchant, type=ResourceType.DRIVER, name="李师傅")
    trip = make_offering(kind="vehicle", title="机场接送")
    services.add_slot(offering=trip, start=day_at(3, 9, 30), end=day_at(3, 11), capacity=1, resources=[driver], now=NOW)

    with pytest.raises(DomainError) as refusal:
        services.save_schedule(offering=make_offering(kind="vehicle"), spec=spec(resources=[driver]), now=NOW)

    assert refusal.value.code == "conflict" and "机场接送" in refusal.value.message


def test_a_one_off_slot_is_refused_over_a_rule_not_yet_made_into_slots(merchant, make_offering):
    doctor = make_resource(merchant=merchant, type=ResourceType.DOCTOR, name="张医生")
    # Valid only from 60 days on: no slot exists yet for those days.
    make_schedule(
        offering=make_offering(kind="clinic", title="内科"), valid_from=TODAY + dt.timedelta(60), resources=[doctor]
    )

    with pytest.raises(DomainError) as refusal:
        services.add_slot(
            offering=make_offering(kind="clinic"),
            start=day_at(70, 9, 30),
            end=day_at(70, 10, 30),
            capacity=5,
            resources=[doctor],
            now=NOW,
        )
    assert refusal.value.code == "conflict" and "内科" in refusal.value.message
    # Outside the rule's hours it is fine.
    services.add_slot(
        offering=make_offering(kind="clinic"),
        start=day_at(70, 13),
        end=day_at(70, 14),
        capacity=5,
        resources=[doctor],
        now=NOW,
    )


def test_a_closed_slot_does_not_block_its_coach_until_reopened(merchant, make_offering):
    coach = make_resource(merchant=merchant)
    first = services.add_slot(
        offering=make_offering(), start=day_at(2, 9), end=day_at(2, 10), capacity=5, resources=[coach], now=NOW
    )
    services.close_slot(slot=first, reason="教练请假", by=None, now=NOW)

    services.add_slot(
        offering=make_offering(), start=day_at(2, 9), end=day_at(2, 10), capacity=5, resources=[coach], now=NOW
    )

    first.refresh_from_db()
    with pytest.raises(DomainError) as refusal:
        services.reopen_slot(slot=first, now=NOW)
    assert refusal.value.code == "conflict"


def test_a_one_off_slot_in_the_past_is_refused(make_offering):
    with pytest.raises(DomainError) as refusal:
        services.add_slot(offering=make_offering(), start=NOW - dt.timedelta(hours=1), end=NOW, capacity=1, now=NOW)
    assert set(refusal.value.fields) == {"start"}


def test_changing_a_rules_coach_moves_the_claims_of_booked_slots(merchant, make_offering):
    from yuyue.booking.models import ResourceClaim

    old, new = make_resource(merchant=merchant), make_resource(merchant=merchant)
    offering = make_offering(policy_overrides={"opens_days_ahead": 60})
    schedule = services.save_schedule(offering=offering, spec=spec(resources=[old]), now=NOW).schedule
    slot = future_slots(schedule)[2]
    engine.book(user=make_user(), slot_id=slot.pk)
    assert ResourceClaim.objects.filter(slot=slot, resource=old).exists()

    services.save_schedule(offering=offering, schedule=schedule, spec=spec(resources=[new]), now=NOW)

    assert list(ResourceClaim.objects.filter(slot=slot).values_list("resource_id", flat=True)) == [new.pk]
    assert set(slot.resources.values_list("pk", flat=True)) == {new.pk}


def test_a_price_edit_keeps_the_capacity_set_on_a_single_slot(make_offering):
    offering = make_offering()
    schedule = services.save_schedule(offering=offering, spec=spec(capacity=10), now=NOW).schedule
    bigger_room = future_slots(schedule)[3]
    services.change_capacity(slot_id=bigger_room.pk, capacity=25)

    services.save_schedule(offering=offering, schedule=schedule, spec=spec(capacity=10, price_fen=990), now=NOW)

    bigger_room.refresh_from_db()
    assert (bigger_room.capacity, bigger_room.price_fen) == (25, 990)
    services.save_schedule(offering=offering, schedule=schedule, spec=spec(capacity=12, price_fen=990), now=NOW)
    bigger_room.refresh_from_db()
    assert bigger_room.capacity == 12  # the rule's capacity changed: every future slot follows


def test_switching_the_holiday_rule_back_to_normal_restores_full_capacity(make_offering):
    from yuyue.catalog.services import OfferingSpec, save_offering

    now = timeutil.local_datetime(dt.date(2026, 9, 25), dt.time(8))
    offering = make_offering(policy_overrides={"holiday_mode": "factor", "holiday_capacity_factor": 0.5})
    schedule = services.save_schedule(
        offering=offering, spec=spec(capacity=40, valid_from=dt.date(2026, 9, 25)), now=now
    ).schedule
    holiday = Slot.objects.get(schedule=schedule, start=timeutil.local_datetime(dt.date(2026, 10, 3), dt.time(9)))
    assert holiday.capacity == 20

    save_offering(
        merchant=offering.merchant,
        offering=offering,
        spec=OfferingSpec(kind="course", title=offering.title, policy={"holiday_mode": "normal"}),
        now=now,
    )

    holiday.refresh_from_db()
    assert holiday.capacity == 40
