"""Fixtures for payment tests: a priced offering paid online, a booking awaiting payment, the sandbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from factories import make_offering, make_slot, make_user
from paydom_world import PRICE_FEN

from yuyue.booking import services as engine
from yuyue.core import timeutil
from yuyue.payments.providers import registry
from yuyue.payments.providers.sandbox import SandboxProvider


@pytest.fixture
def sandbox(settings: Any) -> SandboxProvider:
    settings.PAYMENT_SANDBOX = True
    provider = registry.get("sandbox")
    assert isinstance(provider, SandboxProvider)
    return provider


@pytest.fixture
def offering(db: None) -> Any:
    """A yoga drop-in class of ¥88, paid online, free cancellation until 24 h before, 50% after."""
    return make_offering(
        kind="course",
        price_fen=PRICE_FEN,
        policy_overrides={
            "payment": "online",
            "hold_minutes": 15,
            "cancel_deadline_hours": 24,
            "late_cancel_refund_percent": 50,
        },
    )


@pytest.fixture
def slot(offering: Any) -> Any:
    # Three days ahead: "tomorrow 10:00" is inside the 24-hour cancel window in the afternoon.
    start = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=3), dt.time(10, 0))
    return make_slot(offering=offering, capacity=1, start=start)


@pytest.fixture
def customer(db: None) -> Any:
    return make_user()


@pytest.fixture
def booking(customer: Any, slot: Any) -> Any:
    return engine.book(user=customer, slot_id=slot.pk)
