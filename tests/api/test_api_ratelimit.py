"""The rate limiter: fixed windows that hold across processes, in the database or in Redis.

The concurrency tests race real connections (threads released by a barrier, real commits) so
they prove the conditional UPDATE / unique INSERT on PostgreSQL and MariaDB, and Redis's INCR.
"""

from __future__ import annotations

import datetime as dt
import threading
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from api_helpers import ApiClient
from django.db import connection
from django.test import override_settings
from factories import make_phone, make_slot, make_user
from redisurl import redis_url

from yuyue.accounts import services as accounts
from yuyue.accounts.models import LoginCode, RateCounter
from yuyue.booking.models import Booking
from yuyue.core import ratelimit, timeutil
from yuyue.core.errors import DomainError
from yuyue.integrations.sms import ConsoleSmsBackend

REDIS_URL = redis_url(0)


def race(clients: list[Callable[[], Any]]) -> list[str]:
    """Run every client at once, each in its own thread and connection; 'ok' or the refusal code."""
    barrier = threading.Barrier(len(clients))
    results: list[str] = [""] * len(clients)
    crashes: list[str] = []

    def run(i: int, client: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            outcome = client()
            results[i] = outcome if isinstance(outcome, str) else "ok"
        except DomainError as exc:
            results[i] = exc.code
        except BaseException:
            crashes.append(traceback.format_exc())
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not crashes, "\n".join(crashes)
    return results


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


# --- Behaviour ------------------------------------------------------------------------------------


def test_rates_parse_and_reject_nonsense():
    assert ratelimit.Rate.parse("5/3600, 10/86400") == [ratelimit.Rate(5, 3600), ratelimit.Rate(10, 86400)]
    for bad in ("5", "0/60", "5/0", "x/60"):
        with pytest.raises(ValueError):
            ratelimit.Rate.parse(bad)


@pytest.mark.django_db
def test_a_window_admits_its_limit_then_refuses_until_the_next_window():
    start = dt.datetime(2026, 5, 1, 8, 0, 0, tzinfo=dt.UTC)
    for second in range(3):
        ratelimit.hit("t", "me", "3/60", now=start + dt.timedelta(seconds=second))
    with pytest.raises(DomainError) as refusal:
        ratelimit.hit("t", "me", "3/60", now=start + dt.timedelta(seconds=30))
    assert refusal.value.code == "rate_limited" and refusal.value.details["retry_after"] == 30
    ratelimit.hit("t", "me", "3/60", now=start + dt.timedelta(seconds=60))  # a new window
    ratelimit.hit("t", "someone else", "3/60", now=start + dt.timedelta(seconds=30))


@pytest.mark.django_db
def test_every_rule_must_have_room():
    now = dt.datetime(2026, 5, 1, 8, 0, 0, tzinfo=dt.UTC)
    ratelimit.hit("t2", "me", "10/60,1/3600", now=now)
    with pytest.raises(DomainError):
        ratelimit.hit("t2", "me", "10/60,1/3600", now=now + dt.timedelta(minutes=5))


@pytest.mark.django_db
def test_subjects_are_stored_hashed_and_old_windows_purged():
    now = dt.datetime(2026, 5, 1, 8, 0, 0, tzinfo=dt.UTC)
    ratelimit.hit("t3", "13812345678", "1/60", now=now)
    (row,) = RateCounter.objects.all()
    assert "13812345678" not in row.key
    assert ratelimit.purge_expired(now=now + dt.timedelta(minutes=1)) == 0  # kept a minute past the window
    assert ratelimit.purge_expired(now=now + dt.timedelta(minutes=3)) == 1


@pytest.mark.skipif(not redis_available(), reason=f"no Redis at {REDIS_URL}")
@pytest.mark.django_db
def test_redis_backend_counts_the_same_way():
    name = f"test-{uuid.uuid4().hex}"
    with override_settings(REDIS_URL=REDIS_URL):
        ratelimit.hit(name, "me", "2/60")
        ratelimit.hit(name, "me", "2/60")
        with pytest.raises(DomainError, match=r"^rate_limited"):
            ratelimit.hit(name, "me", "2/60")
    assert not RateCounter.objects.exists()  # nothing went to the database


# --- Under concurrency ----------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(2))
@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_racing_requests_never_exceed_the_limit_in_the_database(attempt):
    name = f"race-{attempt}"
    results = race([lambda: ratelimit.hit(name, "shared", "5/3600") for _ in range(16)])
    assert Counter(results) == {"ok": 5, "rate_limited": 11}
    assert RateCounter.objects.get().hits == 5


@pytest.mark.skipif(not redis_available(), reason=f"no Redis at {REDIS_URL}")
@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_racing_requests_never_exceed_the_limit_in_redis():
    name = f"race-{uuid.uuid4().hex}"
    with override_settings(REDIS_URL=REDIS_URL):
        results = race([lambda: ratelimit.hit(name, "shared", "5/3600") for _ in range(16)])
    assert Counter(results) == {"ok": 5, "rate_limited": 11}


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
@override_settings(RATE_BOOKING_USER="3/3600")
def test_a_burst_of_bookings_from_one_account_is_cut_at_the_limit():
    user = make_user()
    token = accounts.issue_token(user=user)
    start = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=2), dt.time(9, 0))
    slots = [make_slot(start=start + dt.timedelta(hours=h)) for h in range(8)]

    def post(slot_id: int) -> Callable[[], str]:
        def go() -> str:
            response = ApiClient(token).post("/bookings", {"slot_id": slot_id})
            return "ok" if response.status_code == 201 else response.json()["error"]["code"]

        return go

    results = race([post(s.pk) for s in slots])
    assert Counter(results) == {"ok": 3, "rate_limited": 5}
    assert Booking.objects.filter(user=user).count() == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_a_sign_in_code_works_once_however_many_race_with_it():
    phone = make_phone()
    accounts.request_login_code(phone, ip="10.9.9.9")
    message = ConsoleSmsBackend.last_for(phone)
    assert message is not None
    results = race([lambda: accounts.login_with_code(phone, message.params["code"]) for _ in range(6)])
    assert Counter(results) == {"ok": 1, "invalid": 5}


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_parallel_guesses_cannot_exceed_the_attempt_limit():
    phone = make_phone()
    accounts.request_login_code(phone, ip="10.9.9.8")
    message = ConsoleSmsBackend.last_for(phone)
    assert message is not None
    right = message.params["code"]
    guesses = [f"{(int(right) + n) % 10**6:06d}" for n in range(1, 13)]
    results = race([lambda g=g: accounts.login_with_code(phone, g) for g in guesses])
    assert Counter(results) == {"invalid": 12}
    assert LoginCode.objects.get().attempts == 5
    with pytest.raises(DomainError, match=r"^invalid"):
        accounts.login_with_code(phone, right)


@pytest.mark.django_db
def test_when_redis_is_down_the_database_counts(caplog):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{port}/0"):
        ratelimit.hit("down", "me", "1/60")
        with pytest.raises(DomainError, match=r"^rate_limited"):
            ratelimit.hit("down", "me", "1/60")
    assert RateCounter.objects.get().hits == 1
    assert "falls back to the database" in caplog.text
