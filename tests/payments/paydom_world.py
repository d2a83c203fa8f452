"""Helpers for payment tests (a module with a unique name: test directories are not packages)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from yuyue.booking.models import ACTIVE_STATUSES, Booking
from yuyue.notify import outbox
from yuyue.payments import services
from yuyue.payments.models import MONEY_IN, Payment, Refund
from yuyue.payments.providers.base import PaymentResult
from yuyue.payments.providers.sandbox import SandboxProvider
from yuyue.scheduling.models import Slot

PRICE_FEN = 8800


def open_payment(booking: Booking, now: dt.datetime | None = None) -> Payment:
    return services.start_payment(booking=booking, provider_name="sandbox", now=now).payment


def deliver(sandbox: SandboxProvider, result: Any, **tamper: Any) -> Any:
    """Send the sandbox's signed notification about ``result`` (fields changed by ``tamper`` before signing)."""
    if tamper:
        result = PaymentResult(**{**{f: getattr(result, f) for f in result.__dataclass_fields__}, **tamper})
    headers, body = sandbox.notification(result)
    return services.receive_notification(provider_name="sandbox", headers=headers, body=body)


def send_refunds(now: dt.datetime | None = None) -> int:
    """Run the outbox as the worker would (refunds are sent there, after commit)."""
    return outbox.deliver_all_due(now=now)


def assert_money_adds_up(*slots: Slot) -> None:
    """Seats equal the active bookings' seats; money received is on a confirmed booking or on its way back."""
    for slot in slots:
        slot.refresh_from_db()
        held = sum(Booking.objects.filter(slot=slot, status__in=ACTIVE_STATUSES).values_list("seats", flat=True))
        assert slot.reserved == held <= slot.capacity
    for payment in Payment.objects.filter(state__in=MONEY_IN).select_related("booking"):
        refunded = sum(Refund.objects.filter(payment=payment).values_list("refund_fen", flat=True))
        if payment.booking.status not in ACTIVE_STATUSES:
            assert refunded >= payment.amount_fen or payment.booking.paid_fen, payment
        else:
            assert payment.booking.paid_fen == payment.amount_fen or refunded == payment.amount_fen, payment


class ApiClient:
    """A test client that sends JSON and the bearer token of ``user``."""

    def __init__(self, user: Any) -> None:
        from django.test import Client

        from yuyue.accounts.services import issue_token

        self.client = Client()
        self.headers = {"Authorization": f"Bearer {issue_token(user=user)}"}

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.client.get("/api/v1" + path, params or {}, headers=self.headers)

    def post(self, path: str, body: Any = None) -> Any:
        return self.client.post("/api/v1" + path, body or {}, content_type="application/json", headers=self.headers)


def signed_in_browser(user: Any) -> Any:
    """A test client signed in to the H5 pages as ``user`` (as after the SMS sign-in)."""
    from django.test import Client

    from yuyue.h5.auth import SESSION_KEY

    client = Client()
    session = client.session
    session[SESSION_KEY] = user.pk
    session.save()
    return client
