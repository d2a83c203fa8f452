"""The dashboard on the demo's history (what `make run` shows): every merchant has numbers to chart."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from stats_world import sign_in

from yuyue import demo
from yuyue.console.access import desk_for
from yuyue.insights import stats
from yuyue.tenants.models import Staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_loaded(demo_db: Any) -> None:
    """The demo, loaded once for every module that reads it (conftest.demo_db)."""


@pytest.mark.parametrize("kind", demo.KINDS)
def test_every_demo_merchant_has_a_dashboard_with_history(demo_loaded, kind):
    owner = Staff.objects.select_related("merchant", "user").get(user__username=f"demo-{kind}-owner")
    desk = desk_for(owner)
    data = stats.dashboard(stats.Scope(desk, stats.Period.parse(desk, {})))  # the default: last 90 days
    assert data["summary"]["bookings"] > 0 and data["summary"]["capacity"] > 0
    assert data["heatmap"]["cells"] and data["fill_by_offering"] and data["top_offerings"]
    assert sum(w["bookings"] for w in data["weekly"]) == data["summary"]["bookings"]
    assert data["revenue"] is not None


def test_the_demo_owner_opens_the_dashboard(demo_loaded):
    owner = Staff.objects.select_related("merchant", "user").get(user__username="demo-course-owner")
    page = sign_in(Client(), owner.user, owner.merchant).get(reverse("console:stats"))
    assert page.status_code == 200
    assert page.context["charts"]["heatmap"]["cells"] and page.context["data"]["ratings"]
