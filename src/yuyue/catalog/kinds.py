"""The six kinds of booking as presets: default form fields and policies, nothing else.

Adding a seventh kind means adding an entry here; the engine does not change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from yuyue.catalog.policy import FormField, NoShowBan, Policy


@dataclass(frozen=True)
class Kind:
    code: str
    label: Promise
    policy: Policy
    form: list[FormField] = field(default_factory=list)


KINDS: dict[str, Kind] = {
    k.code: k
    for k in [
        Kind(
            "activity",
            _("Activity"),
            Policy(opens_days_ahead=30, party="count", max_party_size=1, unique_answers=["phone"]),
            [
                FormField(key="name", label="姓名", type="text", required=True, max_length=30),
                FormField(key="phone", label="手机号", type="phone", required=True),
            ],
        ),
        Kind(
            "vehicle",
            _("Vehicle"),
            Policy(
                opens_days_ahead=30,
                closes_minutes_before_start=60,
                party="count",
                max_party_size=50,
                seats="booking",
                cancel_deadline_hours=2,
            ),
            [
                FormField(key="pickup", label="上车地点", type="text", required=True, max_length=100),
                FormField(key="destination", label="目的地", type="text", required=True, max_length=100),
                FormField(key="contact_phone", label="联系电话", type="phone", required=True),
            ],
        ),
        Kind(
            "course",
            _("Course"),
            Policy(
                opens_days_ahead=14,
                closes_minutes_before_start=30,
                party="count",
                max_party_size=1,
                cancel_deadline_hours=6,
                late_cancel_points=10,
                max_reschedules=2,
                completion_points=10,
                no_show_points=10,
            ),
        ),
        Kind(
            "exhibition",
            _("Exhibition"),
            Policy(
                opens_days_ahead=7,
                release_time=dt.time(20, 0),
                party="people",
                real_name=True,
                max_party_size=5,
                max_minors=3,
                minors_need_adult=True,
                per_person_per_day=1,
                limit_scope="offering",
                cancel_deadline_hours=2,
                holiday_mode="factor",
                holiday_capacity_factor=0.75,
            ),
        ),
        Kind(
            "scenic",
            _("Scenic spot"),
            Policy(
                opens_days_ahead=7,
                release_time=dt.time(20, 0),
                party="people",
                real_name=True,
                max_party_size=5,
                max_minors=3,
                minors_need_adult=True,
                per_person_per_day=1,
                limit_scope="merchant",
                cancel_deadline_hours=2,
                holiday_mode="factor",
                holiday_capacity_factor=0.75,
            ),
        ),
        Kind(
            "clinic",
            _("Clinic registration"),
            Policy(
                opens_days_ahead=7,
                release_time=dt.time(15, 0),
                closes_minutes_before_start=30,
                party="people",
                real_name=True,
                max_party_size=1,
                minors_need_guardian=True,
                per_person_per_day=1,
                limit_scope="group",
                cancel_deadline_hours=2,
                holiday_mode="closed",
                no_show_ban=NoShowBan(count=3, window_days=90, ban_days=90),
            ),
            [FormField(key="symptoms", label="病情描述", type="text", required=False, max_length=200)],
        ),
    ]
}

KIND_CHOICES = [(k.code, k.label) for k in KINDS.values()]
