"""CRM webhooks: booking events to a merchant's endpoints, through the outbox, signed per Standard Webhooks.

- ``queue_event(event)`` runs in the engine's transaction (via the ledger hook) and writes one
  outbox row per active endpoint that wants the event's type; the row's ``dedupe_id`` becomes the
  ``webhook-id`` header, stable across retries, so receivers can drop duplicates.
- The outbox calls ``deliver`` (handler of kind ``webhook``); it POSTs the JSON body with the
  ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers
  (``v1,<base64 HMAC-SHA256 of "id.timestamp.body" under the base64-decoded secret>``). A non-2xx
  answer or a network error raises, and the outbox retries with backoff.
- After WEBHOOK_DISABLE_AFTER failures in a row the endpoint is switched off, with the reason
  shown to the merchant on its console page; a success resets the count.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from yuyue.booking.models import Booking, BookingEvent
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.core.hotcache import HotCache
from yuyue.notify import outbox
from yuyue.notify.outbox import OutboxItem
from yuyue.webhooks.models import WebhookAttempt, WebhookEndpoint, new_secret

KIND = "webhook"

# Engine action -> webhook event type (docs/webhooks.md describes each).
EVENT_TYPES: dict[str, str] = {
    "book": "booking.created",
    "approve": "booking.approved",
    "reject": "booking.rejected",
    "confirm": "booking.confirmed",
    "expire": "booking.expired",
    "cancel": "booking.cancelled",
    "close": "booking.cancelled",
    "reschedule": "booking.rescheduled",
    "promote": "booking.waitlist_promoted",
    "check_in": "booking.checked_in",
    "no_show": "booking.no_show",
    "complete": "booking.completed",
    "refund": "booking.refunded",
}
EVENT_TYPE_LABELS: dict[str, Any] = {
    "booking.created": gettext_lazy("booking created"),
    "booking.approved": gettext_lazy("booking approved"),
    "booking.rejected": gettext_lazy("booking rejected"),
    "booking.confirmed": gettext_lazy("booking confirmed (paid)"),
    "booking.expired": gettext_lazy("unpaid booking expired"),
    "booking.cancelled": gettext_lazy("booking cancelled"),
    "booking.rescheduled": gettext_lazy("booking rescheduled"),
    "booking.waitlist_promoted": gettext_lazy("booked from the waiting list"),
    "booking.checked_in": gettext_lazy("checked in"),
    "booking.no_show": gettext_lazy("no-show"),
    "booking.completed": gettext_lazy("completed"),
    "booking.refunded": gettext_lazy("refunded"),
}


class DeliveryFailed(Exception):
    """The endpoint did not answer 2xx; the outbox retries."""


# --- Endpoints -------------------------------------------------------------------------------------


def _clean(url: str, event_types: list[str]) -> tuple[str, list[str]]:
    url = (url or "").strip()
    if not url.startswith(("https://", "http://")) or len(url) > 500:
        raise DomainError("invalid", fields={"url": _("Enter a full http:// or https:// address.")})
    unknown = [t for t in event_types if t not in EVENT_TYPE_LABELS]
    if unknown:
        raise DomainError("invalid", fields={"event_types": _("Unknown event type: %(t)s") % {"t": unknown[0]}})
    return url, sorted(set(event_types))


def create_endpoint(*, merchant_id: int, url: str, event_types: list[str], description: str = "") -> WebhookEndpoint:
    url, types = _clean(url, event_types)
    return WebhookEndpoint.objects.create(
        merchant_id=merchant_id, url=url, event_types=types, description=description[:100]
    )


def update_endpoint(
    endpoint: WebhookEndpoint, *, url: str, event_types: list[str], description: str = ""
) -> WebhookEndpoint:
    endpoint.url, endpoint.event_types = _clean(url, event_types)
    endpoint.description = description[:100]
    endpoint.save(update_fields=["url", "event_types", "description"])
    return endpoint


def set_active(endpoint: WebhookEndpoint, active: bool) -> WebhookEndpoint:
    """Switch an endpoint on or off by hand; switching on clears an automatic disabling."""
    endpoint.is_active = active
    if active:
        endpoint.consecutive_failures, endpoint.disabled_at, endpoint.disabled_reason = 0, None, ""
    endpoint.save(update_fields=["is_active", "consecutive_failures", "disabled_at", "disabled_reason"])
    return endpoint


def rotate_secret(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret"])
    return endpoint


def deliveries(endpoint: WebhookEndpoint) -> Any:
    """The endpoint's outbox rows, newest first (the delivery log)."""
    return OutboxItem.objects.filter(kind=KIND, merchant_id=endpoint.merchant_id, payload__endpoint=endpoint.pk)


def resend(endpoint: WebhookEndpoint, item_id: int) -> bool:
    """Deliver one row again now (same webhook id, a fresh set of attempts)."""
    if not deliveries(endpoint).filter(pk=item_id).exists():
        raise DomainError("not_found")
    return outbox.redeliver(item_id, merchant_id=endpoint.merchant_id)


# --- Events -----------------------------------------------------------------------------------------


def event_body(event: BookingEvent, event_type: str) -> dict[str, Any]:
    """The JSON body (docs/webhooks.md): what happened, and the booking as it is now."""
    booking: Booking = event.booking
    slot, offering = booking.slot, booking.offering
    return {
        "type": event_type,
        "timestamp": event.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "event_id": event.pk,
            "action": event.action,
            "from_status": event.from_status,
            "to_status": event.to_status,
            "actor": event.actor,
            "reason": event.reason,
            "details": event.data,
            "booking": {
                "code": booking.code,
                "status": booking.status,
                "customer_id": booking.user_id,
                "party_size": booking.party_size,
                "seats": booking.seats,
                "amount_fen": booking.amount_fen,
                "paid_fen": booking.paid_fen,
                "created_at": booking.created_at.isoformat(),
                "checked_in_at": booking.checked_in_at.isoformat() if booking.checked_in_at else None,
                "offering": {"id": offering.pk, "title": offering.title, "kind": offering.kind},
                "slot": {"id": slot.pk, "start": slot.start.isoformat(), "end": slot.end.isoformat()},
            },
            "merchant": {"id": booking.merchant_id},
        },
    }


def queue_event(event: BookingEvent) -> int:
    """One outbox row per interested active endpoint, in the caller's transaction."""
    event_type = EVENT_TYPES.get(event.action)
    if event_type is None:
        return 0
    endpoints = [e for e in active_endpoints(event.booking.merchant_id) if e.wants(event_type)]
    if not endpoints:
        return 0
    body = json.loads(json.dumps(event_body(event, event_type), default=str))
    outbox.enqueue_many(
        [
            outbox.row(
                KIND,
                {"endpoint": endpoint.pk, "type": event_type, "body": body},
                merchant_id=endpoint.merchant_id,
                key=f"webhook:{endpoint.pk}:{event.pk}",
            )
            for endpoint in endpoints
        ]
    )
    return len(endpoints)


# A merchant's active endpoints, read on every booking event: kept in the process for a few seconds
# (YUYUE_HOT_CACHE_SECONDS; see core/hotcache.py for how fresh that is).
_endpoints: HotCache[tuple[WebhookEndpoint, ...]] = HotCache("webhook-endpoints")


def active_endpoints(merchant_id: int) -> tuple[WebhookEndpoint, ...]:
    return _endpoints.get(
        merchant_id, lambda: tuple(WebhookEndpoint.objects.filter(merchant_id=merchant_id, is_active=True))
    )


@receiver([post_save, post_delete], sender=WebhookEndpoint, dispatch_uid="webhooks-endpoints-changed")
def _endpoint_changed(sender: type[WebhookEndpoint], instance: WebhookEndpoint, **kwargs: Any) -> None:
    _endpoints.forget(instance.merchant_id)


# --- Signing and delivery -------------------------------------------------------------------------


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value of the Standard Webhooks spec."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@outbox.handler(KIND)
def deliver(item: OutboxItem) -> None:
    endpoint = WebhookEndpoint.objects.filter(pk=item.payload.get("endpoint")).first()
    if endpoint is None:
        raise outbox.Skip("the endpoint was deleted")
    if not endpoint.is_active:
        raise outbox.Skip("the endpoint is disabled")
    body = json.dumps(item.payload["body"], ensure_ascii=False, separators=(",", ":"))
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": "yuyue-webhooks/1",
        "webhook-id": item.dedupe_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(endpoint.secret, item.dedupe_id, timestamp, body),
    }
    started = time.monotonic()
    status_code: int | None = None
    error = ""
    try:
        response = httpx.post(
            endpoint.url,
            content=body.encode(),
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT,
            follow_redirects=False,
        )
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # unreachable, timed out, refused, bad address
        error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    _log_attempt(endpoint, item, status_code, error, int((time.monotonic() - started) * 1000))
    if error:
        raise DeliveryFailed(error)


def _log_attempt(endpoint: WebhookEndpoint, item: OutboxItem, status_code: int | None, error: str, ms: int) -> None:
    with transaction.atomic():
        WebhookAttempt.objects.create(
            endpoint=endpoint,
            outbox_item=item,
            webhook_id=item.dedupe_id,
            event_type=str(item.payload.get("type", ""))[:40],
            ok=not error,
            status_code=status_code,
            error=error[:500],
            duration_ms=ms,
        )
        if not error:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)
            return
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=F("consecutive_failures") + 1)
        limit = int(settings.WEBHOOK_DISABLE_AFTER)
        if limit and WebhookEndpoint.objects.filter(pk=endpoint.pk, consecutive_failures__gte=limit).exists():
            reason = _("Disabled after %(n)d failed deliveries in a row; the last: %(error)s") % {
                "n": limit,
                "error": error,
            }
            WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
                is_active=False, disabled_at=timeutil.now(), disabled_reason=reason[:300]
            )
            _endpoints.forget(endpoint.merchant_id)  # update() sends no signal
