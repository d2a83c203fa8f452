"""Peak protection: booking and sign-in limits per address and per phone, both counters (database
and Redis), switched off for benchmarks, and exact when requests race on PostgreSQL and MariaDB."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from factories import make_slot, make_user
from racing import race, tally
from redisurl import redis_url

from yuyue.accounts import services as accounts
from yuyue.accounts.models import RateCounter
from yuyue.booking.models import Booking
from yuyue.core import ratelimit
from yuyue.core.errors import DomainError
from yuyue.h5.auth import SESSION_KEY
from yuyue.integrations.sms import ConsoleSmsBackend

REDIS_URL = redis_url(3)


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


needs_redis = pytest.mark.skipif(not redis_available(), reason=f"no Redis at {REDIS_URL}")


# Addresses and phones the tests counted for; their Redis windows are removed afterwards.
_subjects: list[str] = []


@pytest.fixture(params=["database", pytest.param("redis", marks=needs_redis)])
def backend(request: pytest.FixtureRequest, settings: Any) -> Iterator[str]:
    """Run the test once with the database counting and once with Redis counting."""
    settings.REDIS_URL = REDIS_URL if request.param == "redis" else ""
    settings.BOOKING_GATE = False  # the seat gate's own tests cover it; here slot ids repeat between tests
    yield request.param
    if request.param == "redis":
        import redis

        from yuyue.core.personal import normalize_phone, phone_hash

        client = redis.Redis.from_url(REDIS_URL)
        for subject in _subjects:
            for text in (subject, phone_hash(normalize_phone(subject)) if subject.startswith("139") else subject):
                digest = hashlib.sha256(text.encode()).hexdigest()[:32]
                for key in client.scan_iter(f"rl:*:{digest}:*"):
                    client.delete(key)
        _subjects.clear()


def fresh_ip() -> str:
    # Redis windows outlive a test: every test counts for an address of its own.
    ip = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    _subjects.append(ip)
    return ip


def fresh_phone() -> str:
    phone = f"139{random.randrange(10**8):08d}"
    _subjects.append(phone)
    return phone


def book_via_api(user: Any, slot_id: int, ip: str, **headers: str) -> Any:
    token = accounts.issue_token(user=user)
    return Client().post(
        "/api/v1/bookings",
        {"slot_id": slot_id},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", **headers},
        REMOTE_ADDR=ip,
    )


def h5_client(user: Any, ip: str) -> Client:
    client = Client(REMOTE_ADDR=ip, headers={"Accept-Language": "zh-hans"})
    session = client.session
    session[SESSION_KEY] = user.pk
    session.save()
    return client


# --- Booking per address --------------------------------------------------------------------------


@pytest.mark.django_db
def test_bookings_from_one_address_are_cut_at_the_limit_api_and_h5_alike(backend, settings):
    settings.RATE_BOOKING_IP = "3/2592000"
    settings.RATE_BOOKING_USER = "off"
    slot = make_slot(capacity=20)
    ip = fresh_ip()
    answers = [book_via_api(make_user(), slot.pk, ip, **{"Accept-Language": "zh-hans"}) for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201]

    # The H5 booking form counts on the same counter: the third booking is allowed, the fourth not.
    h5 = h5_client(make_user(), ip)
    assert h5.post(f"/slots/{slot.pk}/book/", {"action": "book", "party_size": "1"}).status_code == 302
    refused_page = h5_client(make_user(), ip).post(f"/slots/{slot.pk}/book/", {"action": "book", "party_size": "1"})
    assert "请求过于频繁" in refused_page.content.decode()

    refused = book_via_api(make_user(), slot.pk, ip, **{"Accept-Language": "zh-hans"})
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limited" and "请求过于频繁" in error["message"]
    assert 1 <= int(refused["Retry-After"]) <= 2592000 and error["retry_after"] == refused["Retry-After"]
    assert Booking.objects.count() == 3
    # Another address is not affected.
    assert book_via_api(make_user(), slot.pk, fresh_ip()).status_code == 201
    assert RateCounter.objects.exists() == (backend == "database")


@pytest.mark.django_db
def test_behind_a_proxy_the_address_comes_from_the_configured_header(settings):
    settings.RATE_BOOKING_IP = "1/2592000"
    settings.RATE_BOOKING_USER = "off"
    settings.CLIENT_IP_HEADER = "X-Real-IP"
    slot = make_slot(capacity=20)
    proxy = fresh_ip()  # every request arrives from the proxy; the header tells the clients apart
    first, second = fresh_ip(), fresh_ip()
    assert book_via_api(make_user(), slot.pk, proxy, **{"X-Real-IP": first}).status_code == 201
    assert book_via_api(make_user(), slot.pk, proxy, **{"X-Real-IP": second}).status_code == 201
    assert book_via_api(make_user(), slot.pk, proxy, **{"X-Real-IP": first}).status_code == 429


# --- Sign-in --------------------------------------------------------------------------------------


def login(ip: str, phone: str, code: str) -> Any:
    return Client().post(
        "/api/v1/auth/login", {"phone": phone, "code": code}, content_type="application/json", REMOTE_ADDR=ip
    )


@pytest.mark.django_db
def test_sign_in_attempts_per_address_cover_codes_wechat_and_the_h5_form(backend, settings):
    settings.RATE_LOGIN_IP = "4/2592000"
    ip = fresh_ip()
    assert login(ip, fresh_phone(), "000000").json()["error"]["code"] == "invalid"
    for door in ("wechat", "alipay"):
        answer = Client(REMOTE_ADDR=ip).post(f"/api/v1/auth/{door}", {"code": "demo-peak"}, "application/json")
        assert answer.status_code == 200, answer.content
    h5 = Client(REMOTE_ADDR=ip).post("/signin/", {"action": "login", "phone": fresh_phone(), "code": "123456"})
    assert h5.status_code == 422
    # The fifth attempt from this address is refused before any code is looked at.
    refused = login(ip, fresh_phone(), "000000")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert "Retry-After" in refused
    assert Client(REMOTE_ADDR=ip).post("/signin/", {"phone": fresh_phone(), "code": "123456"}).status_code == 429
    assert login(fresh_ip(), fresh_phone(), "000000").status_code == 422


@pytest.mark.django_db
def test_code_checks_per_phone_are_limited_across_codes(backend, settings):
    settings.RATE_LOGIN_VERIFY_PHONE = "7/2592000"
    settings.LOGIN_CODE_RESEND_SECONDS = 0
    phone = fresh_phone()
    accounts.request_login_code(phone, ip=fresh_ip())
    for _ in range(5):  # the first code's five guesses
        with pytest.raises(DomainError, match=r"^invalid"):
            accounts.login_with_code(phone, "000000")
    accounts.request_login_code(phone, ip=fresh_ip())
    message = ConsoleSmsBackend.last_for(phone)
    assert message is not None
    with pytest.raises(DomainError, match=r"^invalid"):
        accounts.login_with_code(phone, "000000")
    accounts.login_with_code(phone, message.params["code"])  # the seventh check, still allowed
    accounts.request_login_code(phone, ip=fresh_ip())
    right = ConsoleSmsBackend.last_for(phone)
    assert right is not None
    with pytest.raises(DomainError, match=r"^rate_limited"):
        accounts.login_with_code(phone, right.params["code"])  # even the right code: no more checks today


# --- Switching limits off -------------------------------------------------------------------------


@pytest.mark.django_db
def test_limits_can_be_switched_off_all_at_once_or_one_by_one(settings):
    settings.RATE_BOOKING_IP = "1/2592000"
    settings.RATE_LOGIN_IP = "1/2592000"
    settings.RATE_LIMITS = "off"
    for _ in range(3):
        ratelimit.hit("booking-ip", "1.2.3.4", settings.RATE_BOOKING_IP)
    assert set(ratelimit.configured().values()) == {"off"}
    assert not RateCounter.objects.exists()

    settings.RATE_LIMITS = "on"
    settings.RATE_BOOKING_IP = "OFF"
    for _ in range(3):
        ratelimit.hit("booking-ip", "1.2.3.4", settings.RATE_BOOKING_IP)
    ratelimit.hit("login-ip", "1.2.3.4", settings.RATE_LOGIN_IP)
    with pytest.raises(DomainError, match=r"^rate_limited"):
        ratelimit.hit("login-ip", "1.2.3.4", settings.RATE_LOGIN_IP)
    shown = ratelimit.configured()
    assert shown["RATE_BOOKING_IP"] == "off" and shown["RATE_LOGIN_IP"] == "1/2592000"
    assert set(shown) >= {"RATE_BOOKING_USER", "RATE_LOGIN_VERIFY_PHONE", "RATE_LOGIN_CODE_IP"}


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [
        ("RATE_BOOKING_IP", "off", True),
        ("RATE_BOOKING_IP", "120/60,2000/3600", True),
        ("RATE_LOGIN_IP", "60 per minute", False),
        ("RATE_LIMITS", "maybe", False),
        ("WAITING_ROOM", "08:00/30/50", True),
        ("WAITING_ROOM", "8 o'clock", False),
    ],
)
def test_settings_are_checked_at_start_up(monkeypatch, name, value, ok):
    from django.core.exceptions import ImproperlyConfigured

    from yuyue import settings as module

    monkeypatch.setattr(module, name, value)
    if ok:
        module._check_sign_in_settings()
    else:
        with pytest.raises(ImproperlyConfigured, match=f"YUYUE_{name}"):
            module._check_sign_in_settings()


# --- Under concurrency ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_racing_bookings_from_one_address_admit_exactly_the_limit(backend, settings):
    settings.RATE_BOOKING_IP = "5/2592000"
    settings.RATE_BOOKING_USER = "off"
    slot = make_slot(capacity=50)
    ip = fresh_ip()
    users = [make_user() for _ in range(12)]

    def client(user: Any) -> Callable[[], str]:
        def go() -> str:
            response = book_via_api(user, slot.pk, ip)
            return str(response.status_code)

        return go

    outcomes = race(*[client(u) for u in users])
    assert sorted(o.value for o in outcomes) == ["201"] * 5 + ["429"] * 7, tally(outcomes)
    assert Booking.objects.filter(slot=slot).count() == 5
    slot.refresh_from_db()
    assert slot.reserved == 5
