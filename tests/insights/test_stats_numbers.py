"""Exact statistics of the hand-built studio (tests/insights/stats_world.py), block by block.

What the studio holds, for checking the numbers by hand (visits 2025-03-03 … 2025-03-16):

| slot | local time | capacity | bookings |
|---|---|---|---|
| y1 yoga | Mon 03-03 07:30 | 4 | checked in; no-show; cancelled then refunded (8000); expired hold |
| y2 yoga | Wed 03-05 19:00 | 5 | confirmed; completed; cancelled (refund not recorded yet) |
| y3 yoga | Thu 03-06 12:00 | 3 | closed by the merchant: one paid booking cancelled, 8000 owed |
| p1 pilates | Sat 03-08 10:00 | 10 | two checked in; no-show; cancelled |
| p2 pilates | Tue 03-11 19:00 | 2 | two checked in |
"""

from __future__ import annotations

import datetime as dt

import pytest
from stats_world import PERIOD, WEEK1, WEEK2, Studio, at

from yuyue.console.access import desk_for
from yuyue.core.errors import DomainError
from yuyue.insights import stats
from yuyue.tenants.models import Staff

pytestmark = pytest.mark.django_db


def scope_of(studio: Studio, role: str = "owner", **params: str) -> stats.Scope:
    staff = Staff.objects.select_related("merchant", "user").get(user=studio.staff[role])
    desk = desk_for(staff)
    return stats.Scope(desk, stats.Period.parse(desk, {**PERIOD, **params}))


def test_summary_counts_and_rates(studio):
    assert stats.summary(scope_of(studio)) == {
        "bookings": 13,  # the expired hold is not a booking
        "cancelled": 4,  # the refunded one included
        "no_show": 2,
        "attended": 6,
        "cancellation_rate": 0.3077,  # 4 / 13
        "no_show_rate": 0.25,  # 2 / (2 + 6)
        "seats": 9,
        "capacity": 21,  # the closed slot y3 is left out
        "reserved": 9,
        "fill_rate": 0.4286,
    }


def test_heatmap_counts_in_shanghai_time(studio):
    heatmap = stats.heatmap(scope_of(studio))
    # y1 starts Sunday 23:30 UTC: it is Monday (1), 7 o'clock in Shanghai.
    assert heatmap["cells"] == [
        {"weekday": 1, "hour": 7, "seats": 2},
        {"weekday": 2, "hour": 19, "seats": 2},
        {"weekday": 3, "hour": 19, "seats": 2},
        {"weekday": 6, "hour": 10, "seats": 3},
    ]
    assert len(heatmap["weekdays"]) == 7


def test_weekly_trend_has_every_week_of_the_period(studio):
    weeks = stats.weekly(scope_of(studio))
    assert weeks == [
        {
            "week_start": WEEK1,
            "bookings": 11,
            "cancelled": 4,
            "no_show": 2,
            "attended": 4,
            "cancellation_rate": 0.3636,
            "no_show_rate": 0.3333,
        },
        {
            "week_start": WEEK2,
            "bookings": 2,
            "cancelled": 0,
            "no_show": 0,
            "attended": 2,
            "cancellation_rate": 0.0,
            "no_show_rate": 0.0,
        },
    ]
    # A period starting mid-week still has its week, and weeks without bookings are zeros.
    empty = stats.weekly(scope_of(studio, date_from="2025-03-05", date_to="2025-03-25"))
    assert [w["week_start"] for w in empty] == [WEEK1, WEEK2, WEEK2 + dt.timedelta(7), WEEK2 + dt.timedelta(14)]
    assert empty[3]["bookings"] == 0 and empty[3]["cancellation_rate"] is None


def test_fill_rates_by_offering_branch_and_resource(studio):
    scope = scope_of(studio)
    yoga = {"slots": 2, "capacity": 9, "reserved": 4, "fill_rate": 0.4444}
    pilates = {"slots": 2, "capacity": 12, "reserved": 5, "fill_rate": 0.4167}
    assert stats.fill_by_offering(scope) == [
        {"id": studio.yoga.pk, "name": "晨间瑜伽", "branch": "静安店", **yoga},
        {"id": studio.pilates.pk, "name": "普拉提", "branch": "徐汇店", **pilates},
    ]
    assert stats.fill_by_branch(scope) == [
        {"id": studio.xuhui.pk, "name": "徐汇店", **pilates},
        {"id": studio.jingan.pk, "name": "静安店", **yoga},
    ]
    assert stats.fill_by_resource(scope) == [
        {"id": studio.li.pk, "name": "李教练", "type": "coach", **yoga},
        {"id": studio.wang.pk, "name": "王教练", "type": "coach", **pilates},
    ]


def test_fill_by_slot_lists_one_day_closed_slots_too(studio):
    thursday = scope_of(studio, day="2025-03-06")
    (row,) = stats.fill_by_slot(thursday)
    assert row["id"] == studio.slots["y3"].pk
    assert (row["status"], row["capacity"], row["reserved"], row["fill_rate"]) == ("closed", 3, 0, None)
    assert row["start"] == at(WEEK1 + dt.timedelta(days=3), 12) and row["start"].utcoffset() == dt.timedelta(hours=8)
    (p1,) = stats.fill_by_slot(scope_of(studio, day="2025-03-08"))
    assert (p1["offering"], p1["branch"], p1["reserved"], p1["fill_rate"]) == ("普拉提", "徐汇店", 3, 0.3)


def test_top_offerings_and_their_booked_value(studio):
    assert stats.top_offerings(scope_of(studio)) == [
        {"id": studio.pilates.pk, "name": "普拉提", "bookings": 5, "seats": 5, "amount_fen": 0},
        {"id": studio.yoga.pk, "name": "晨间瑜伽", "bookings": 4, "seats": 4, "amount_fen": 32000},
    ]
    # The front desk sees the ranking without money.
    assert [r["amount_fen"] for r in stats.top_offerings(scope_of(studio, "staff"))] == [None, None]


def test_ratings_of_coaches(studio):
    assert stats.ratings(scope_of(studio)) == [
        {"id": studio.li.pk, "name": "李教练", "type": "coach", "reviews": 2, "average": 4.0, "overall": 4.0},
        {"id": studio.wang.pk, "name": "王教练", "type": "coach", "reviews": 2, "average": 3.0, "overall": 3.0},
    ]
    # Reviews count in the period of the visit they are about: p2 (the second week) has none.
    assert stats.ratings(scope_of(studio, date_from="2025-03-10")) == []


def test_revenue_and_refunds(studio):
    revenue = stats.revenue(scope_of(studio))
    # Booked value: the four kept yoga bookings; paid online: every yoga booking that was paid
    # (7 × 8000, refunded ones included); refunds: y1's refund (arrived), y2's (owed: its cancellation
    # records it) and y3's closure.
    assert {k: v for k, v in revenue.items() if k != "weekly"} == {
        "booked_fen": 32000,
        "paid_fen": 56000,
        "refund_fen": 24000,
        "net_fen": 32000,
    }
    assert revenue["weekly"] == [
        {"week_start": WEEK1, "booked_fen": 32000, "paid_fen": 56000, "refund_fen": 24000, "net_fen": 32000},
        {"week_start": WEEK2, "booked_fen": 0, "paid_fen": 0, "refund_fen": 0, "net_fen": 0},
    ]


@pytest.mark.parametrize("role", ["staff", "coach"])
def test_money_is_for_owners_and_managers_only(studio, role):
    with pytest.raises(DomainError) as refused:
        stats.revenue(scope_of(studio, role))
    assert refused.value.code == "forbidden"
    assert stats.dashboard(scope_of(studio, role))["revenue"] is None
    assert stats.dashboard(scope_of(studio, "manager"))["revenue"]["booked_fen"] == 32000


def test_branch_filter(studio):
    scope = scope_of(studio, branch=str(studio.xuhui.pk))
    summary = stats.summary(scope)
    assert (summary["bookings"], summary["cancelled"], summary["no_show"], summary["attended"]) == (6, 1, 1, 4)
    assert (summary["capacity"], summary["reserved"]) == (12, 5)
    assert [r["name"] for r in stats.fill_by_offering(scope)] == ["普拉提"]
    assert [c["weekday"] for c in stats.heatmap(scope)["cells"]] == [2, 6]
    assert stats.revenue(scope)["paid_fen"] == 0


def test_date_filter(studio):
    scope = scope_of(studio, date_from="2025-03-10", date_to="2025-03-16")
    assert stats.heatmap(scope)["cells"] == [{"weekday": 2, "hour": 19, "seats": 2}]
    assert stats.summary(scope)["bookings"] == 2
    assert [w["week_start"] for w in stats.weekly(scope)] == [WEEK2]
    # The last day counts in full (local midnight to midnight); the day after does not.
    assert stats.summary(scope_of(studio, date_from="2025-03-08", date_to="2025-03-08"))["bookings"] == 4
    assert stats.summary(scope_of(studio, date_from="2025-03-12", date_to="2025-03-30"))["bookings"] == 0


def test_a_coach_sees_only_their_own_classes(studio):
    scope = scope_of(studio, "coach")
    summary = stats.summary(scope)
    assert (summary["bookings"], summary["capacity"], summary["reserved"]) == (7, 9, 4)
    assert [r["name"] for r in stats.fill_by_resource(scope)] == ["李教练"]
    assert [r["name"] for r in stats.ratings(scope)] == ["李教练"]
    assert [r["name"] for r in stats.top_offerings(scope)] == ["晨间瑜伽"]


def test_branch_limited_staff_see_only_their_branch(studio):
    scope = scope_of(studio, "jingan_desk")
    assert [r["name"] for r in stats.fill_by_branch(scope)] == ["静安店"]
    assert stats.summary(scope)["bookings"] == 7
    with pytest.raises(DomainError) as refused:  # the other branch is not theirs to choose
        scope_of(studio, "jingan_desk", branch=str(studio.xuhui.pk))
    assert refused.value.code == "invalid" and "branch" in refused.value.fields


def test_staff_of_one_merchant_never_see_anothers_numbers(studio):
    other = scope_of(studio, "other_owner")
    assert stats.summary(other)["bookings"] == 3
    assert [r["name"] for r in stats.top_offerings(other)] == ["乙馆导览"]
    mine = stats.dashboard(scope_of(studio))
    assert "乙馆导览" not in str(mine) and "乙总馆" not in str(mine)
    assert stats.heatmap(scope_of(studio))["cells"][0] == {"weekday": 1, "hour": 7, "seats": 2}  # not 5
    with pytest.raises(DomainError) as refused:  # naming the other merchant's branch
        scope_of(studio, branch=str(studio.other_branch.pk))
    assert refused.value.code == "invalid" and "branch" in refused.value.fields


def test_live_view_and_its_alert_levels(studio):
    scope = scope_of(studio)
    saturday = stats.live(scope, now=at(WEEK1 + dt.timedelta(days=5), 10, 30))
    assert saturday["date"] == dt.date(2025, 3, 8)
    assert saturday["total"] == {
        "id": None,
        "name": "合计",
        "capacity": 10,
        "booked": 3,
        "checked_in": 2,
        "share": 0.2,
        "level": None,
        "level_label": "正常",
    }
    assert [(r["name"], r["checked_in"]) for r in saturday["by_offering"]] == [("普拉提", 2)]
    assert [(r["name"], r["capacity"]) for r in saturday["by_branch"]] == [("徐汇店", 10)]
    # Tuesday: p2 is full and both came: 100 % → throttle.
    tuesday = stats.live(scope, now=at(WEEK2 + dt.timedelta(days=1), 19, 30))
    assert (tuesday["total"]["checked_in"], tuesday["total"]["capacity"], tuesday["total"]["level"]) == (
        2,
        2,
        "throttle",
    )
    assert tuesday["by_offering"][0]["level_label"] == "限流"
    # The live view keeps the branch filter: nothing of 徐汇店 in 静安店's view.
    jingan = stats.live(scope_of(studio, branch=str(studio.jingan.pk)), now=at(WEEK2 + dt.timedelta(days=1), 19, 30))
    assert jingan["total"]["capacity"] == 0 and jingan["by_offering"] == []


@pytest.mark.parametrize(
    ("checked_in", "capacity", "level"),
    [
        (0, 0, None),
        (79, 100, None),
        (80, 100, "warning"),
        (89, 100, "warning"),
        (90, 100, "alarm"),
        (94, 100, "alarm"),
        (95, 100, "throttle"),
        (100, 100, "throttle"),
        (4, 5, "warning"),
        (19, 20, "throttle"),
    ],
)
def test_alert_level_thresholds(checked_in, capacity, level):
    assert stats.alert_level(checked_in, capacity) == level


def test_alert_labels_in_chinese_and_english():
    from django.utils import translation

    levels = ("warning", "alarm", "throttle", None)
    assert [stats.alert_label(x) for x in levels] == ["预警", "告警", "限流", "正常"]  # the default language
    with translation.override("en"):
        assert [stats.alert_label(x) for x in levels] == ["Warning", "Alarm", "Throttle", "Normal"]


def test_period_defaults_and_refusals(studio):
    staff = Staff.objects.select_related("merchant", "user").get(user=studio.staff["owner"])
    desk = desk_for(staff)
    default = stats.Period.parse(desk, {}, today=dt.date(2025, 3, 16))
    assert (default.date_from, default.date_to, default.day) == (
        dt.date(2024, 12, 17),
        dt.date(2025, 3, 16),
        dt.date(2025, 3, 16),
    )
    only_from = stats.Period.parse(desk, {"date_from": "2025-03-20"}, today=dt.date(2025, 3, 16))
    assert (only_from.date_from, only_from.date_to) == (dt.date(2025, 3, 20), dt.date(2025, 3, 20))
    for params, field in (
        ({"date_from": "2025-13-01"}, "date_from"),
        ({"date_from": "2025-03-10", "date_to": "2025-03-01"}, "date_to"),
        ({"date_from": "2020-01-01", "date_to": "2025-01-01"}, "date_from"),
        ({"branch": "abc"}, "branch"),
        ({"branch": "99999999"}, "branch"),
        ({"day": "yesterday"}, "day"),
    ):
        with pytest.raises(DomainError) as refused:
            stats.Period.parse(desk, params)
        assert refused.value.code == "invalid" and field in refused.value.fields, params


def test_csv_tables_of_each_block(studio):
    from django.utils import translation

    scope = scope_of(studio)
    with translation.override("zh-hans"):  # the default, said here because the headers are the point
        headers, rows = stats.table(scope, "fill_by_offering")
        assert headers == ["项目", "门店", "时段数", "容量", "已约", "满座率（%）"]
        assert [[str(c) for c in row] for row in rows] == [
            ["晨间瑜伽", "静安店", "2", "9", "4", "44.4"],
            ["普拉提", "徐汇店", "2", "12", "5", "41.7"],
        ]
        headers, rows = stats.table(scope, "revenue")
        assert headers[1] == "预约金额（元）"
        assert [str(c) for c in rows[-1]] == ["合计", "320.00", "560.00", "240.00", "320.00"]
        headers, rows = stats.table(scope, "heatmap")
        assert rows[0] == ["星期一", "07:00", 2]
    for name in stats.BLOCKS:
        headers, rows = stats.table(scope, name)
        assert headers and all(len(row) == len(headers) for row in rows), name
    with pytest.raises(DomainError) as refused:
        stats.table(scope_of(studio, "staff"), "revenue")
    assert refused.value.code == "forbidden"
    with pytest.raises(DomainError) as unknown:
        stats.table(scope, "nonsense")
    assert unknown.value.code == "not_found"
