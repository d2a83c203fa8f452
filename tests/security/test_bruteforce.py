"""Guessing limits hold when the guesses arrive all at once (threads racing on real connections).

Console passwords are raced in ``tests/console/test_console_signin.py``
(``test_concurrent_wrong_passwords_never_get_more_than_the_limit_of_tries``). Here: SMS sign-in
codes (LOGIN_CODE_MAX_ATTEMPTS per code, counted by a conditional UPDATE) and the staff TOTP
second factor (counted with the password lockout).
"""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from django.test import override_settings
from factories import make_merchant, make_phone, make_staff
from racing import race

from yuyue.accounts import services as accounts
from yuyue.accounts.models import LoginCode
from yuyue.console import signin
from yuyue.console.models import SignInThrottle
from yuyue.core import personal, timeutil
from yuyue.integrations.sms import ConsoleSmsBackend

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def _code_for(phone: str) -> str:
    accounts.request_login_code(phone, ip="203.0.113.7")
    message = ConsoleSmsBackend.last_for(phone)
    assert message is not None
    return str(message.params["code"])


def test_concurrent_wrong_sms_codes_use_up_exactly_the_allowed_attempts(settings):
    settings.LOGIN_CODE_MAX_ATTEMPTS = 5
    phone = make_phone()
    right = _code_for(phone)
    wrongs = [f"{(int(right) + n) % 10**6:06d}" for n in range(1, 13)]
    outcomes = race(*[lambda w=w: accounts.login_with_code(phone, w) for w in wrongs])
    assert [o.label for o in outcomes] == ["invalid"] * len(wrongs)
    row = LoginCode.objects.get(phone_hash=personal.phone_hash(phone))
    assert row.attempts == 5, "never more checks than allowed, however many arrive at once"
    with pytest.raises(Exception) as refused:
        accounts.login_with_code(phone, right)
    assert getattr(refused.value, "code", "") == "invalid"


def test_one_right_sms_code_sent_many_times_at_once_signs_in_once():
    phone = make_phone()
    right = _code_for(phone)
    outcomes = race(*[lambda: accounts.login_with_code(phone, right) for _ in range(6)])
    assert sorted(o.label for o in outcomes) == ["invalid"] * 5 + ["ok"]


@override_settings(CONSOLE_LOCKOUT_FAILURES=5, CONSOLE_LOCKOUT_IP_FAILURES=1000)
def test_concurrent_wrong_totp_codes_lock_the_account_after_the_limit():
    user = make_staff(make_merchant(), "owner", username="totp-racer")
    device = signin.start_totp(user)
    now = timeutil.now()
    signin.confirm_totp(user, pyotp.TOTP(device.secret).at(now), now=now)
    later = now + dt.timedelta(minutes=2)
    right = pyotp.TOTP(device.secret).at(later)
    wrongs = [f"{(int(right) + n) % 10**6:06d}" for n in range(1, 13)]
    outcomes = race(
        *[lambda w=w, n=n: signin.verify_totp(user, w, ip=f"198.51.100.{n}", now=later) for n, w in enumerate(wrongs)]
    )
    labels = [o.label for o in outcomes]
    assert set(labels) <= {"invalid", "rate_limited"} and labels.count("invalid") == 5, labels
    throttle = SignInThrottle.objects.get(key="user:totp-racer")
    assert throttle.failures == 5 and throttle.locked_until is not None
    # Locked: even the right code is refused now.
    with pytest.raises(Exception) as refused:
        signin.verify_totp(user, right, ip="198.51.100.99", now=later)
    assert getattr(refused.value, "code", "") == "rate_limited"
