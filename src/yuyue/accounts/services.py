"""Accounts: signing people up, their family members and contacts, tokens, points and bans."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext_lazy as _

from yuyue.accounts.models import ApiToken, Ban, EndUser, Person, PointsEntry, Relation
from yuyue.core import ids, personal, timeutil
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
    ApiToken.objects.bulk_create(
        [ApiToken(key_hash=_token_hash(r), user=u, expires_at=expires) for r, u in zip(raws, users, strict=True)],
        batch_size=1000,
    )
    return raws


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(*, user: EndUser | None = None, staff_user: User | None = None, ttl: dt.timedelta | None = None) -> str:
    """A new bearer token; the raw value is returned once and only its hash is kept."""
    if (user is None) == (staff_user is None):
        raise ValueError("a token belongs to exactly one end user or one staff user")
    raw = ids.token()
    ApiToken.objects.create(
        key_hash=_token_hash(raw),
        user=user,
        staff_user=staff_user,
        expires_at=timeutil.now() + ttl if ttl else None,
    )
    return raw


def token_owner(raw: str) -> ApiToken | None:
    """The live token for a raw bearer value (not revoked, not expired), with its owner loaded."""
    token = ApiToken.objects.select_related("user", "staff_user").filter(key_hash=_token_hash(raw)).first()
    if token is None or token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= timeutil.now():
        return None
    return token


def revoke_token(raw: str) -> bool:
    return bool(ApiToken.objects.filter(key_hash=_token_hash(raw), revoked_at=None).update(revoked_at=timeutil.now()))


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
    delta: int,
    reason: str,
    merchant: Merchant | None = None,
    booking_id: int | None = None,
    at: dt.datetime | None = None,
) -> PointsEntry:
    """Add or take points, in the caller's transaction; the balance and the entry move together."""
    with transaction.atomic():
        EndUser.objects.filter(pk=user.pk).update(points_balance=F("points_balance") + delta)
        balance = EndUser.objects.values_list("points_balance", flat=True).get(pk=user.pk)
        return PointsEntry.objects.create(
            user=user,
            merchant=merchant,
            booking_id=booking_id,
            delta=delta,
            balance_after=balance,
            reason=reason,
            created_at=at or timeutil.now(),
        )


def active_ban(*, user: EndUser, merchant_id: int, at: dt.datetime | None = None) -> Ban | None:
    at = at or timeutil.now()
    return (
        Ban.objects.filter(user=user, merchant_id=merchant_id, lifted_at=None, starts_at__lte=at, ends_at__gt=at)
        .order_by("-ends_at")
        .first()
    )
