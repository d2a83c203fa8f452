"""What a booking costs: its outbox rows in one statement, settings read once per few seconds,
the rate-limit windows of a request in one Redis call, and no log line per sold-out answer."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import pytest
from django.db import connection, transaction
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils.log import log_response
from factories import make_merchant, make_offering, make_slot, make_user
from redisurl import redis_url

from yuyue.booking import services
from yuyue.core import ratelimit, timeutil
from yuyue.core.errors import DomainError
from yuyue.notify import outbox
from yuyue.notify.events import EVENT_KIND
from yuyue.notify.models import OfferingReminders, OutboxItem
from yuyue.notify.services import save_reminder_hours
from yuyue.webhooks.models import WebhookEndpoint

REDIS_URL = redis_url(7)


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def start() -> dt.datetime:
    return timeutil.now().replace(microsecond=0) + dt.timedelta(days=3)


def inserts_and_savepoints(queries: CaptureQueriesContext, table: str) -> tuple[int, int]:
    sql = [q["sql"] for q in queries.captured_queries]
    inserts = sum(1 for s in sql if s.upper().startswith("INSERT") and table in s)
    return inserts, sum(1 for s in sql if s.upper().startswith("SAVEPOINT"))


# --- outbox rows -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_enqueue_many_writes_in_one_statement_and_skips_taken_keys() -> None:
    merchant = make_merchant()
    outbox.enqueue("k", {"n": 0}, merchant_id=merchant.pk, key="cost:a")
    rows = [outbox.row("k", {"n": n}, merchant_id=merchant.pk, key=f"cost:{k}") for n, k in enumerate("abc", 1)]
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        outbox.enqueue_many(rows)
        OutboxItem.objects.count()  # the transaction is still usable after the skipped duplicate
    assert inserts_and_savepoints(queries, "notify_outboxitem") == (1, 0)
    # The first row with a key stays; the others are new.
    assert dict(OutboxItem.objects.filter(key__startswith="cost:").values_list("key", "payload__n")) == {
        "cost:a": 0,
        "cost:b": 2,
        "cost:c": 3,
    }


@pytest.mark.django_db
def test_a_confirmed_booking_writes_its_confirmation_and_reminders_in_one_insert(start: dt.datetime) -> None:
    slot = make_slot(start=start)
    WebhookEndpoint.objects.create(merchant=slot.offering.merchant, url="https://crm.example.com/hook")
    with CaptureQueriesContext(connection) as queries:
        booking = services.book(user=make_user(), slot_id=slot.pk)
    # One insert for the notifications (confirmation + 24 h and 2 h reminders), one for the webhook.
    assert inserts_and_savepoints(queries, "notify_outboxitem")[0] == 2
    events = OutboxItem.objects.filter(kind=EVENT_KIND, payload__booking_id=booking.pk)
    assert sorted(e.payload["event"] for e in events) == ["confirmed", "reminder", "reminder"]
    assert OutboxItem.objects.filter(kind="webhook").count() == 1


# --- settings read on every booking ---------------------------------------------------------------


@pytest.mark.django_db
@override_settings(HOT_CACHE_SECONDS=60)
def test_cached_endpoints_and_reminder_hours_follow_changes_at_once(start: dt.datetime) -> None:
    offering = make_offering()
    merchant = offering.merchant
    services.book(user=make_user(), slot_id=make_slot(offering=offering, start=start).pk)  # caches "none"
    assert not OutboxItem.objects.filter(kind="webhook").exists()

    endpoint = WebhookEndpoint.objects.create(merchant=merchant, url="https://crm.example.com/hook")
    save_reminder_hours(offering=offering, raw="48")
    with CaptureQueriesContext(connection) as queries:
        services.book(user=make_user(), slot_id=make_slot(offering=offering, start=start).pk)
    assert OutboxItem.objects.filter(kind="webhook", payload__endpoint=endpoint.pk).count() == 1
    assert OutboxItem.objects.filter(payload__event="reminder", payload__hours=48.0).count() == 1

    # Cached now: the next booking reads neither table.
    with CaptureQueriesContext(connection) as queries:
        services.book(user=make_user(), slot_id=make_slot(offering=offering, start=start).pk)
    read = " ".join(q["sql"] for q in queries.captured_queries if q["sql"].upper().startswith("SELECT"))
    assert "webhooks_webhookendpoint" not in read and "notify_offeringreminders" not in read

    endpoint.is_active = False
    endpoint.save()
    OfferingReminders.objects.filter(offering=offering).delete()
    services.book(user=make_user(), slot_id=make_slot(offering=offering, start=start).pk)
    assert OutboxItem.objects.filter(kind="webhook").count() == 2  # none for the last booking
    assert OutboxItem.objects.filter(payload__event="reminder").count() == 1 + 1 + 2 + 2


# --- rate limits ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("backend", ["database", "redis"])
def test_the_limits_of_one_request_count_in_order_and_stop_at_the_first_refusal(backend: str) -> None:
    if backend == "redis" and not redis_available():
        pytest.skip(f"no Redis at {REDIS_URL}")
    run = uuid.uuid4().hex
    limits = [("cost-user", run, "2/60"), ("cost-ip", run, "3/60,100/3600")]
    with override_settings(REDIS_URL=REDIS_URL if backend == "redis" else ""):
        ratelimit.hit_all(limits)
        ratelimit.hit_all(limits)
        with pytest.raises(DomainError, match=r"^rate_limited"):
            ratelimit.hit_all(limits)  # the account's window is full: the address is not counted
        ratelimit.hit("cost-ip", run, "3/60,100/3600")  # so the address still has its third hit
        with pytest.raises(DomainError, match=r"^rate_limited"):
            ratelimit.hit("cost-ip", run, "3/60,100/3600")


# --- logging --------------------------------------------------------------------------------------


def test_client_errors_are_not_logged_as_warnings_but_server_errors_are(caplog: pytest.LogCaptureFixture) -> None:
    request = RequestFactory().post("/api/v1/bookings")
    with caplog.at_level(logging.INFO, logger="django.request"):
        log_response("Conflict: %s", request.path, response=HttpResponse(status=409), request=request)
        log_response("Too Many Requests: %s", request.path, response=HttpResponse(status=429), request=request)
        log_response("Internal Server Error: %s", request.path, response=HttpResponse(status=500), request=request)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "Internal Server Error: /api/v1/bookings")
    ]
