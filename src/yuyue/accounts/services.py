"""Accounts: signing people up, their family members and contacts, tokens, points and bans."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import DateTimeField, F
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext_lazy as _

from yuyue.accounts import tokencache
from yuyue.accounts.models import ApiToken, Ban, EndUser, LoginCode, Person, PointsBalance, PointsEntry, Relation
from yuyue.core import ids, personal, ratelimit, timeutil
from yuyue.core.errors import DomainError
from yuyue.tenants.models import Merchant

MINOR_AGE = 14  # 未满十四周岁: the age below which a person needs a guardian


def get_or_create_user_by_phone(phone: str) -> EndUser:
    """The account for a mobile number, created on first sign-in."""
    phone = personal.normalize_phone(phone)
    digest = personal.phone_hash(phone)
    user = EndUser.objects.filter(phone_hash=digest).first()
    if user is not None:
        return user
    try:
        with transaction.atomic():
            return EndUser.objects.create(phone=phone, phone_hash=digest)
    except IntegrityError:  # the same phone signed up at the same moment elsewhere
        return EndUser.objects.get(phone_hash=digest)


def users_for_phones(phones: list[str]) -> list[EndUser]:
    """The accounts for many mobile numbers at once (created if new), in the given order.

    Load tests and imports sign in thousands of people; one query per thousand, not per phone.
    """
    normalized = [personal.normalize_phone(p) for p in phones]
    digests = [personal.phone_hash(p) for p in normalized]
    by_hash: dict[str, EndUser] = {}
    for start in range(0, len(digests), 1000):
        chunk = digests[start : start + 1000]
        by_hash.update({u.phone_hash or "": u for u in EndUser.objects.filter(phone_hash__in=chunk)})
        missing = {d: p for d, p in zip(chunk, normalized[start : start + 1000], strict=True) if d not in by_hash}
        if missing:
            EndUser.objects.bulk_create(
                [EndUser(phone=p, phone_hash=d) for d, p in missing.items()], ignore_conflicts=True
            )
            by_hash.update({u.phone_hash or "": u for u in EndUser.objects.filter(phone_hash__in=list(missing))})
    return [by_hash[d] for d in digests]


def issue_tokens(users: list[EndUser], ttl: dt.timedelta | None = None) -> list[str]:
    """One new bearer token per account, in order, stored in bulk."""
    raws = [ids.token() for _ in users]
    expires = timeutil.now() + ttl if ttl else None
    tokens = ApiToken.objects.bulk_create(
        [ApiToken(key_hash=_token_hash(r), user=u, expires_at=expires) for r, u in zip(raws, users, strict=True)],
        batch_size=1000,
    )
    transaction.on_commit(lambda: tokencache.put_many(tokens))
    return raws


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(*, user: EndUser | None = None, staff_user: User | None = None, ttl: dt.timedelta | None = None) -> str:
    """A new bearer token; the raw value is returned once and only its hash is kept."""
    if (user is None) == (staff_user is None):
        raise ValueError("a token belongs to exactly one end user or one staff user")
    raw = ids.token()
    token = ApiToken.objects.create(
        key_hash=_token_hash(raw),
        user=user,
        staff_user=staff_user,
        expires_at=timeutil.now() + ttl if ttl else None,
    )
    transaction.on_commit(lambda: tokencache.put_many([token]))  # a token rolled back is never cached
    return raw


def token_owner(raw: str) -> ApiToken | None:
    """The live token for a raw bearer value (not revoked, not expired), with its owner loaded.

    With Redis, live tokens are cached for a few seconds (``accounts.tokencache``).
    """
    digest = _token_hash(raw)
    token = tokencache.get(digest)
    if token is None:
        token = ApiToken.objects.select_related("user", "staff_user").filter(key_hash=digest).first()
        if token is not None and token.revoked_at is None:
            tokencache.put(digest, token)
    return token if _live(token) else None


def _live(token: ApiToken | None) -> bool:
    if token is None or token.revoked_at is not None:
        return False
    return token.expires_at is None or token.expires_at > timeutil.now()


def revoke_token(raw: str) -> bool:
    digest = _token_hash(raw)
    revoked = bool(ApiToken.objects.filter(key_hash=digest, revoked_at=None).update(revoked_at=timeutil.now()))
    tokencache.forget(digest)
    return revoked


def add_person(
    *,
    owner: EndUser,
    name: str,
    relation: str = Relation.SELF,
    id_number: str | None = None,
    phone: str | None = None,
    birth_date: dt.date | None = None,
    guardian_id: int | None = None,
) -> Person:
    """Add someone to an account's people, validating the ID and the guardian rule.

    A child under 14 must name a guardian: an adult already in the same account.
    """
    errors: dict[str, object] = {}
    name = (name or "").strip()
    if not 1 <= len(name) <= 50:
        errors["name"] = _("Please enter a name (up to 50 characters).")
    if relation not in Relation.values:
        errors["relation"] = _("Unknown relation.")
    id_value = ""
    if id_number:
        try:
            id_value = personal.normalize_id_number(id_number)
        except DomainError as exc:
            errors.update(exc.fields)
        else:
            id_birth = personal.birth_date_from_id(id_value)
            if birth_date and birth_date != id_birth:
                errors["birth_date"] = _("The birth date does not match the ID number.")
            birth_date = id_birth
    phone_value = ""
    if phone:
        try:
            phone_value = personal.normalize_phone(phone)
        except DomainError as exc:
            errors.update(exc.fields)
    if birth_date and birth_date > timeutil.today():
        errors["birth_date"] = _("The birth date is in the future.")

    guardian = None
    age = personal.age_on(birth_date, timeutil.today())
    if guardian_id is not None:
        guardian = Person.objects.filter(pk=guardian_id, owner=owner, is_deleted=False).first()
        guardian_age = guardian.age_on(timeutil.today()) if guardian else None
        if guardian is None or guardian_age is None or guardian_age < 18:
            errors["guardian_id"] = _("The guardian must be an adult among your people.")
    elif age is not None and age < MINOR_AGE:
        errors["guardian_id"] = _("A child under 14 needs a guardian from your people.")
    if id_value and Person.objects.filter(owner=owner, id_hash=personal.id_hash(id_value), is_deleted=False).exists():
        errors["id_number"] = _("This ID number is already among your people.")
    if errors:
        raise DomainError("invalid", fields=errors)

    return Person.objects.create(
        owner=owner,
        name=name,
        relation=relation,
        id_number=id_value,
        id_hash=personal.id_hash(id_value) if id_value else "",
        phone=phone_value,
        phone_hash=personal.phone_hash(phone_value) if phone_value else "",
        birth_date=birth_date,
        guardian=guardian,
    )


def remove_person(*, owner: EndUser, person_id: int) -> None:
    """Hide a person from the account; past bookings keep their own copy of the data."""
    if not Person.objects.filter(pk=person_id, owner=owner, is_deleted=False).update(is_deleted=True):
        raise DomainError("not_found")


def change_points(
    *,
    user: EndUser,
    merchant: Merchant,
    delta: int,
    reason: str,
    booking_id: int | None = None,
    may_go_negative: bool = False,
    at: dt.datetime | None = None,
) -> PointsEntry:
    """Add or take points at a merchant, in the caller's transaction, with the reason recorded.

    Unless ``may_go_negative``, a deduction is capped at the balance: the entry records what was
    actually taken, and its reason says how much was due. The deduction is a conditional UPDATE
    (``balance >= n``), so parallel deductions can never take a non-negative balance below zero;
    when it does not cover the whole amount, the rest of the balance is taken under the row lock.
    The balance row, the account's total and the entry move together, so the balance always equals
    the sum of the merchant's entries.
    """
    at = at or timeutil.now()
    reason = str(reason)
    with transaction.atomic():
        row = _points_balance_row(user.pk, merchant.pk)
        applied = delta
        if delta >= 0 or may_go_negative:
            PointsBalance.objects.filter(pk=row).update(balance=F("balance") + delta, updated_at=at)
        elif not PointsBalance.objects.filter(pk=row, balance__gte=-delta).update(
            balance=F("balance") + delta, updated_at=at
        ):
            current = PointsBalance.objects.select_for_update().values_list("balance", flat=True).get(pk=row)
            applied = -min(max(current, 0), -delta)
            PointsBalance.objects.filter(pk=row).update(balance=F("balance") + applied, updated_at=at)
            reason = str(_("%(reason)s (%(due)d due, capped at the balance)") % {"reason": reason, "due": -delta})
        balance = PointsBalance.objects.values_list("balance", flat=True).get(pk=row)
        if applied:
            EndUser.objects.filter(pk=user.pk).update(points_balance=F("points_balance") + applied)
        return PointsEntry.objects.create(
            user=user,
            merchant=merchant,
            booking_id=booking_id,
            delta=applied,
            balance_after=balance,
            reason=reason[:200],
            created_at=at,
        )


def _points_balance_row(user_id: int, merchant_id: int) -> int:
    """The id of the account's balance row at a merchant, made on first use (a race makes it once)."""
    found = PointsBalance.objects.filter(user_id=user_id, merchant_id=merchant_id).values_list("pk", flat=True).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return PointsBalance.objects.create(user_id=user_id, merchant_id=merchant_id).pk
    except IntegrityError:  # made a moment ago by a concurrent change
        return PointsBalance.objects.values_list("pk", flat=True).get(user_id=user_id, merchant_id=merchant_id)


def points_at(*, user: EndUser, merchant_id: int) -> int:
    """The account's points at one merchant (0 before the first change)."""
    found = PointsBalance.objects.filter(user=user, merchant_id=merchant_id).values_list("balance", flat=True).first()
    return found or 0


def active_ban(*, user: EndUser, merchant_id: int, at: dt.datetime | None = None) -> Ban | None:
    at = at or timeutil.now()
    found = Ban.objects.filter(user=user, merchant_id=merchant_id, lifted_at=None, starts_at__lte=at, ends_at__gt=at)
    return next(iter(found.order_by("-ends_at")[:1]), None)


def banned_until(*, user_id: int, merchant_column: str, at: dt.datetime) -> RawSQL:
    """``active_ban(...).ends_at`` (NULL when not banned) as a column of another query, whose
    ``merchant_column`` (``table.column``) names the merchant.

    The booking engine reads it with the slot: one statement fewer on every booking. Plain SQL,
    because the ORM's correlated subquery costs more CPU to build than a query of its own.
    """
    moment = connection.ops.adapt_datetimefield_value(at)
    return RawSQL(
        "(SELECT b.ends_at FROM accounts_ban b"
        f" WHERE b.user_id = %s AND b.merchant_id = {merchant_column} AND b.lifted_at IS NULL"
        " AND b.starts_at <= %s AND b.ends_at > %s ORDER BY b.ends_at DESC LIMIT 1)",
        [user_id, moment, moment],
        output_field=DateTimeField(),
    )


# --------------------------------------------------------------------------------------------
# Signing in: SMS code, WeChat and Alipay mini-programs
# --------------------------------------------------------------------------------------------


def _login_code_hash(phone_digest: str, code: str) -> str:
    # Keyed, so a copy of the table does not give the codes away by trying all million of them.
    message = f"login-code|{phone_digest}|{code}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def request_login_code(phone: str, *, ip: str, now: dt.datetime | None = None) -> None:
    """Text a new 6-digit sign-in code to ``phone``, within the per-IP and per-phone limits.

    One code per phone is live at a time: a new request replaces it, but only after the resend
    wait, which is a conditional UPDATE on the phone's row so it holds across processes.
    """
    from yuyue.integrations import sms

    now = now or timeutil.now()
    phone = personal.normalize_phone(phone)
    digest = personal.phone_hash(phone)
    ratelimit.hit("login-code-ip", ip or "unknown", settings.RATE_LOGIN_CODE_IP, now=now)
    resend_after = now - dt.timedelta(seconds=settings.LOGIN_CODE_RESEND_SECONDS)
    last = LoginCode.objects.filter(phone_hash=digest).values_list("sent_at", flat=True).first()
    if last is not None and last > resend_after:
        raise _resend_wait(last, now)
    ratelimit.hit("login-code-phone", digest, settings.RATE_LOGIN_CODE_PHONE, now=now)

    code = f"{secrets.randbelow(10**6):06d}"
    fresh = {
        "code_hash": _login_code_hash(digest, code),
        "sent_at": now,
        "expires_at": now + dt.timedelta(seconds=settings.LOGIN_CODE_TTL_SECONDS),
        "attempts": 0,
        "used_at": None,
    }
    if not LoginCode.objects.filter(phone_hash=digest, sent_at__lte=resend_after).update(**fresh):
        try:
            with transaction.atomic():
                LoginCode.objects.create(phone_hash=digest, **fresh)
        except IntegrityError:  # another request for this phone won the moment
            raise _resend_wait(now, now) from None
    try:
        sms.send_login_code(phone, code)
    except Exception:
        # Not sent: void the code and let the person ask again at once.
        LoginCode.objects.filter(phone_hash=digest, code_hash=fresh["code_hash"]).update(
            used_at=now, sent_at=resend_after
        )
        raise


def _resend_wait(sent_at: dt.datetime, now: dt.datetime) -> DomainError:
    wait = max(1, int((sent_at - now).total_seconds()) + settings.LOGIN_CODE_RESEND_SECONDS)
    message = _("A code was just sent; you can ask again in %(seconds)d seconds.") % {"seconds": wait}
    return DomainError("rate_limited", message, retry_after=wait)


def login_with_code(phone: str, code: str, *, now: dt.datetime | None = None) -> EndUser:
    """The account of ``phone`` if ``code`` is its live sign-in code (single use, few attempts)."""
    now = now or timeutil.now()
    phone = personal.normalize_phone(phone)
    code = (code or "").strip()
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        raise DomainError("invalid", fields={"code": _("Please enter the 6-digit code.")})
    digest = personal.phone_hash(phone)
    ratelimit.hit("login-verify-phone", digest, settings.RATE_LOGIN_VERIFY_PHONE, now=now)  # guesses across codes
    # Count the attempt first (conditional UPDATE): parallel guesses cannot exceed the limit.
    live = LoginCode.objects.filter(
        phone_hash=digest, used_at=None, expires_at__gt=now, attempts__lt=settings.LOGIN_CODE_MAX_ATTEMPTS
    )
    if not live.update(attempts=F("attempts") + 1):
        raise _code_used_up()
    expected = _login_code_hash(digest, code)
    row = LoginCode.objects.filter(phone_hash=digest).values_list("code_hash", flat=True).first()
    if row is None or not hmac.compare_digest(row, expected):
        raise DomainError("invalid", fields={"code": _("The code is not correct.")})
    if not LoginCode.objects.filter(phone_hash=digest, code_hash=expected, used_at=None).update(used_at=now):
        raise _code_used_up()
    return _active(get_or_create_user_by_phone(phone))


def _code_used_up() -> DomainError:
    return DomainError("invalid", fields={"code": _("This code has expired or was used up; please ask for a new one.")})


def login_with_wechat(code: str) -> EndUser:
    """The account of the WeChat user behind a mini-program ``wx.login`` code (created if new)."""
    from yuyue.integrations import wechat

    session = wechat.client().code2session(code)
    return _active(_user_by_external_id("wechat_openid", session.openid))


def login_with_alipay(code: str) -> EndUser:
    """The account of the Alipay user behind a mini-program ``my.getAuthCode`` code (created if new)."""
    from yuyue.integrations import alipay

    identity = alipay.client().identity_for_code(code)
    return _active(_user_by_external_id("alipay_user_id", identity.key))


def _user_by_external_id(field: str, value: str) -> EndUser:
    user = EndUser.objects.filter(**{field: value}).first()
    if user is not None:
        return user
    try:
        with transaction.atomic():
            return EndUser.objects.create(**{field: value})
    except IntegrityError:  # the same person signed in twice at once
        return EndUser.objects.get(**{field: value})


def _active(user: EndUser) -> EndUser:
    if not user.is_active:
        raise DomainError("forbidden", _("This account has been disabled."))
    return user


def sign_in_token(user: EndUser) -> str:
    """A bearer token for a user who just signed in (``YUYUE_LOGIN_TOKEN_DAYS``, 0: no expiry)."""
    days = settings.LOGIN_TOKEN_DAYS
    return issue_token(user=user, ttl=dt.timedelta(days=days) if days > 0 else None)


def ban(
    *,
    user: EndUser,
    merchant: Merchant,
    until: dt.datetime,
    reason: str,
    by: User | None,
    at: dt.datetime | None = None,
) -> Ban:
    """Staff stop an account from booking at their merchant until a moment, with a reason."""
    at = at or timeutil.now()
    reason = (reason or "").strip()
    errors: dict[str, object] = {}
    if not reason:
        errors["reason"] = _("Please give a reason.")
    if until <= at:
        errors["until"] = _("The end of the ban must be in the future.")
    if errors:
        raise DomainError("invalid", fields=errors)
    with transaction.atomic():
        # The account's row lock makes two staff banning the same person at once take turns.
        list(EndUser.objects.select_for_update().filter(pk=user.pk).values_list("pk"))
        # Any unlifted ban still running (or starting a moment later, by a colleague's clock) counts.
        current = Ban.objects.filter(user=user, merchant=merchant, lifted_at=None, ends_at__gt=at).first()
        if current is not None:
            raise DomainError(
                "duplicate",
                _("Already banned until %(date)s.") % {"date": timeutil.local_date(current.ends_at).isoformat()},
            )
        return Ban.objects.create(
            user=user, merchant=merchant, starts_at=at, ends_at=until, reason=reason[:200], created_by=by
        )


def lift_ban(*, ban: Ban, reason: str, at: dt.datetime | None = None) -> Ban:
    """End a ban early; the row stays (with when and why) so the history is kept."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("invalid", fields={"reason": _("Please give a reason.")})
    at = at or timeutil.now()
    if not Ban.objects.filter(pk=ban.pk, lifted_at=None).update(lifted_at=at, lift_reason=reason[:200]):
        raise DomainError("not_allowed", _("This ban was already lifted."))
    ban.refresh_from_db()
    return ban
