"""CRM webhooks end to end: outbox rows in the booking's transaction, signed deliveries to a local
receiver verified with the ``standardwebhooks`` library, retries, auto-disabling, re-sending."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from factories import make_slot, make_user
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from yuyue.booking import services as booking
from yuyue.core.errors import DomainError
from yuyue.notify import outbox
from yuyue.notify.outbox import OutboxItem, OutboxStatus
from yuyue.webhooks import services
from yuyue.webhooks.models import WebhookAttempt, WebhookEndpoint, new_secret

pytestmark = pytest.mark.django_db


@dataclass
class Receiver:
    """A CRM on 127.0.0.1: records each request and answers with the next queued status (else 204)."""

    url: str = ""
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def verified(self, secret: str) -> list[dict]:
        """Every body, checked the way a receiver checks it (raises if a signature is wrong)."""
        return [Webhook(secret).verify(body, headers) for headers, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.statuses.pop(0) if state.statuses else 204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/yuyue"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def slot(make_offering):
    return make_slot(offering=make_offering(), capacity=1)


def webhook_items() -> list[OutboxItem]:
    return list(OutboxItem.objects.filter(kind=services.KIND).order_by("id"))


def test_events_become_one_outbox_row_per_interested_endpoint(merchant, slot, receiver):
    everything = services.create_endpoint(merchant_id=merchant.pk, url=receiver.url, event_types=[])
    cancels = services.create_endpoint(merchant_id=merchant.pk, url=receiver.url, event_types=["booking.cancelled"])
    services.set_active(services.create_endpoint(merchant_id=merchant.pk, url=receiver.url, event_types=[]), False)

    made = booking.book(user=make_user(), slot_id=slot.pk)
    assert [(i.payload["endpoint"], i.payload["type"]) for i in webhook_items()] == [(everything.pk, "booking.created")]
    with pytest.raises(DomainError):  # refused bookings queue nothing: the rows share the transaction
        booking.book(user=make_user(), slot_id=slot.pk)
    assert len(webhook_items()) == 1

    booking.cancel(booking=made, by=made.user, reason="sick")
    rows = webhook_items()[1:]
    assert sorted((i.payload["endpoint"], i.payload["type"]) for i in rows) == [
        (everything.pk, "booking.cancelled"),
        (cancels.pk, "booking.cancelled"),
    ]
    body = rows[0].payload["body"]
    assert body["data"]["booking"]["code"] == made.code and body["data"]["reason"] == "sick"
    assert body["data"]["booking"]["status"] == "cancelled" and body["timestamp"].endswith("Z")


def test_deliveries_carry_standard_webhooks_signatures(merchant, slot, receiver):
    endpoint = services.create_endpoint(merchant_id=merchant.pk, url=receiver.url, event_types=[])
    made = booking.book(user=make_user(), slot_id=slot.pk)

    outbox.deliver_due()
    [item] = webhook_items()
    assert item.status == OutboxStatus.DELIVERED
    [payload] = receiver.verified(endpoint.secret)
    assert payload["type"] == "booking.created" and payload["data"]["booking"]["code"] == made.code
    headers, body = receiver.requests[0]
    assert headers["webhook-id"] == item.dedupe_id
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):  # a receiver with another secret refuses it
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):  # so does a changed body
        Webhook(endpoint.secret).verify(body.replace(made.code.encode(), b"XXXXXXXX"), headers)
    [attempt] = WebhookAttempt.objects.filter(endpoint=endpoint)
    assert attempt.ok and attempt.status_code == 204 and attempt.webhook_id == item.dedupe_id


def test_non_2xx_is_retried_with_the_same_webhook_id(merchant, slot, receiver):
    endpoint = services.create_endpoint(merchant_id=merchant.pk, url=receiver.url, event_types=[])
    booking.book(user=make_user(), slot_id=slot.pk)
    receiver.statuses = [500, 302]

    outbox.deliver_due()
    [item] = webhook_items()
    assert item.status == OutboxStatus.FAILED and "HTTP 500" in item.last_error
    OutboxItem.objects.filter(pk=item.pk).update(next_attempt_at=item.created_at)  # the backoff is over
    outbox.deliver_due()
    item.refresh_from_db()
    assert item.status == OutboxStatus.FAILED and "HTTP 302" in item.last_error  # a redirect is no delivery
    OutboxItem.objects.filter(pk=item.pk).update(next_attempt_at=item.created_at)
    outbox.deliver_due()

    item.refresh_from_db()
    assert item.status == OutboxStatus.DELIVERED and item.attempts == 3
    assert {h["webhook-id"] for h, _b in receiver.requests} == {item.dedupe_id}
    assert len(receiver.verified(endpoint.secret)) == 3
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0  # the success reset the count
    assert list(
        WebhookAttempt.objects.filter(endpoint=endpoint).order_by("id").values_list("status_code", flat=True)
    ) == [
        500,
        302,
        204,
    ]


def test_repeated_failures_switch_the_endpoint_off_with_a_notice(merchant, make_offering, receiver, settings):
    settings.WEBHOOK_DISABLE_AFTER = 3
    endpoint = services.create_endpoint(merchant_id=merchant.pk, url=receiver.url, event_types=[])
    big = make_slot(offering=make_offering(), capacity=10)
    for _ in range(4):
        booking.book(user=make_user(), slot_id=big.pk)
    receiver.statuses = [503] * 10

    outbox.deliver_due()

    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_at is not None
    assert "3" in endpoint.disabled_reason and "HTTP 503" in endpoint.disabled_reason
    assert len(receiver.requests) == 3  # the fourth row is not sent to a switched-off endpoint
    assert [i.status for i in webhook_items()] == [OutboxStatus.FAILED] * 3 + [OutboxStatus.SKIPPED]
    booking.book(user=make_user(), slot_id=big.pk)
    assert len(webhook_items()) == 4  # nothing new is queued for it

    services.set_active(endpoint, True)
    assert endpoint.consecutive_failures == 0 and endpoint.disabled_reason == ""


def test_unreachable_endpoint_counts_as_a_failure(merchant, slot):
    endpoint = services.create_endpoint(merchant_id=merchant.pk, url="http://127.0.0.1:9/nothing", event_types=[])
    booking.book(user=make_user(), slot_id=slot.pk)
    outbox.deliver_due()
    [attempt] = WebhookAttempt.objects.filter(endpoint=endpoint)
    assert not attempt.ok and attempt.status_code is None and "Connect" in attempt.error


def test_manual_resend_sends_the_same_message_again(merchant, slot, receiver):
    endpoint = services.create_endpoint(merchant_id=merchant.pk, url=receiver.url, event_types=[])
    booking.book(user=make_user(), slot_id=slot.pk)
    outbox.deliver_due()
    [item] = webhook_items()

    assert services.resend(endpoint, item.pk)
    outbox.deliver_due()
    item.refresh_from_db()
    assert item.status == OutboxStatus.DELIVERED
    first, second = receiver.verified(endpoint.secret)
    assert first == second
    assert receiver.requests[0][0]["webhook-id"] == receiver.requests[1][0]["webhook-id"] == item.dedupe_id
    other = services.create_endpoint(merchant_id=merchant.pk, url=receiver.url, event_types=[])
    with pytest.raises(DomainError):  # a row of another endpoint
        services.resend(other, item.pk)


def test_bad_endpoint_input_is_refused_and_changes_nothing(merchant):
    with pytest.raises(DomainError) as bad_url:
        services.create_endpoint(merchant_id=merchant.pk, url="ftp://crm.example.com", event_types=[])
    assert "url" in bad_url.value.fields
    with pytest.raises(DomainError) as bad_type:
        services.create_endpoint(merchant_id=merchant.pk, url="https://crm.example.com", event_types=["booking.eaten"])
    assert "event_types" in bad_type.value.fields
    assert not WebhookEndpoint.objects.exists()


def test_signature_matches_the_spec_example():
    # The example of the Standard Webhooks specification (github.com/standard-webhooks/standard-webhooks).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"test": 2432232314}'
    assert services.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
    assert json.loads(body)  # the body is signed byte for byte as sent
