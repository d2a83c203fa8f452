"""Staff sign-in: password, lockout counted in the database, TOTP second factor, merchant chooser."""

from __future__ import annotations

import datetime as dt
import threading

import pyotp
import pytest
from console_world import PASSWORD, make_staff
from django.contrib.auth.signals import user_login_failed
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse
from factories import make_merchant

from yuyue.console import signin
from yuyue.console.access import SESSION_MERCHANT
from yuyue.console.models import AuditEntry, SignInThrottle, TotpDevice
from yuyue.core import timeutil
from yuyue.core.errors import DomainError

pytestmark = pytest.mark.django_db


def post_login(client: Client, username: str, password: str, **extra) -> object:
    return client.post(reverse("console:login"), {"username": username, "password": password}, **extra)


def test_staff_sign_in_with_username_and_password_and_out_again(client):
    merchant = make_merchant()
    user = make_staff(merchant, "staff", username="desk1")
    response = post_login(client, "desk1", PASSWORD)
    assert response.status_code == 302
    assert client.session[SESSION_MERCHANT] == merchant.pk
    assert client.get(reverse("console:bookings")).status_code == 200
    assert AuditEntry.objects.filter(staff_user=user, action="sign_in", merchant=merchant).exists()
    client.post(reverse("console:logout"))
    assert client.get(reverse("console:bookings")).status_code == 302


def test_passwords_are_hashed_with_argon2(client):
    user = make_staff(make_merchant(), "owner")
    assert user.password.startswith("argon2")


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(client):
    make_staff(make_merchant(), "staff", username="desk2")
    wrong = post_login(client, "desk2", "nope")
    unknown = post_login(client, "nobody", "nope")
    assert wrong.status_code == unknown.status_code == 400
    assert "用户名或密码错误" in wrong.content.decode()
    assert "用户名或密码错误" in unknown.content.decode()


def test_only_people_with_an_active_staff_row_get_a_session(client):
    from django.contrib.auth.models import User

    User.objects.create_user(username="admin-only", password=PASSWORD, is_staff=True, is_superuser=True)
    response = post_login(client, "admin-only", PASSWORD)
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


@override_settings(CONSOLE_LOCKOUT_FAILURES=5, CONSOLE_LOCKOUT_MINUTES=15)
def test_five_failures_lock_the_username_for_fifteen_minutes():
    make_staff(make_merchant(), "staff", username="desk3")
    now = timeutil.now()
    for _ in range(5):
        with pytest.raises(DomainError) as wrong:
            signin.check_password(None, username="desk3", password="bad", ip="10.0.0.1", now=now)
    assert wrong.value.code == "rate_limited"  # the fifth failure locks at once
    # Even the right password is refused while locked (and is not checked at all).
    with pytest.raises(DomainError) as locked:
        signin.check_password(
            None, username="desk3", password=PASSWORD, ip="10.0.0.2", now=now + dt.timedelta(minutes=14)
        )
    assert locked.value.code == "rate_limited"
    assert (
        signin.check_password(
            None, username="desk3", password=PASSWORD, ip="10.0.0.2", now=now + dt.timedelta(minutes=16)
        ).username
        == "desk3"
    )


@override_settings(CONSOLE_LOCKOUT_FAILURES=5)
def test_a_right_password_clears_the_failures_of_the_username():
    make_staff(make_merchant(), "staff", username="desk4")
    now = timeutil.now()
    for _ in range(4):
        with pytest.raises(DomainError):
            signin.check_password(None, username="desk4", password="bad", ip=None, now=now)
    signin.check_password(None, username="desk4", password=PASSWORD, ip=None, now=now)
    for _ in range(4):
        with pytest.raises(DomainError) as exc:
            signin.check_password(None, username="desk4", password="bad", ip=None, now=now)
        assert exc.value.code == "unauthorized"


@override_settings(CONSOLE_LOCKOUT_FAILURES=50, CONSOLE_LOCKOUT_IP_FAILURES=6)
def test_one_address_guessing_many_usernames_is_locked_too():
    now = timeutil.now()
    codes = []
    for n in range(8):
        try:
            signin.check_password(None, username=f"guess{n}", password="bad", ip="203.0.113.9", now=now)
        except DomainError as exc:
            codes.append(exc.code)
    assert codes.count("unauthorized") == 5 and codes[5:] == ["rate_limited"] * 3
    # Another address is not affected.
    with pytest.raises(DomainError) as other:
        signin.check_password(None, username="guess0", password="bad", ip="203.0.113.10", now=now)
    assert other.value.code == "unauthorized"


def test_the_sign_in_page_says_when_the_lock_ends(client):
    make_staff(make_merchant(), "staff", username="desk5")
    for _ in range(6):
        response = post_login(client, "desk5", "bad")
    assert "登录失败次数过多" in response.content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
@override_settings(CONSOLE_LOCKOUT_FAILURES=5, CONSOLE_LOCKOUT_IP_FAILURES=1000)
def test_concurrent_wrong_passwords_never_get_more_than_the_limit_of_tries():
    """Twelve wrong guesses at the same moment: exactly five are checked, seven are refused as locked."""
    make_staff(make_merchant(), "staff", username="racer")
    clients = 12
    barrier = threading.Barrier(clients)
    results: list[str] = []
    lock = threading.Lock()
    checked: list[int] = []  # one entry per password actually checked (Django's user_login_failed)

    def count(**kwargs: object) -> None:
        with lock:
            checked.append(1)

    user_login_failed.connect(count, weak=False)

    def guess(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            signin.check_password(None, username="racer", password=f"bad{n}", ip=f"198.51.100.{n}")
            outcome = "ok"
        except DomainError as exc:
            outcome = exc.code
        except Exception as exc:  # a crash is a failure of the test, reported below
            outcome = f"crash:{exc!r}"
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    user_login_failed.disconnect(count)
    assert len(results) == clients and set(results) <= {"unauthorized", "rate_limited"}, results
    assert checked == [1] * 5  # exactly five passwords were checked; the other seven were refused unchecked
    assert results.count("rate_limited") >= 7
    throttle = SignInThrottle.objects.get(key="user:racer")
    assert throttle.failures == 5 and throttle.locked_until is not None


# --- TOTP -----------------------------------------------------------------------------------


def signed_in_client(username: str):
    merchant = make_merchant()
    user = make_staff(merchant, "owner", username=username)
    client = Client()
    assert post_login(client, username, PASSWORD).status_code == 302
    return client, user


def test_setting_up_totp_shows_a_qr_and_needs_a_first_code():
    client, user = signed_in_client("totp1")
    page = client.post(reverse("console:security"), {"action": "start"})
    assert "<svg" in page.content.decode()
    device = TotpDevice.objects.get(user=user)
    assert device.confirmed_at is None
    wrong = client.post(reverse("console:security"), {"action": "confirm", "code": "000000"})
    assert wrong.status_code == 400
    code = pyotp.TOTP(device.secret).now()
    client.post(reverse("console:security"), {"action": "confirm", "code": code})
    device.refresh_from_db()
    assert device.confirmed_at is not None
    assert AuditEntry.objects.filter(staff_user=user, action="totp_on").exists()


def test_with_totp_on_the_password_alone_does_not_open_a_session():
    client, user = signed_in_client("totp2")
    client.post(reverse("console:security"), {"action": "start"})
    secret = TotpDevice.objects.get(user=user).secret
    client.post(reverse("console:security"), {"action": "confirm", "code": pyotp.TOTP(secret).now()})
    client.post(reverse("console:logout"))

    fresh = Client()
    response = post_login(fresh, "totp2", PASSWORD)
    assert response.status_code == 302 and reverse("console:login_totp") in response["Location"]
    assert fresh.get(reverse("console:bookings")).status_code == 302  # not signed in yet
    assert fresh.post(reverse("console:login_totp"), {"code": "123456"}).status_code == 400
    # The code used to confirm the device cannot be replayed; the next step's code works.
    later = pyotp.TOTP(secret).at(timeutil.now() + dt.timedelta(seconds=30))
    response = fresh.post(reverse("console:login_totp"), {"code": later})
    assert response.status_code == 302
    assert fresh.get(reverse("console:bookings")).status_code == 200


def test_a_totp_code_works_only_once():
    client, user = signed_in_client("totp3")
    client.post(reverse("console:security"), {"action": "start"})
    device = TotpDevice.objects.get(user=user)
    code = pyotp.TOTP(device.secret).now()
    signin.confirm_totp(user, code)
    with pytest.raises(DomainError):
        signin.verify_totp(user, code, ip=None)


# --- Several merchants ----------------------------------------------------------------------


def test_staff_of_several_merchants_choose_one_and_see_only_its_data():
    first, second = make_merchant(name="第一家"), make_merchant(name="第二家")
    user = make_staff(first, "owner", username="both")
    from yuyue.tenants.models import Staff

    Staff.objects.create(user=user, merchant=second, role="staff")
    client = Client()
    response = post_login(client, "both", PASSWORD)
    assert reverse("console:choose_merchant") in response["Location"]
    assert client.get(reverse("console:bookings")).status_code == 302
    page = client.get(reverse("console:choose_merchant")).content.decode()
    assert "第一家" in page and "第二家" in page
    client.post(reverse("console:choose_merchant"), {"merchant": second.pk})
    assert "第二家" in client.get(reverse("console:bookings")).content.decode()
    # A merchant the user does not work for cannot be chosen.
    other = make_merchant(name="别人家")
    client.post(reverse("console:choose_merchant"), {"merchant": other.pk})
    assert client.session[SESSION_MERCHANT] == second.pk


def test_the_code_must_follow_the_password_within_five_minutes():
    client, user = signed_in_client("totp4")
    client.post(reverse("console:security"), {"action": "start"})
    secret = TotpDevice.objects.get(user=user).secret
    signin.confirm_totp(user, pyotp.TOTP(secret).now())
    fresh = Client()
    post_login(fresh, "totp4", PASSWORD)
    session = fresh.session
    session["console_pending_user"] = [user.pk, (timeutil.now() - dt.timedelta(minutes=6)).timestamp()]
    session.save()
    later = pyotp.TOTP(secret).at(timeutil.now() + dt.timedelta(seconds=30))
    response = fresh.post(reverse("console:login_totp"), {"code": later})
    assert response.status_code == 302 and response["Location"] == reverse("console:login")
    assert fresh.get(reverse("console:bookings")).status_code == 302


def test_old_counters_are_forgotten_but_locks_in_force_are_kept():
    now = timeutil.now()
    old = now - dt.timedelta(days=3)
    SignInThrottle.objects.create(key="user:gone", failures=2, window_start=old)
    SignInThrottle.objects.create(key="user:locked", failures=5, window_start=old, locked_until=now + dt.timedelta(1))
    SignInThrottle.objects.create(key="user:recent", failures=1, window_start=now)
    assert signin.prune_throttles(now) == 1
    assert set(SignInThrottle.objects.values_list("key", flat=True)) == {"user:locked", "user:recent"}


@override_settings(CLIENT_IP_HEADER="X-Forwarded-For")
def test_behind_a_proxy_the_forwarded_address_is_recorded_and_garbage_is_not():
    make_staff(make_merchant(), "staff", username="proxied")
    client = Client()
    post_login(client, "proxied", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.7, 10.0.0.2")
    assert AuditEntry.objects.get(action="sign_in", staff_user__username="proxied").ip == "10.0.0.2"
    other = Client()
    post_login(other, "proxied", PASSWORD, HTTP_X_FORWARDED_FOR="unknown")
    assert AuditEntry.objects.filter(action="sign_in", staff_user__username="proxied", ip=None).count() == 1


@override_settings(CONSOLE_LOCKOUT_FAILURES=50, CONSOLE_LOCKOUT_IP_FAILURES=0)
def test_the_address_limit_can_be_turned_off():
    for n in range(25):
        with pytest.raises(DomainError) as exc:
            signin.check_password(None, username=f"someone{n}", password="bad", ip="198.51.100.1")
        assert exc.value.code == "unauthorized"
    assert not SignInThrottle.objects.filter(key__startswith="ip:").exists()
