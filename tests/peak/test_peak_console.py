"""The waiting room is a policy option the merchant sets in the console's offering editor."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from factories import console_client

from yuyue.catalog.models import Offering

# A complete, valid offering form (scenic, no extra questions).
OFFERING = {
    "kind": "scenic",
    "title": "黄金周景区入园",
    "price_yuan": "0",
    "is_active": "on",
    "opens_days_ahead": "7",
    "closes_minutes_before_start": "0",
    "max_party_size": "5",
    "payment": "online",
    "limit_scope": "offering",
    "cancel_deadline_hours": "0",
    "late_cancel_points": "0",
    "late_cancel_refund_percent": "100",
    "max_reschedules": "1",
    "holiday_mode": "normal",
    "holiday_capacity_factor": "1",
    "ff-TOTAL_FORMS": "0",
    "ff-INITIAL_FORMS": "0",
}


@pytest.mark.django_db
def test_the_offering_editor_switches_the_waiting_room_on_and_off(merchant):
    owner = console_client(merchant)
    room = {
        "waiting_room": "on",
        "waiting_room_starts": "08:00",
        "waiting_room_minutes": "45",
        "waiting_room_admit_per_second": "30",
    }
    assert owner.post(reverse("console:offering_new"), {**OFFERING, **room}).status_code == 302
    offering = Offering.objects.get(title="黄金周景区入园")
    assert offering.policy.waiting_room is not None
    assert (offering.policy.waiting_room.starts, offering.policy.waiting_room.minutes) == (dt.time(8, 0), 45)
    assert offering.policy.waiting_room.admit_per_second == 30
    page = owner.get(reverse("console:offering_edit", args=[offering.pk])).content.decode()
    assert re.search(r'<input[^>]*name="waiting_room"[^>]*checked', page)
    assert 'value="45"' in page and 'value="30"' in page

    # Switched on without a rate: refused, nothing saved; switched off: gone.
    missing = owner.post(
        reverse("console:offering_edit", args=[offering.pk]), {**OFFERING, **room, "waiting_room_admit_per_second": ""}
    )
    assert missing.status_code == 422
    zero = owner.post(
        reverse("console:offering_edit", args=[offering.pk]), {**OFFERING, **room, "waiting_room_admit_per_second": "0"}
    )
    assert zero.status_code == 422
    assert owner.post(reverse("console:offering_edit", args=[offering.pk]), OFFERING).status_code == 302
    offering.refresh_from_db()
    offering.__dict__.pop("policy", None)
    assert offering.policy.waiting_room is None
