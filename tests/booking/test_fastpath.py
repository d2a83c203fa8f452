"""The sold-out fast path: it answers before the API and the engine, and never differently from them.

Every case is sent twice, through the whole middleware stack with the fast path and without it,
and the answers (status, body, headers) must be the same. Where the fast path answers, the
engine must not have been reached; where it cannot be sure, the request must reach the engine.
"""

from __future__ import annotations

import json
import uuid
from functools import partial

import pytest
import test_gate
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from factories import make_person, make_slot, make_staff
from racing import race
from test_gate import at, seats_add_up

from yuyue.accounts import services as accounts
from yuyue.booking import services
from yuyue.booking.models import Booking

pytestmark = [pytest.mark.django_db(transaction=True)]

redis_gate = test_gate.redis_gate  # the gate's own Redis fixture

FAST_PATH = "yuyue.booking.fastpath.SoldOutMiddleware"
URL = "/api/v1/bookings"


@pytest.fixture
def gate_on(redis_gate):
    """The gate and the token cache on one Redis; per-account booking limits generous."""

    def forget_counts() -> None:  # ids repeat between tests; their rate-limit windows must not
        for key in redis_gate.scan_iter(match="*rl:booking*", count=500):
            redis_gate.delete(key)

    forget_counts()
    with override_settings(TOKEN_CACHE_SECONDS=30, RATE_BOOKING_USER="50/60", RATE_BOOKING_IP="100000/60"):
        yield redis_gate
    forget_counts()


@pytest.fixture
def engine_calls(monkeypatch):
    """How many requests reached the booking engine."""
    calls = []
    real_book = services.book

    def book(**kwargs):
        calls.append(kwargs["slot_id"])
        return real_book(**kwargs)

    monkeypatch.setattr(services, "book", book)
    return calls


def post(token: str | None, body, *, fast: bool = True, key: str | None = None, lang: str = "zh-hans"):
    """One POST /bookings through the whole middleware stack, with or without the fast path."""
    headers = {"HTTP_ACCEPT_LANGUAGE": lang}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if key:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    data = body if isinstance(body, str) else json.dumps(body)
    if fast:  # settings untouched: racing threads may call this at the same time
        return Client().post(URL, data, content_type="application/json", **headers)
    with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m != FAST_PATH]):
        return Client().post(URL, data, content_type="application/json", **headers)


def same_answer(fast, slow) -> None:
    assert fast.status_code == slow.status_code
    assert fast.json() == slow.json()
    assert dict(fast.headers) == dict(slow.headers)


def customer():
    person = make_person()
    return person, accounts.issue_token(user=person.owner)


@pytest.fixture
def full_slot(make_offering, gate_on):
    """A scenic slot whose only seat is taken through the API (so the gate knows it is full)."""
    slot = make_slot(offering=make_offering(kind="scenic"), start=at(10), capacity=1)
    person, token = customer()
    key = uuid.uuid4().hex
    made = post(token, {"slot_id": slot.pk, "people": [person.pk]}, key=key)
    assert made.status_code == 201, made.content
    return slot, person, token, key


def test_sold_out_is_answered_without_the_engine_and_exactly_as_the_engine_answers(full_slot, engine_calls):
    slot, *_ = full_slot
    for lang in ("zh-hans", "en"):
        person, token = customer()
        body = {"slot_id": slot.pk, "people": [person.pk]}
        with CaptureQueriesContext(connection) as queries:
            fast = post(token, body, key=uuid.uuid4().hex, lang=lang)
        assert engine_calls == []
        # At most two reads: the token (when not in the cache yet) and "was this key used?".
        tables = [q["sql"].split(" FROM ")[1].split()[0].strip('"`') for q in queries.captured_queries]
        assert tables[-1] == "booking_idempotencykey" and set(tables) <= {"accounts_apitoken", "booking_idempotencykey"}
        slow = post(token, body, fast=False, key=uuid.uuid4().hex, lang=lang)
        assert engine_calls == [slot.pk]
        engine_calls.clear()
        assert fast.json()["error"]["code"] == "slot_full"
        same_answer(fast, slow)
    assert post(token, body, lang="en").json()["error"]["message"] == "This time slot is fully booked."
    assert seats_add_up(slot) == 1


def test_a_retry_of_a_booking_made_is_answered_by_the_engine_with_that_booking(full_slot, engine_calls):
    slot, person, token, key = full_slot
    again = post(token, {"slot_id": slot.pk, "people": [person.pk]}, key=key)
    assert again.status_code == 200
    assert again.json()["code"] == Booking.objects.get(slot=slot).code
    other_body = post(token, {"slot_id": slot.pk, "people": [person.pk], "answers": {"x": "y"}}, key=key)
    assert other_body.status_code == 422
    assert engine_calls == [slot.pk, slot.pk]
    # Without a key, the same person again: admitted before, so the engine says why not.
    body = {"slot_id": slot.pk, "people": [person.pk]}
    same_answer(post(token, body), post(token, body, fast=False))
    assert engine_calls == [slot.pk] * 4
    assert seats_add_up(slot) == 1


def test_over_the_rate_limit_a_sold_out_request_gets_the_same_429(full_slot, engine_calls):
    slot, *_ = full_slot
    answers = {}
    with override_settings(RATE_BOOKING_USER="1/60"):
        for fast in (True, False):
            person, token = customer()
            body = {"slot_id": slot.pk, "people": [person.pk]}
            assert post(token, body, fast=fast).json()["error"]["code"] == "slot_full"
            answers[fast] = post(token, body, fast=fast)
    assert engine_calls == [slot.pk]  # the first request without the fast path
    fast, slow = answers[True], answers[False]
    assert fast.status_code == slow.status_code == 429
    assert fast.json()["error"]["code"] == slow.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(fast["Retry-After"]) <= 60 and 1 <= int(slow["Retry-After"]) <= 60


def test_requests_the_api_refuses_for_other_reasons_get_the_api_answer(full_slot, merchant, engine_calls):
    slot, *_ = full_slot
    person, token = customer()
    staff_token = accounts.issue_token(staff_user=make_staff(merchant, "owner"))
    disabled, disabled_token = customer()
    disabled.owner.is_active = False
    disabled.owner.save()
    good = {"slot_id": slot.pk, "people": [person.pk]}
    cases = [
        (token, {"slot_id": "x"}, 422),  # the API's validation, not "sold out"
        (token, {**good, "pay_with": "gold"}, 422),
        (token, "{not json", 422),
        (token, [good], 422),
        (None, good, 401),
        ("not-a-token", good, 401),
        (staff_token, good, 403),
        (disabled_token, good, 403),
    ]
    for bearer, body, status in cases:
        fast, slow = post(bearer, body), post(bearer, body, fast=False)
        assert fast.status_code == status, (body, fast.content)
        same_answer(fast, slow)
    too_long_key = post(token, good, key="k" * 101)
    assert too_long_key.status_code == 422
    assert engine_calls == []  # all refused by the API before the engine


def test_while_the_gate_has_seats_or_is_off_the_engine_books(make_offering, gate_on, engine_calls):
    slot = make_slot(offering=make_offering(kind="scenic"), start=at(11), capacity=2)
    first, first_token = customer()
    assert post(first_token, {"slot_id": slot.pk, "people": [first.pk]}).status_code == 201
    with override_settings(BOOKING_GATE=False):
        second, second_token = customer()
        assert post(second_token, {"slot_id": slot.pk, "people": [second.pk]}).status_code == 201
        third, third_token = customer()
        assert post(third_token, {"slot_id": slot.pk, "people": [third.pk]}).json()["error"]["code"] == "slot_full"
    assert engine_calls == [slot.pk] * 3
    assert seats_add_up(slot) == 2


@pytest.mark.concurrency
def test_thirty_clients_through_the_whole_stack_for_five_seats_get_exactly_five(make_offering, gate_on):
    slot = make_slot(offering=make_offering(kind="scenic"), start=at(12), capacity=5)
    crowd = [customer() for _ in range(30)]

    def book(person, token) -> int:
        answer = post(token, {"slot_id": slot.pk, "people": [person.pk]}, key=uuid.uuid4().hex)
        assert answer.status_code in (201, 409), answer.content
        return answer.status_code

    outcomes = race(*[partial(book, person, token) for person, token in crowd])
    statuses = sorted(o.value for o in outcomes)
    assert statuses.count(201) == 5 and statuses.count(409) == 25
    assert seats_add_up(slot) == 5
    # The gate is full now: thirty more are refused before the engine, the seats unchanged.
    outcomes = race(*[partial(book, *customer()) for _ in range(30)])
    assert all(o.value == 409 for o in outcomes)
    assert seats_add_up(slot) == 5
