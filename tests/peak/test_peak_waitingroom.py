"""The waiting room: first come first served, a place and an estimate instead of an error, at most
N let through per second across threads, nothing queued outside the window or without Redis."""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from factories import make_offering, make_slot, make_user
from pydantic import ValidationError
from racing import race, tally
from redisurl import redis_url

from yuyue.accounts import services as accounts
from yuyue.booking.models import Booking
from yuyue.catalog.policy import Policy
from yuyue.core import timeutil, waitingroom
from yuyue.h5.auth import SESSION_KEY

REDIS_URL = redis_url(3)


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


needs_redis = pytest.mark.skipif(not redis_available(), reason=f"no Redis at {REDIS_URL}")


class Clock:
    """timeutil.now() frozen at a moment the test moves on by hand."""

    def __init__(self) -> None:
        self.at = timeutil.now()

    def __call__(self) -> dt.datetime:
        return self.at

    def tick(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    frozen = Clock()
    monkeypatch.setattr(timeutil, "now", frozen)
    return frozen


@pytest.fixture
def room_redis(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Redis db 3, under keys of this test alone (removed afterwards); rooms read afresh."""
    import redis

    prefix = f"wr-test-{uuid.uuid4().hex}"
    settings.REDIS_URL = REDIS_URL
    settings.RATE_BOOKING_USER = "off"  # account ids repeat between runs; Redis windows would not
    settings.BOOKING_GATE = False  # the seat gate's own tests cover it; here slot ids repeat between tests
    monkeypatch.setattr(waitingroom, "KEY_PREFIX", prefix)
    waitingroom.forget()
    yield
    waitingroom.forget()
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def peak_policy(now: dt.datetime, rate: int, *, opened_minutes_ago: int = 1, minutes: int = 30) -> dict:
    starts = (now.astimezone(timeutil.local_zone()) - dt.timedelta(minutes=opened_minutes_ago)).time()
    return {"waiting_room": {"starts": starts.strftime("%H:%M"), "minutes": minutes, "admit_per_second": rate}}


def book(user: Any, slot_id: int) -> Any:
    return Client().post(
        "/api/v1/bookings",
        {"slot_id": slot_id},
        content_type="application/json",
        headers={"Authorization": f"Bearer {accounts.issue_token(user=user)}", "Accept-Language": "zh-hans"},
    )


def h5_client(user: Any) -> Client:
    client = Client(headers={"Accept-Language": "zh-hans"})
    session = client.session
    session[SESSION_KEY] = user.pk
    session.save()
    return client


# --- The window ---------------------------------------------------------------------------------------


def test_a_window_opens_every_day_and_may_run_past_midnight():
    zone = timeutil.local_zone()
    morning = waitingroom.parse_setting("08:00/30/50")
    assert morning is not None and morning.admit_per_second == 50
    assert waitingroom.open_window(morning, dt.datetime(2026, 10, 1, 8, 10, tzinfo=zone)) == (
        dt.datetime(2026, 10, 1, 8, 0, tzinfo=zone),
        dt.datetime(2026, 10, 1, 8, 30, tzinfo=zone),
    )
    assert waitingroom.open_window(morning, dt.datetime(2026, 10, 1, 8, 30, tzinfo=zone)) is None
    assert waitingroom.open_window(morning, dt.datetime(2026, 10, 1, 7, 59, tzinfo=zone)) is None
    late = waitingroom.parse_setting("23:50/30/5")
    assert late is not None
    window = waitingroom.open_window(late, dt.datetime(2026, 10, 2, 0, 10, tzinfo=zone))
    assert window is not None and window[0] == dt.datetime(2026, 10, 1, 23, 50, tzinfo=zone)
    assert waitingroom.parse_setting("") is None


def test_the_policy_option_is_validated():
    policy = Policy().merged({"waiting_room": {"starts": "08:00", "minutes": 30, "admit_per_second": 20}})
    assert policy.waiting_room is not None and policy.waiting_room.starts == dt.time(8, 0)
    for bad in ({"starts": "08:00", "admit_per_second": 0}, {"starts": "25:00"}, {"starts": "08:00", "size": 3}):
        with pytest.raises(ValidationError):
            Policy().merged({"waiting_room": bad})


# --- The line -------------------------------------------------------------------------------------


@needs_redis
def test_first_come_first_served_with_place_and_estimate(room_redis):
    t0 = timeutil.now()
    room = waitingroom.Room("fifo", t0 + dt.timedelta(minutes=30), rate=2)
    first = [waitingroom.enter(room, user, now=t0) for user in range(1, 7)]
    assert [(p.admitted, p.position, p.wait_seconds) for p in first] == [
        (True, 0, 0),
        (True, 0, 0),
        (False, 1, 1),
        (False, 2, 1),
        (False, 3, 2),
        (False, 4, 2),
    ]
    assert waitingroom.enter(room, 5, now=t0).position == 3  # asking again keeps the place

    t1 = t0 + dt.timedelta(seconds=1)  # the serving number moved on by two
    assert waitingroom.enter(room, 6, now=t1).position == 2
    assert waitingroom.enter(room, 3, now=t1).admitted and waitingroom.enter(room, 4, now=t1).admitted
    assert waitingroom.enter(room, 7, now=t1).position == 3  # a newcomer joins at the back
    assert waitingroom.enter(room, 1, now=t1).admitted  # once through, always through in this window

    # A quiet minute does not save up admissions: after it, again two at once, then the line.
    later = t0 + dt.timedelta(seconds=60)
    assert [waitingroom.enter(room, user, now=later).admitted for user in (8, 9, 10)] == [True, True, False]


@needs_redis
@pytest.mark.django_db
def test_the_api_answers_a_place_in_the_queue_instead_of_an_error(room_redis, clock):
    slot = make_slot(offering=make_offering(policy_overrides=peak_policy(clock.at, rate=1)), capacity=50)
    first, second, third = make_user(), make_user(), make_user()
    # The first second's admission, then one a second.
    assert book(first, slot.pk).status_code == 201
    queued = book(second, slot.pk)
    assert queued.status_code == 429 and queued["Retry-After"] == "1"
    error = queued.json()["error"]
    assert error["code"] == "rate_limited"
    assert (error["queue_position"], error["estimated_wait_seconds"]) == ("1", "1")
    assert "排队" in error["message"] and "第 1 位" in error["message"]
    behind = book(third, slot.pk).json()["error"]
    assert (behind["queue_position"], behind["estimated_wait_seconds"]) == ("2", "2")
    assert book(second, slot.pk).json()["error"]["queue_position"] == "1"

    clock.tick(1)
    assert book(second, slot.pk).status_code == 201
    assert book(third, slot.pk).json()["error"]["queue_position"] == "1"
    assert Booking.objects.filter(slot=slot).count() == 2


@needs_redis
@pytest.mark.django_db
def test_the_h5_page_shows_the_queue_then_the_form_with_a_signed_admission(room_redis, clock):
    slot = make_slot(offering=make_offering(policy_overrides=peak_policy(clock.at, rate=1)), capacity=50)
    url = f"/slots/{slot.pk}/book/"
    first, second = make_user(), make_user()
    opened = h5_client(first).get(url).content.decode()
    assert 'name="form_key"' in opened, opened[opened.find("<main") : opened.find("</main>")]

    waiting = h5_client(second)
    page = waiting.get(url)
    html = page.content.decode()
    assert page.status_code == 200 and "排队中" in html and "第 1 位" in html and "预计等待约 1 秒" in html
    assert '<meta http-equiv="refresh" content="2">' in html and "<script>" not in html
    assert waitingroom.ADMISSION_COOKIE not in page.cookies

    clock.tick(1)
    form = waiting.get(url)
    assert 'name="form_key"' in form.content.decode()
    admission = form.cookies[waitingroom.ADMISSION_COOKIE]
    assert admission["httponly"] and admission["max-age"] == 600

    # Someone else's admission does not let a third person skip the line.
    thief = h5_client(make_user())
    thief.cookies[waitingroom.ADMISSION_COOKIE] = admission.value
    assert "排队中" in thief.get(url).content.decode()

    # The admitted visitor submits the form (the cookie, not the line, lets the POST through).
    done = waiting.post(url, {"action": "book", "party_size": "1"})
    assert done.status_code == 302, done.content.decode()[:500]
    assert Booking.objects.filter(slot=slot, user=second).exists()


@needs_redis
@pytest.mark.django_db
def test_outside_the_window_nobody_queues(room_redis, clock, django_assert_num_queries):
    over = peak_policy(clock.at, rate=1, opened_minutes_ago=90, minutes=30)
    slot = make_slot(offering=make_offering(policy_overrides=over), capacity=50)
    assert [book(make_user(), slot.pk).status_code for _ in range(4)] == [201] * 4
    # Outside every window a booking request costs the room no query (the list of rooms is kept a while).
    with django_assert_num_queries(0):
        assert waitingroom.room_for_slot(slot.pk) is None


@needs_redis
@pytest.mark.django_db
def test_the_operator_can_open_a_room_for_the_whole_site(room_redis, clock, settings):
    room = peak_policy(clock.at, rate=1)["waiting_room"]
    settings.WAITING_ROOM = f"{room['starts']}/30/1"
    slot = make_slot(capacity=50)  # an offering without a room of its own
    assert book(make_user(), slot.pk).status_code == 201
    assert book(make_user(), slot.pk).json()["error"]["queue_position"] == "1"


@pytest.mark.django_db
def test_with_redis_down_the_room_lets_everyone_through_and_says_so(room_redis, clock, settings, caplog, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/3"
    monkeypatch.setattr(waitingroom, "_last_warning", {"at": float("-inf")})
    slot = make_slot(offering=make_offering(policy_overrides=peak_policy(clock.at, rate=1)), capacity=50)
    assert waitingroom.room_for_slot(slot.pk) is not None
    assert [book(make_user(), slot.pk).status_code for _ in range(3)] == [201] * 3
    assert "waiting room lets everyone through" in caplog.text


# --- Under concurrency ----------------------------------------------------------------------------


@needs_redis
def test_racing_visitors_are_let_through_at_most_n_per_second_in_order(room_redis):
    t0 = timeutil.now()
    room = waitingroom.Room("race", t0 + dt.timedelta(minutes=30), rate=4)
    users = range(1, 13)

    def visitor(user: int, at: dt.datetime) -> Callable[[], waitingroom.Place]:
        return lambda: waitingroom.enter(room, user, now=at)

    step1 = [o.value for o in race(*[visitor(u, t0) for u in users])]
    assert sum(p.admitted for p in step1) == 4
    assert sorted(p.position for p in step1 if not p.admitted) == list(range(1, 9))

    step2 = [o.value for o in race(*[visitor(u, t0 + dt.timedelta(seconds=1)) for u in users])]
    assert sum(p.admitted for p in step2) == 8
    # First come, first served: the four let through now were the first four in line.
    newly = [
        before.position for before, after in zip(step1, step2, strict=True) if after.admitted and not before.admitted
    ]
    assert sorted(newly) == [1, 2, 3, 4]


@needs_redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_racing_booking_requests_in_a_peak_window_book_only_those_let_through(room_redis, clock):
    slot = make_slot(offering=make_offering(policy_overrides=peak_policy(clock.at, rate=3)), capacity=50)
    users = [make_user() for _ in range(10)]

    def client(user: Any) -> Callable[[], str]:
        return lambda: str(book(user, slot.pk).status_code)

    outcomes = race(*[client(u) for u in users])
    assert sorted(o.value for o in outcomes) == ["201"] * 3 + ["429"] * 7, tally(outcomes)
    assert Booking.objects.filter(slot=slot).count() == 3
