"""Console pages for webhooks: the owner manages endpoints; other roles and other merchants see nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse
from factories import console_client, make_merchant, make_slot, make_user

from yuyue.booking import services as booking
from yuyue.console.models import AuditEntry
from yuyue.notify.outbox import OutboxItem, OutboxStatus
from yuyue.tenants.models import Role
from yuyue.webhooks import services
from yuyue.webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def test_owner_creates_edits_switches_off_and_resends(merchant, make_offering):
    owner = console_client(merchant)
    page = owner.get(reverse("console:webhooks"))
    assert page.status_code == 200 and "booking.cancelled" in page.content.decode()

    created = owner.post(
        reverse("console:webhooks"),
        {
            "url": "https://crm.example.com/in",
            "event_types": ["booking.created", "booking.cancelled"],
            "description": "CRM",
        },
    )
    endpoint = WebhookEndpoint.objects.get(merchant=merchant)
    assert created.status_code == 302 and created["Location"] == reverse("console:webhook", args=[endpoint.pk])
    assert endpoint.event_types == ["booking.cancelled", "booking.created"] and endpoint.secret.startswith("whsec_")
    detail = owner.get(reverse("console:webhook", args=[endpoint.pk])).content.decode()
    assert endpoint.secret in detail

    bad = owner.post(reverse("console:webhook", args=[endpoint.pk]), {"url": "not a url", "event_types": []})
    assert bad.status_code == 400
    owner.post(reverse("console:webhook", args=[endpoint.pk]), {"url": "https://crm.example.com/v2", "event_types": []})
    endpoint.refresh_from_db()
    assert endpoint.url == "https://crm.example.com/v2" and endpoint.event_types == []

    booking.book(user=make_user(), slot_id=make_slot(offering=make_offering()).pk)
    item = OutboxItem.objects.get(kind=services.KIND)
    OutboxItem.objects.filter(pk=item.pk).update(status=OutboxStatus.DEAD, attempts=8, last_error="HTTP 500")
    log = owner.get(reverse("console:webhook", args=[endpoint.pk])).content.decode()
    assert item.dedupe_id in log and "booking.created" in log and "HTTP 500" in log
    owner.post(reverse("console:webhook_resend", args=[endpoint.pk, item.pk]))
    item.refresh_from_db()
    assert item.status == OutboxStatus.PENDING and item.attempts == 0

    owner.post(reverse("console:webhook_active", args=[endpoint.pk]), {"active": "0"})
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    old_secret = endpoint.secret
    owner.post(reverse("console:webhook_secret", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.secret != old_secret
    assert set(AuditEntry.objects.filter(merchant=merchant).values_list("action", flat=True)) >= {
        "webhook.create",
        "webhook.change",
        "webhook.resend",
        "webhook.disable",
        "webhook.secret",
    }


def test_an_endpoint_switched_off_after_failures_shows_a_notice(merchant):
    endpoint = services.create_endpoint(merchant_id=merchant.pk, url="https://crm.example.com/in", event_types=[])
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False, disabled_at=endpoint.created_at, disabled_reason="Disabled after 20 failed deliveries"
    )
    owner = console_client(merchant)
    listing = owner.get(reverse("console:webhooks")).content.decode()
    assert "Disabled after 20 failed deliveries" in listing  # a console message on the list page
    detail = owner.get(reverse("console:webhook", args=[endpoint.pk])).content.decode()
    assert 'data-testid="webhook-disabled"' in detail


def test_front_desk_and_other_merchants_cannot_reach_endpoints(merchant):
    endpoint = services.create_endpoint(merchant_id=merchant.pk, url="https://crm.example.com/in", event_types=[])
    front = console_client(merchant, Role.FRONT_DESK)
    assert front.get(reverse("console:webhooks")).status_code == 403
    stranger = console_client(make_merchant())
    assert stranger.get(reverse("console:webhook", args=[endpoint.pk])).status_code == 404
    assert stranger.post(reverse("console:webhook_active", args=[endpoint.pk]), {"active": "0"}).status_code == 404
    endpoint.refresh_from_db()
    assert endpoint.is_active
