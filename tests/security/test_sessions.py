"""Sessions end: console and H5 sessions at their fixed age and after inactivity, bearer tokens at theirs.

Time is moved by replacing ``timeutil.now`` (what the session middleware and the token check read).
"""

from __future__ import annotations

import datetime as dt

import pytest
from console_world import sign_in
from django.test import Client
from django.urls import reverse
from h5_session import sign_in_client

from yuyue.accounts import services as accounts
from yuyue.core import timeutil

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    """``clock(hours=…)`` moves the time everything reads to now + that much."""
    start = timeutil.now()

    def move(**delta: float) -> None:
        moment = start + dt.timedelta(**delta)
        monkeypatch.setattr(timeutil, "now", lambda: moment)

    move()
    return move


def console_open(client: Client) -> bool:
    response = client.get(reverse("console:bookings"))
    assert response.status_code in (200, 302)
    return response.status_code == 200


def h5_open(client: Client) -> bool:
    response = client.get(reverse("h5:my_bookings"))
    assert response.status_code in (200, 302)
    return response.status_code == 200


def test_a_console_session_ends_after_the_idle_limit(shop_a, clock, settings):
    assert settings.SESSION_IDLE_SECONDS == 120 * 60
    client = sign_in(Client(), shop_a.staff["owner"], shop_a.merchant)
    assert console_open(client)
    clock(minutes=119)
    assert console_open(client)
    clock(minutes=119 + 121)
    response = client.get(reverse("console:bookings"))
    assert response.status_code == 302 and "/console/login/" in response["Location"]
    clock(minutes=119 + 122)
    assert not console_open(client), "signed out for good, not only for one request"


def test_an_active_console_session_still_ends_at_its_age(shop_a, clock, settings):
    assert settings.SESSION_COOKIE_AGE == 12 * 3600
    client = sign_in(Client(), shop_a.staff["owner"], shop_a.merchant)
    assert console_open(client)
    for hours in range(1, 12):  # busy all day: a request every hour
        clock(hours=hours)
        assert console_open(client), hours
    clock(hours=12, minutes=1)
    assert not console_open(client)


def test_an_h5_session_ends_the_same_way(shop_a, clock):
    client = sign_in_client(Client(), shop_a.customer)
    assert h5_open(client)
    clock(hours=1, minutes=59)
    assert h5_open(client)
    clock(hours=4)
    assert not h5_open(client)


def test_the_limits_are_settings(shop_a, clock, settings):
    settings.SESSION_IDLE_SECONDS = 0  # no idle limit
    settings.SESSION_COOKIE_AGE = 3600
    client = sign_in_client(Client(), shop_a.customer)
    assert h5_open(client)
    clock(minutes=59)
    assert h5_open(client)
    clock(minutes=61)
    assert not h5_open(client)


def test_signing_in_starts_the_clock_afresh(shop_a, clock):
    """A session started long ago (a language choice) does not shorten the signed-in one."""
    client = Client()
    client.post(reverse("h5:elder"), {"on": "1", "next": "/"})
    assert client.get("/").status_code == 200
    clock(hours=11)
    # What the SMS sign-in does: a new session key with the user in it.
    sign_in_client(client, shop_a.customer)
    session = client.session
    session.cycle_key()
    session.save()
    client.cookies["sessionid"] = session.session_key
    assert h5_open(client)
    clock(hours=12, minutes=30)
    assert h5_open(client)


def test_anonymous_requests_do_not_write_sessions(django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        Client().get(reverse("h5:signin"))


def test_api_tokens_expire_after_login_token_days(shop_a, clock, settings):
    settings.LOGIN_TOKEN_DAYS = 30
    token = accounts.sign_in_token(shop_a.customer)
    me = {"Authorization": f"Bearer {token}"}
    assert Client().get("/api/v1/me", headers=me).status_code == 200
    clock(days=29, hours=23)
    assert Client().get("/api/v1/me", headers=me).status_code == 200
    clock(days=30, seconds=1)
    response = Client().get("/api/v1/me", headers=me)
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
