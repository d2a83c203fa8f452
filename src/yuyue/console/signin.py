"""Staff sign-in: password with a lockout counted in the database, and an optional TOTP second factor.

Lockout, like the engine's seats, is a conditional UPDATE: each attempt takes one unit of the
key's allowance *before* the password is checked (``failures = failures + 1 WHERE failures <
limit``) and a correct password gives it back. However many wrong guesses race, from however many
processes, at most ``limit`` of them are ever checked; the rest are refused as locked.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import pyotp
import segno
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from yuyue.console.models import SignInThrottle, TotpDevice
from yuyue.core import timeutil
from yuyue.core.errors import DomainError

ISSUER = "yuyue"


@dataclass(frozen=True)
class _Limit:
    key: str
    limit: int
    clears_on_success: bool  # a right password clears a username's failures, never an address's


def _limits(username: str, ip: str | None) -> list[_Limit]:
    limits = [_Limit(f"user:{username.strip().lower()[:180]}", settings.CONSOLE_LOCKOUT_FAILURES, True)]
    if ip and settings.CONSOLE_LOCKOUT_IP_FAILURES > 0:  # 0 turns the per-address limit off
        limits.append(_Limit(f"ip:{ip}", settings.CONSOLE_LOCKOUT_IP_FAILURES, False))
    return limits


def _window() -> dt.timedelta:
    return dt.timedelta(minutes=settings.CONSOLE_LOCKOUT_MINUTES)


def _take(limit: _Limit, now: dt.datetime) -> bool:
    """Take one attempt from the key's allowance; False when it is used up (locked)."""
    if not SignInThrottle.objects.filter(key=limit.key).exists():
        try:
            with transaction.atomic():
                SignInThrottle.objects.create(key=limit.key, window_start=now)
        except IntegrityError:
            pass  # created by a concurrent attempt
    # A lock that has run out, or a window without a lock that has passed, starts afresh.
    SignInThrottle.objects.filter(
        Q(locked_until__lte=now) | Q(locked_until__isnull=True, window_start__lte=now - _window()),
        key=limit.key,
    ).update(failures=0, window_start=now, locked_until=None)
    return bool(
        SignInThrottle.objects.filter(key=limit.key, failures__lt=limit.limit).update(failures=F("failures") + 1)
    )


def _give_back(limit: _Limit) -> None:
    if limit.clears_on_success:
        SignInThrottle.objects.filter(key=limit.key).update(failures=0, locked_until=None)
    else:
        SignInThrottle.objects.filter(key=limit.key, failures__gt=0).update(failures=F("failures") - 1)


def _lock_if_spent(limit: _Limit, now: dt.datetime) -> None:
    SignInThrottle.objects.filter(key=limit.key, failures__gte=limit.limit, locked_until__isnull=True).update(
        locked_until=now + _window()
    )


def locked_until(username: str, ip: str | None = None, now: dt.datetime | None = None) -> dt.datetime | None:
    """When the lock on this username (or address) ends, if one is in force."""
    now = now or timeutil.now()
    latest = None
    for limit in _limits(username, ip):
        row = SignInThrottle.objects.filter(key=limit.key, failures__gte=limit.limit).first()
        if row is None:
            continue
        until = row.locked_until or now + _window()
        if until > now and (latest is None or until > latest):
            latest = until
    return latest


def _locked_error(username: str, ip: str | None, now: dt.datetime) -> DomainError:
    until = locked_until(username, ip, now) or now + _window()
    return DomainError(
        "rate_limited",
        _("Too many failed sign-ins. Try again after %(when)s.")
        % {"when": f"{until.astimezone(timeutil.local_zone()):%H:%M}"},
        locked_until=until.isoformat(),
    )


def check_password(
    request: HttpRequest | None, *, username: str, password: str, ip: str | None, now: dt.datetime | None = None
) -> User:
    """The user for a right username and password, or a refusal: wrong (``unauthorized``) or locked
    (``rate_limited``). Unknown usernames count like wrong passwords, so nobody learns which exist."""
    now = now or timeutil.now()
    username = (username or "").strip()
    if not username or not password:
        raise DomainError("invalid", fields={"username": _("Please enter your username and password.")})
    limits = _take_all(username, ip, now)
    user = authenticate(request, username=username, password=password)
    if user is None:
        for limit in limits:
            _lock_if_spent(limit, now)
        if any(SignInThrottle.objects.filter(key=limit.key, locked_until__gt=now).exists() for limit in limits):
            raise _locked_error(username, ip, now)
        raise DomainError("unauthorized", _("Wrong username or password."))
    for limit in limits:
        _give_back(limit)
    assert isinstance(user, User)
    return user


def _take_all(username: str, ip: str | None, now: dt.datetime) -> list[_Limit]:
    """One attempt from every allowance (username, address), or none of them and a refusal."""
    limits = _limits(username, ip)
    taken: list[_Limit] = []
    for limit in limits:
        if not _take(limit, now):
            for other in taken:
                _give_back_unit(other)
            raise _locked_error(username, ip, now)
        taken.append(limit)
    return limits


def _give_back_unit(limit: _Limit) -> None:
    """Return a unit taken for an attempt that was refused before any password was checked."""
    SignInThrottle.objects.filter(key=limit.key, failures__gt=0).update(failures=F("failures") - 1)


def prune_throttles(now: dt.datetime | None = None) -> int:
    """Forget counters that no longer lock anything (a day past their window), so guessed
    usernames and passing addresses do not pile up."""
    now = now or timeutil.now()
    stale = now - _window() - dt.timedelta(days=1)
    return SignInThrottle.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lte=now), window_start__lt=stale
    ).delete()[0]


# --- TOTP -----------------------------------------------------------------------------------


def totp_required(user: User) -> bool:
    return TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


def start_totp(user: User) -> TotpDevice:
    """A new, unconfirmed secret (replacing an unconfirmed one); the confirmed one stays until replaced."""
    device, _created = TotpDevice.objects.get_or_create(user=user, defaults={"secret": pyotp.random_base32()})
    if device.confirmed_at is None and not _created:
        device.secret = pyotp.random_base32()
        device.save(update_fields=["secret"])
    return device


def provisioning_uri(device: TotpDevice) -> str:
    return pyotp.TOTP(device.secret).provisioning_uri(name=device.user.get_username(), issuer_name=ISSUER)


def qr_svg(text: str) -> str:
    """An inline SVG QR code (segno), for the set-up page."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=5, xmldecl=False, svgns=True)
    return out.getvalue().decode()


def _accept_code(device: TotpDevice, code: str, now: dt.datetime) -> bool:
    """A valid code (±1 step of clock drift) newer than the last one accepted, used at most once."""
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if len(code) != 6:
        return False
    totp = pyotp.TOTP(device.secret)
    step = int(now.timestamp()) // totp.interval
    for candidate in (step, step - 1, step + 1):
        if candidate > device.last_step and totp.at(candidate * totp.interval) == code:
            # Conditional: two requests with the same code cannot both pass.
            return bool(TotpDevice.objects.filter(pk=device.pk, last_step__lt=candidate).update(last_step=candidate))
    return False


def confirm_totp(user: User, code: str, now: dt.datetime | None = None) -> TotpDevice:
    """Turn on the second factor once the user shows a first code from the new secret."""
    now = now or timeutil.now()
    device = TotpDevice.objects.filter(user=user).first()
    if device is None or not _accept_code(device, code, now):
        raise DomainError("invalid", fields={"code": _("This code is not right. Check the time on your phone.")})
    TotpDevice.objects.filter(pk=device.pk).update(confirmed_at=now)
    device.refresh_from_db()
    return device


def verify_totp(user: User, code: str, *, ip: str | None, now: dt.datetime | None = None) -> None:
    """The second step of sign-in; wrong codes count toward the same lockout as wrong passwords."""
    now = now or timeutil.now()
    device = TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).first()
    if device is None:
        return
    limits = _take_all(user.get_username(), ip, now)
    if not _accept_code(device, code, now):
        for limit in limits:
            _lock_if_spent(limit, now)
        raise DomainError("invalid", fields={"code": _("This code is not right. Check the time on your phone.")})
    for limit in limits:
        _give_back(limit)


def disable_totp(user: User) -> bool:
    return bool(TotpDevice.objects.filter(user=user).delete()[0])
