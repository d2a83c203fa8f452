"""The booking engine: the only code that changes a booking, its seats and its claims.

How the invariants hold (docs/engine.md tells the whole story):

1. Seats: ``Slot.reserved`` moves by one conditional UPDATE
   (``reserved = reserved + n WHERE reserved + n <= capacity``) in the same transaction that
   inserts the booking. No read-then-write in Python; a CHECK constraint backs it up.
2. Per-person rules become ``Claim`` rows with unique keys ("this ID on this slot", "this ID's
   first visit today at this department", "this phone at this activity"). The unique index
   refuses the second holder however requests race; claims are deleted when a booking ends.
3. Resources: the first booking of a slot claims the slot's coach/doctor/vehicle/room for the
   slot's time (``ResourceClaim``). PostgreSQL refuses overlaps with an exclusion constraint;
   elsewhere the resource row is locked before overlapping claims are looked for.
4. Every transition goes through ``_transition`` and is recorded as a ``BookingEvent`` in the
   same transaction.

Policies are data (``offering.policy``); nothing here asks which kind an offering is.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Avg, BooleanField, F, Q, prefetch_related_objects
from django.db.models.expressions import RawSQL
from django.db.models.lookups import LessThanOrEqual
from django.dispatch import Signal
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from yuyue.accounts import services as accounts
from yuyue.accounts.models import Ban, EndUser, Person
from yuyue.booking import gate
from yuyue.booking.models import (
    ACTIVE_STATUSES,
    Actor,
    AttendanceCheck,
    Attendee,
    Booking,
    BookingEvent,
    Claim,
    IdempotencyKey,
    PaidBy,
    ResourceClaim,
    Review,
    Status,
    WaitlistEntry,
    WaitlistStatus,
)
from yuyue.catalog.kinds import KINDS
from yuyue.catalog.models import Offering, Resource
from yuyue.catalog.policy import FormField, Policy
from yuyue.core import ids, personal, timeutil
from yuyue.core.crypto import blind_index
from yuyue.core.errors import DomainError
from yuyue.scheduling.models import Slot, SlotStatus
from yuyue.tenants.models import Merchant

log = logging.getLogger(__name__)

# Who did it: an end user, a staff member (Django user) or, when None, the system.
By = EndUser | User | None

# The state machine, in one place: which status may follow which.
FLOW: dict[str, frozenset[str]] = {
    Status.PENDING_APPROVAL: frozenset({Status.PENDING_PAYMENT, Status.CONFIRMED, Status.REJECTED, Status.CANCELLED}),
    Status.PENDING_PAYMENT: frozenset({Status.CONFIRMED, Status.EXPIRED, Status.CANCELLED}),
    Status.CONFIRMED: frozenset({Status.CHECKED_IN, Status.NO_SHOW, Status.CANCELLED}),
    Status.CHECKED_IN: frozenset({Status.COMPLETED}),
    Status.CANCELLED: frozenset({Status.REFUNDED}),
    # expired -> confirmed: a payment that arrived after the hold ran out, only through
    # revive_expired(), which takes the seats and claims again first.
    Status.EXPIRED: frozenset({Status.REFUNDED, Status.CONFIRMED}),
}
# Reaching one of these from an active state gives the seats and claims back.
RELEASING = frozenset({Status.REJECTED, Status.CANCELLED, Status.EXPIRED})
CANCELLABLE = frozenset({Status.PENDING_APPROVAL, Status.PENDING_PAYMENT, Status.CONFIRMED})
ADULT_AGE = 18
# Sent inside the transaction of a cancellation that owes money back, with ``booking``,
# ``refund_fen``, ``reason`` and ``now``. The payments app listens and records the refund, so the
# engine never knows about providers; a receiver that fails rolls the cancellation back.
refund_owed = Signal()


# --------------------------------------------------------------------------------------------
# Booking
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Party:
    """Who a booking is for, validated: attendee rows to write and the identities that claim."""

    attendees: list[Attendee]
    identities: list[str]
    size: int


def book(
    *,
    user: EndUser,
    slot_id: int,
    person_ids: Sequence[int] = (),
    party_size: int | None = None,
    answers: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    booked_by: User | None = None,
    now: dt.datetime | None = None,
    pay_with: str = PaidBy.MONEY,
    card_id: int | None = None,
) -> Booking:
    """Book a slot for some of the user's people, or refuse with the rule that says no.

    With an ``idempotency_key`` the same request again returns the first booking
    (``booking.replayed`` is then True); the same key with another request is refused.
    ``pay_with="credit"`` pays with classes of a membership card (``card_id``, else the usable
    card that expires first) instead of money.
    """
    now = now or timeutil.now()
    if pay_with not in PaidBy.values:
        raise DomainError("invalid", fields={"pay_with": _("Pay with money or a membership card.")})
    card_choice = {"card": card_id or "any"} if pay_with == PaidBy.CREDIT else None
    request_hash = _request_hash(slot_id, person_ids, party_size, answers, card_choice)
    # No look for the key up front: a repeated request is rare, and the key's INSERT (early in
    # the transaction) finds it anyway; a refusal below looks before answering.
    try:
        return _place_booking(
            user=user,
            slot_id=slot_id,
            person_ids=person_ids,
            party_size=party_size,
            answers=answers,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            booked_by=booked_by,
            now=now,
            pay_with=pay_with,
            card_id=card_id,
        )
    except DomainError:
        # A retry is refused (full, duplicate, too late) only because its first attempt
        # committed before: then the answer is the first booking, not the refusal.
        replay = _replay(user, idempotency_key, request_hash) if idempotency_key else None
        if replay is None:
            raise
        return replay


def _place_booking(
    *, user: EndUser, slot_id: int, person_ids: Sequence[int], party_size: int | None, **rest: Any
) -> Booking:
    """Through the rush gate first (when Redis is there): sold-out answers never reach the database."""
    admission = None
    if gate.enabled():
        admission = gate.admit(
            slot_id=slot_id,
            user_id=user.pk,
            party_size=party_size,
            people=len(person_ids),
            load=lambda: _gate_figures(slot_id),
        )
    try:
        booking = _place_booking_in_db(user=user, slot_id=slot_id, person_ids=person_ids, party_size=party_size, **rest)
    except DomainError as exc:
        if admission is not None:
            admission.refused(full=exc.code == "slot_full")
        raise
    except BaseException:
        if admission is not None:
            admission.refused(full=False)
        raise
    if admission is not None and booking.replayed:  # another request with the same key made it
        admission.refused(full=False)
    return booking


def _gate_figures(slot_id: int) -> gate.SlotFigures | None:
    """What the gate starts from: the seats the database has left, and how a party counts."""
    slot = (
        Slot.objects.select_related("offering")
        .filter(pk=slot_id, status=SlotStatus.OPEN, offering__is_active=True)
        .only("capacity", "reserved", "offering__kind", "offering__policy_overrides")
        .first()
    )
    if slot is None:
        return None
    policy = slot.offering.policy
    return gate.SlotFigures(
        left=slot.capacity - slot.reserved,
        seats_per=policy.seats,
        party=policy.party,
        max_party_size=policy.max_party_size,
    )


def _place_booking_in_db(
    *,
    user: EndUser,
    slot_id: int,
    person_ids: Sequence[int],
    party_size: int | None,
    answers: dict[str, Any] | None,
    idempotency_key: str | None,
    request_hash: str,
    booked_by: User | None,
    now: dt.datetime,
    pay_with: str = PaidBy.MONEY,
    card_id: int | None = None,
) -> Booking:
    """Validate what needs no lock, then take seats, claims and resources in one transaction."""
    slot = _open_slot(slot_id, ban_of=user, at=now)
    offering = slot.offering
    policy = offering.policy
    _check_window(slot, policy, now)
    if slot.remaining == 0:
        # Sold out: say so at once (the rush's most common answer). A read may only refuse,
        # never admit: admission is the conditional UPDATE below.
        raise DomainError("slot_full")
    party = _party(user=user, slot=slot, policy=policy, person_ids=person_ids, party_size=party_size)
    clean_answers = validate_answers(offering.form, answers or {})
    banned_until: dt.datetime | None = getattr(slot, "banned_until", None)  # read with the slot
    if banned_until is not None:
        raise DomainError(
            "banned",
            _("You cannot book here until %(date)s.") % {"date": timeutil.local_date(banned_until).isoformat()},
            until=banned_until.isoformat(),
        )

    seats = party.size if policy.seats == "party" else 1
    price = slot.effective_price_fen
    amount = price * party.size if policy.seats == "party" else price
    card = None
    if pay_with == PaidBy.CREDIT:
        # One class per person, from a card that covers this offering and is valid at the start.
        if amount == 0:
            raise DomainError("invalid", fields={"pay_with": _("This time is free: no card needed.")})
        from yuyue.memberships import services as memberships

        card = memberships.card_for_booking(
            user=user, offering=offering, starts_at=slot.start, credits=party.size, card_id=card_id
        )
        amount = 0
    status = Status.PENDING_APPROVAL if policy.requires_approval else _after_acceptance(amount, policy)
    claim_keys = _claim_keys(slot=slot, policy=policy, identities=party.identities, answers=clean_answers)
    seats_first = _seats_first()

    def place() -> Booking:
        # Locks that others wait for come last (see _seats_first): first the rows only this
        # booking touches (booking, key, attendees, claims, event, outbox), then the slot's
        # seats, then the merchant's ledger head, held only until the COMMIT right after.
        with transaction.atomic():
            _hold_account(user)
            if seats_first:
                _take_seats(slot, seats)
            booking = Booking(
                code=ids.booking_code(),
                user=user,
                merchant_id=offering.merchant_id,
                offering=offering,
                slot=slot,
                status=status,
                party_size=party.size,
                seats=seats,
                amount_fen=amount,
                paid_by=pay_with,
                card=card,
                answers=clean_answers,
                booked_by=booked_by,
                hold_expires_at=now + dt.timedelta(minutes=policy.hold_minutes)
                if status == Status.PENDING_PAYMENT
                else None,
                created_at=now,
            )
            booking.save(force_insert=True)
            if idempotency_key:
                # Early and without a savepoint: the same key racing in another request waits
                # here on the unique index until that one ends, and then fails (or goes on,
                # if it rolled back). The whole transaction is then rolled back and replayed.
                try:
                    IdempotencyKey.objects.create(
                        user=user, key=idempotency_key, request_hash=request_hash, booking=booking, created_at=now
                    )
                except IntegrityError:
                    raise _ConcurrentReplay() from None
            if party.attendees:
                for attendee in party.attendees:
                    attendee.booking = booking
                Attendee.objects.bulk_create(party.attendees)
            booking.new_attendees = party.attendees  # the answer shows them without reading them back
            _take_claims(booking, claim_keys)  # a duplicate is refused before it queues for the seats
            if card is not None:  # the card's classes, by a conditional UPDATE, in the seat's transaction
                memberships.take_credits(
                    card=card, booking=booking, credits=party.size, starts_at=slot.start, now=now, by=booked_by
                )
            event = _record(booking, "book", "", status, by=booked_by or user, now=now, seal=False)
            if not seats_first:
                _take_seats(slot, seats)
            _claim_resources(slot)
            _seal(event)
            return booking

    try:
        booking = _claims_refused(lambda: with_retries(place))
    except _ConcurrentReplay:
        replay = _replay(user, idempotency_key or "", request_hash)
        if replay is not None:
            return replay
        booking = _claims_refused(lambda: with_retries(place))  # the other request failed after all
    slot.reserved += seats  # as of this booking, for its answer (``booking.slot`` is this slot)
    return booking


def _hold_account(user: EndUser) -> None:
    """Share-lock the customer's row until the commit, and refuse if the account is disabled.

    An account deletion locks that row for update. A booking that comes first makes the deletion
    wait and then see it (upcoming bookings block a deletion); one that comes second waits here and
    then finds the account gone. Never a booking, with its visitors' personal data, for an account
    deleted at the same moment. The lock does not slow other bookings: shared locks do not conflict,
    and the booking's foreign key takes the same one anyway.
    """
    with connection.cursor() as cursor:
        cursor.execute(_account_lock_sql(connection.vendor), [user.pk])
        row = cursor.fetchone()
    if row is None or not row[0]:
        raise DomainError("forbidden", _("This account has been disabled."))


@functools.cache
def _account_lock_sql(vendor: str) -> str:
    meta = EndUser._meta
    quote = connection.ops.quote_name
    active, pk = quote(meta.get_field("is_active").column), quote(meta.pk.column)
    # SQLite needs no lock clause: its writers take the whole database in turn.
    lock = {"postgresql": " FOR KEY SHARE", "mysql": " LOCK IN SHARE MODE"}.get(vendor, "")
    # Fixed identifiers from the model; the id goes as a parameter.
    return f"SELECT {active} FROM {quote(meta.db_table)} WHERE {pk} = %s{lock}"  # nosec B608


def _seats_first() -> bool:
    """Whether the seat UPDATE must open the transaction instead of ending it.

    The UPDATE locks the slot row until the commit: on a hot slot every booking waits for that
    lock, so it comes after the inserts (held for the ledger append only, not for everything).
    InnoDB cannot: the booking INSERT's foreign-key check takes a shared lock on the slot row,
    and two bookings each holding one and both wanting the write lock would deadlock. (SQLite's
    writers queue for the whole database at BEGIN: the order changes nothing there.)
    """
    return connection.vendor == "mysql"


class _ConcurrentReplay(Exception):
    """The same Idempotency-Key committed first in another request."""


class _ClaimTaken(Exception):
    """A claim's unique key was taken: which one is looked up once the transaction is rolled back."""

    def __init__(self, keys: list[_Key]) -> None:
        super().__init__()
        self.keys = keys

    def refusal(self) -> DomainError:
        held = set(Claim.objects.filter(key__in=[k.key for k in self.keys]).values_list("key", flat=True))
        # The first key held refuses, as if taken one by one; if its holder ended meanwhile, the first key.
        taken = next((k for k in self.keys if k.key in held), self.keys[0])
        return DomainError(taken.refusal)


def _claims_refused(work: Callable[[], T]) -> T:
    """Run a transaction that takes claims; a taken claim becomes its refusal after the rollback."""
    try:
        return work()
    except _ClaimTaken as taken:
        raise taken.refusal() from None


def _request_hash(
    slot_id: int, person_ids: Sequence[int], party_size: int | None, answers: Any, payment: Any = None
) -> str:
    parts = [slot_id, sorted(person_ids), party_size, answers or {}]
    if payment is not None:  # only card payments add a part, so money bookings hash as they always did
        parts.append(payment)
    body = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _replay(user: EndUser, key: str, request_hash: str) -> Booking | None:
    found = next(iter(IdempotencyKey.objects.select_related("booking").filter(user=user, key=key)[:1]), None)
    if found is None:
        return None
    if found.request_hash != request_hash:
        raise DomainError(
            "invalid", fields={"Idempotency-Key": _("This key was already used for a different request.")}
        )
    found.booking.replayed = True
    return found.booking


def _open_slot(slot_id: int, *, ban_of: EndUser | None = None, at: dt.datetime | None = None) -> Slot:
    """The slot with its offering, merchant, branch and resources; with ``ban_of``, also when that
    user's ban at the merchant ends (``slot.banned_until``, None if not banned at ``at``).

    One statement, plus one for the resources if the slot has any.
    """
    # Plain SQL columns (tables named as the select_related joins name them): the ORM's
    # Exists/Subquery cost more CPU to build than the extra statements they save.
    found = Slot.objects.select_related("offering", "offering__merchant", "offering__branch").annotate(
        has_resources=RawSQL(
            "EXISTS (SELECT 1 FROM scheduling_slot_resources r WHERE r.slot_id = scheduling_slot.id)",
            [],
            output_field=BooleanField(),
        )
    )
    if ban_of is not None:
        found = found.annotate(
            banned_until=accounts.banned_until(
                user_id=ban_of.pk, merchant_column="catalog_offering.merchant_id", at=at or timeutil.now()
            )
        )
    slot = next(iter(found.filter(pk=slot_id).order_by()[:1]), None)  # one row: no ORDER BY to build
    if slot is None or not slot.offering.is_active:
        raise DomainError("not_found", _("This time slot does not exist."))
    if slot.status != SlotStatus.OPEN:
        raise DomainError("not_allowed", _("This time slot is closed."))
    if slot.has_resources:
        prefetch_related_objects([slot], "resources")
    else:  # as if prefetched: ``slot.resources.all()`` answers without a query
        none = Resource.objects.none()
        none._result_cache, none._prefetch_done = [], True  # type: ignore[attr-defined]
        slot._prefetched_objects_cache = {"resources": none}  # type: ignore[attr-defined]
    return slot


def booking_opens_at(slot: Slot, policy: Policy) -> dt.datetime | None:
    """When a slot becomes bookable: N days before its day, at the release time (e.g. 20:00)."""
    if policy.opens_days_ahead is None:
        return None
    day = timeutil.local_date(slot.start) - dt.timedelta(days=policy.opens_days_ahead)
    return timeutil.local_datetime(day, policy.release_time or dt.time(0, 0))


def booking_closes_at(slot: Slot, policy: Policy) -> dt.datetime:
    return slot.start - dt.timedelta(minutes=policy.closes_minutes_before_start)


def _check_window(slot: Slot, policy: Policy, now: dt.datetime) -> None:
    opens_at = booking_opens_at(slot, policy)
    if opens_at is not None and now < opens_at:
        when = opens_at.astimezone(timeutil.local_zone())
        raise DomainError(
            "not_open",
            _("Booking for this time opens at %(when)s.") % {"when": f"{when:%Y-%m-%d %H:%M}"},
            opens_at=opens_at.isoformat(),
        )
    if now >= booking_closes_at(slot, policy):
        raise DomainError("too_late", _("Booking for this time has closed."))


def _party(*, user: EndUser, slot: Slot, policy: Policy, person_ids: Sequence[int], party_size: int | None) -> _Party:
    """Check who is coming against the policy: real names, party size, children and guardians."""
    day = timeutil.local_date(slot.start)
    if policy.party == "count":
        size = party_size if party_size is not None else 1
        if not 1 <= size <= policy.max_party_size:
            raise DomainError(
                "invalid",
                fields={"party_size": _("Between 1 and %(max)d people.") % {"max": policy.max_party_size}},
            )
        _check_resource_seats(slot, size)
        return _Party(attendees=[], identities=[f"user:{user.pk}"], size=size)

    if not person_ids:
        raise DomainError("invalid", fields={"people": _("Please choose who is coming.")})
    if len(set(person_ids)) != len(person_ids):
        raise DomainError("invalid", fields={"people": _("The same person is listed twice.")})
    if len(person_ids) > policy.max_party_size:
        raise DomainError(
            "invalid",
            fields={"people": _("At most %(max)d people per booking.") % {"max": policy.max_party_size}},
        )
    people = {p.pk: p for p in Person.objects.filter(pk__in=person_ids, owner=user, is_deleted=False).order_by()}
    if len(people) != len(person_ids):
        raise DomainError("invalid", fields={"people": _("Please choose people from your list.")})
    ordered = [people[pk] for pk in person_ids]
    if policy.real_name and any(not p.id_number for p in ordered):
        raise DomainError("invalid", fields={"people": _("Every visitor needs a resident ID number.")})

    minors = [p for p in ordered if p.is_minor_on(day, policy.minor_age)]
    if policy.max_minors is not None and len(minors) > policy.max_minors:
        raise DomainError(
            "invalid",
            fields={"people": _("At most %(max)d children per booking.") % {"max": policy.max_minors}},
        )
    if minors and policy.minors_need_adult and not any((p.age_on(day) or ADULT_AGE) >= ADULT_AGE for p in ordered):
        raise DomainError("invalid", fields={"people": _("Children must come with an adult in the same booking.")})
    guardian_ids = [p.guardian_id for p in minors if p.guardian_id]
    guardians = {g.pk: g for g in Person.objects.filter(pk__in=guardian_ids)} if guardian_ids else {}
    if policy.minors_need_guardian and any(p.guardian_id not in guardians for p in minors):
        raise DomainError("invalid", fields={"people": _("A child under 14 needs a guardian in your account.")})
    _check_resource_seats(slot, len(ordered))

    attendees = [
        Attendee(
            person=p,
            name=p.name,
            id_number=p.id_number,
            id_hash=p.id_hash,
            phone=p.phone,
            phone_hash=p.phone_hash,
            birth_date=p.birth_date,
            is_minor=p in minors,
            guardian_name=guardians[p.guardian_id].name if p.guardian_id in guardians else "",
        )
        for p in ordered
    ]
    return _Party(attendees=attendees, identities=[_identity(a) for a in attendees], size=len(ordered))


def _identity(attendee: Attendee) -> str:
    """Who counts as 'the same person' for limits: the resident ID when known, else the entry."""
    return f"id:{attendee.id_hash[:40]}" if attendee.id_hash else f"person:{attendee.person_id}"


def _booking_identities(booking: Booking) -> list[str]:
    attendees = list(booking.attendees.all())
    return [_identity(a) for a in attendees] if attendees else [f"user:{booking.user_id}"]


def _check_resource_seats(slot: Slot, size: int) -> None:
    seats = [r.seats for r in slot.resources.all() if r.seats]
    if seats and size > min(seats):
        raise DomainError(
            "invalid", fields={"party_size": _("The vehicle has %(seats)d seats.") % {"seats": min(seats)}}
        )


def validate_answers(form: Iterable[FormField], answers: dict[str, Any]) -> dict[str, Any]:
    """The booking form's answers, cleaned; every problem is reported next to its field."""
    clean: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for field in form:
        raw = answers.get(field.key)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if field.required:
                errors[field.key] = _("%(label)s is required.") % {"label": field.label}
            continue
        try:
            clean[field.key] = _clean_answer(field, raw)
        except (ValueError, TypeError, DomainError):
            errors[field.key] = _("%(label)s is not valid.") % {"label": field.label}
    if errors:
        raise DomainError("invalid", fields=errors)
    return clean


def _clean_answer(field: FormField, raw: Any) -> Any:
    if field.type == "number":
        if isinstance(raw, bool):
            raise ValueError(raw)
        number = float(raw)
        if (field.min is not None and number < field.min) or (field.max is not None and number > field.max):
            raise ValueError(raw)
        return int(number) if number.is_integer() else number
    text = str(raw).strip()
    if len(text) > field.max_length:
        raise ValueError(raw)
    if field.type == "choice" and text not in field.choices:
        raise ValueError(raw)
    if field.type == "date":
        return dt.date.fromisoformat(text).isoformat()
    if field.type == "phone":
        return personal.normalize_phone(text)
    if field.type == "id_number":
        return personal.normalize_id_number(text)
    return text


def _claim_keys(*, slot: Slot, policy: Policy, identities: list[str], answers: dict[str, Any]) -> list[_Key]:
    """The unique keys a booking of these people on this slot must hold."""
    offering = slot.offering
    keys = [_Key(f"slot:{slot.pk}:{who}", "duplicate") for who in identities]
    for answer_key in policy.unique_answers:
        if answers.get(answer_key):
            digest = blind_index(str(answers[answer_key]), purpose="answer")[:40]
            scope = f"o{offering.pk}" if policy.unique_answers_per == "offering" else f"s{slot.pk}"
            keys.append(_Key(f"answer:{scope}:{answer_key}:{digest}", "duplicate"))
    if policy.per_person_per_day:
        if policy.limit_scope == "merchant":
            scope = f"m{offering.merchant_id}"
        elif policy.limit_scope == "group" and offering.limit_group:
            scope = f"g{offering.merchant_id}:{hashlib.sha256(offering.limit_group.encode()).hexdigest()[:16]}"
        else:
            scope = f"o{offering.pk}"
        day = timeutil.local_date(slot.start).isoformat()
        keys += [_Key(f"day:{scope}:{day}:{who}", "limit_reached", policy.per_person_per_day) for who in identities]
    return keys


def daily_limit_prefix(slot: Slot) -> str | None:
    """The claim-key prefix that counts bookings on the slot's day in its limit scope (``day:<scope>:<date>:``),
    followed in each key by an identity and an ordinal; None when the offering has no daily limit.
    Lets readers (recommendations) see whether someone's limit there is used, without a second copy of the rule.
    """
    keys = _claim_keys(slot=slot, policy=slot.offering.policy, identities=[""], answers={})
    return next((k.key for k in keys if k.key.startswith("day:")), None)


@dataclass(frozen=True)
class _Key:
    """A claim to take. With ``limit`` > 1 the key gets an ordinal (#0, #1, …) and any free one will do."""

    key: str
    refusal: str
    limit: int = 1


def _take_claims(booking: Booking, keys: list[_Key]) -> None:
    """Take the claims in the caller's transaction: the single ones in one INSERT (a taken one
    raises ``_ClaimTaken``, to be answered through ``_claims_refused`` once rolled back), then an
    ordinal of each limited one."""
    single = [claim for claim in keys if claim.limit == 1]
    if single:
        try:
            Claim.objects.bulk_create([Claim(key=claim.key, booking=booking) for claim in single])
        except IntegrityError:
            raise _ClaimTaken(single) from None
    for claim in keys:
        if claim.limit == 1:
            continue
        candidates = [f"{claim.key}#{n}" for n in range(claim.limit)]
        held = set(Claim.objects.filter(key__in=candidates).values_list("key", flat=True))
        for candidate in (c for c in candidates if c not in held):
            try:
                with transaction.atomic():
                    Claim.objects.create(key=candidate, booking=booking)
                break
            except IntegrityError:
                continue  # taken a moment ago by a concurrent booking: try the next ordinal
        else:
            raise DomainError(claim.refusal)


def _take_seats(slot: Slot, seats: int) -> None:
    """Invariant 1: one conditional UPDATE; zero rows means there was no room (or it closed)."""
    taken = Slot.objects.filter(
        LessThanOrEqual(F("reserved") + seats, F("capacity")), pk=slot.pk, status=SlotStatus.OPEN
    ).update(reserved=F("reserved") + seats)
    if not taken:
        raise DomainError("slot_full")


def _lock_slots(*slot_ids: int) -> int:
    """Write-lock slot rows, in id order, before changing their seats or status; how many exist.

    On PostgreSQL with FOR NO KEY UPDATE: it still queues behind every other seat change (the seat
    UPDATE takes the same lock), but not behind bookings being inserted for the slot, whose
    foreign-key checks hold KEY SHARE on its row until they commit.
    """
    no_key = connection.features.has_select_for_no_key_update
    rows = Slot.objects.select_for_update(no_key=no_key).filter(pk__in=slot_ids).order_by("pk")
    return len(list(rows.values_list("pk", flat=True)))


def _give_back_seats(slot_id: int, seats: int, user_id: int | None = None) -> None:
    """The one place seats go back to a slot; the rush gate hears of it once this commits."""
    freed = Slot.objects.filter(pk=slot_id, reserved__gte=seats).update(reserved=F("reserved") - seats)
    if freed and gate.enabled():
        transaction.on_commit(lambda: gate.seats_freed(slot_id=slot_id, seats=seats, user_id=user_id))


def _claim_resources(slot: Slot) -> None:
    """Invariant 3: the slot's resources become busy for its time, unless busy elsewhere."""
    resource_ids = sorted(r.pk for r in slot.resources.all())
    if not resource_ids:
        return
    held = set(ResourceClaim.objects.filter(slot=slot).values_list("resource_id", flat=True))
    missing = [pk for pk in resource_ids if pk not in held]
    if not missing:
        return
    # Serialise per resource (a no-op on SQLite, whose writers are serialised anyway).
    list(Resource.objects.select_for_update().filter(pk__in=missing).order_by("pk").values_list("pk"))
    busy = (
        ResourceClaim.objects.filter(resource_id__in=missing, starts_at__lt=slot.end, ends_at__gt=slot.start)
        .exclude(slot=slot)
        .select_related("resource")
        .first()
    )
    if busy is not None:
        raise DomainError("conflict", _("%(name)s is already booked at that time.") % {"name": busy.resource.name})
    try:
        with transaction.atomic():
            ResourceClaim.objects.bulk_create(
                [ResourceClaim(resource_id=pk, slot=slot, starts_at=slot.start, ends_at=slot.end) for pk in missing]
            )
    except IntegrityError:  # PostgreSQL's exclusion constraint caught an overlap
        raise DomainError("conflict") from None


def _release(booking: Booking, now: dt.datetime) -> None:
    """Give back what an active booking held: seats, claims, and the slot's resources if now empty."""
    _give_back_seats(booking.slot_id, booking.seats, booking.user_id)
    Claim.objects.filter(booking=booking).delete()
    _release_idle_resources(booking.slot_id)
    promote_waitlist(slot_id=booking.slot_id, now=now)


def _release_idle_resources(slot_id: int) -> None:
    if not Slot.objects.filter(pk=slot_id, reserved=0).exists():
        return
    ResourceClaim.objects.filter(slot_id=slot_id).delete()


# --------------------------------------------------------------------------------------------
# Transitions
# --------------------------------------------------------------------------------------------


def _transition(
    booking: Booking,
    to: str,
    *,
    action: str,
    by: By,
    now: dt.datetime,
    reason: str = "",
    changes: dict[str, Any] | None = None,
    refusal: DomainError | None = None,
    data: dict[str, Any] | None = None,
    from_states: Iterable[str] | None = None,
) -> Booking:
    """Move a booking to ``to`` if FLOW allows it from its current state, in one transaction.

    The UPDATE is conditional on the status, so two concurrent transitions cannot both win.
    ``from_states`` narrows the predecessors FLOW allows (an edge only one function may take).
    """
    allowed_from = [state for state, targets in FLOW.items() if to in targets]
    if from_states is not None:
        allowed_from = [state for state in allowed_from if state in set(from_states)]

    def move() -> Booking:
        with transaction.atomic():
            locked = Booking.objects.select_for_update().filter(pk=booking.pk)
            row = locked.values_list("status", "slot_id").first()
            if row is None:
                raise DomainError("not_found")
            current, slot_id = row
            if to in RELEASING:
                # Take the slot's write lock now, before the status UPDATE makes InnoDB take a
                # shared one (foreign-key check of the (slot, status) index): two cancellations
                # holding shared locks and both wanting the write lock would deadlock.
                _lock_slots(slot_id)
            moved = Booking.objects.filter(pk=booking.pk, status__in=allowed_from).update(
                status=to, updated_at=now, **(changes or {})
            )
            if not moved:
                raise refusal or DomainError("not_allowed")
            booking.refresh_from_db()
            _record(booking, action, current, to, by=by, reason=reason, now=now, data=data)
            if current in ACTIVE_STATUSES and to in RELEASING:
                _release(booking, now)
        return booking

    return with_retries(move)


def _record(
    booking: Booking,
    action: str,
    from_status: str,
    to_status: str,
    *,
    by: By,
    now: dt.datetime,
    reason: str = "",
    data: dict[str, Any] | None = None,
    seal: bool = True,
) -> BookingEvent:
    """Record a change with its outbox rows and, last (its lock is the merchant's), its ledger
    entry. ``seal=False`` leaves the ledger to the caller (``_seal``), for a booking whose seat
    UPDATE must come between."""
    if isinstance(by, EndUser):
        actor, actor_user, actor_staff = Actor.USER, by, None
    elif by is not None:
        actor, actor_user, actor_staff = Actor.STAFF, None, by
    else:
        actor, actor_user, actor_staff = Actor.SYSTEM, None, None
    event = BookingEvent.objects.create(
        booking=booking,
        action=action,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        actor_user=actor_user,
        actor_staff=actor_staff,
        reason=reason[:200],
        data=data or {},
        created_at=now,
    )
    from yuyue.notify.events import booking_event as notify_booking_event

    notify_booking_event(event)  # notifications and reminders: outbox rows in this same transaction
    from yuyue.ledger.services import on_booking_event  # the ledger imports booking models

    on_booking_event(event, seal=seal)  # webhooks queued, then sealed in the ledger, in this same transaction
    return event


def _seal(event: BookingEvent) -> None:
    """The ledger entry of an event recorded with ``seal=False``, in the same transaction."""
    from yuyue.ledger.services import append_event

    append_event(event)


@dataclass(frozen=True)
class CancelPreview:
    allowed: bool
    refund_fen: int
    points_penalty: int
    reason: str
    credit_back: bool = False  # a booking paid with a membership card gets its classes back


def cancel_preview(*, booking: Booking, now: dt.datetime | None = None) -> CancelPreview:
    """What cancelling now would cost, by the offering's policy; ``cancel`` applies exactly this."""
    now = now or timeutil.now()
    policy = booking.offering.policy
    if booking.status not in CANCELLABLE:
        return CancelPreview(False, 0, 0, str(_("This booking can no longer be cancelled.")))
    if now >= booking.slot.start:
        return CancelPreview(False, 0, 0, str(_("The booking has already started.")))
    paid = booking.paid_fen  # paid at the venue: nothing to refund online
    deadline = booking.slot.start - dt.timedelta(hours=policy.cancel_deadline_hours)
    if now < deadline:
        if booking.card_id is not None:
            return CancelPreview(
                True, paid, 0, str(_("Free cancellation: the class goes back to your card.")), credit_back=True
            )
        return CancelPreview(True, paid, 0, str(_("Free cancellation.")))
    refund = paid * policy.late_cancel_refund_percent // 100
    hours = f"{policy.cancel_deadline_hours:g}"
    return CancelPreview(
        True,
        refund,
        policy.late_cancel_points,
        str(
            _("Less than %(hours)s hours before the start: %(points)d points are deducted.")
            % {"hours": hours, "points": policy.late_cancel_points}
        )
        + (str(_(" The class used from your card is not given back.")) if booking.card_id is not None else ""),
    )


def cancel(*, booking: Booking, by: By, reason: str = "", now: dt.datetime | None = None) -> Booking:
    """Cancel and give the seats back (to the waitlist first). Late cancels by the user cost points."""
    now = now or timeutil.now()
    booking.refresh_from_db()  # what it costs depends on what was paid: the caller's copy may be old
    preview = cancel_preview(booking=booking, now=now)
    if not preview.allowed:
        raise DomainError("too_late", preview.reason)

    seen = booking.status  # the preview was worked out for this state (e.g. unpaid): refuse if it changed
    # A card's classes come back on a cancel in time, and always when staff cancel.
    credit_back = booking.card_id is not None and (preview.credit_back or not isinstance(by, EndUser))
    facts = {"refund_fen": preview.refund_fen, "credit_back": credit_back}

    def work() -> Booking:
        with transaction.atomic():
            _transition(
                booking,
                Status.CANCELLED,
                action="cancel",
                by=by,
                now=now,
                reason=reason,
                changes={"cancelled_at": now, "cancel_reason": reason[:200]},
                data={key: value for key, value in facts.items() if value} or None,
                from_states=[seen],
                refusal=DomainError("not_allowed", _("This booking has changed meanwhile; please look again.")),
            )
            if preview.refund_fen:
                refund_owed.send(sender=Booking, booking=booking, refund_fen=preview.refund_fen, reason=reason, now=now)
            if preview.points_penalty and isinstance(by, EndUser):
                accounts.change_points(
                    user=booking.user,
                    delta=-preview.points_penalty,
                    reason=str(_("Late cancellation of %(code)s") % {"code": booking.code}),
                    merchant=booking.merchant,
                    booking_id=booking.pk,
                    may_go_negative=booking.offering.policy.points_may_go_negative,
                    at=now,
                )
            if credit_back:
                _return_credits(booking, reason or str(_("cancelled")), now=now, by=by)
        return booking

    return with_retries(work)


def _after_acceptance(amount_fen: int, policy: Policy) -> Status:
    """An accepted booking waits for an online payment, unless it is free or paid at the venue."""
    return Status.PENDING_PAYMENT if amount_fen > 0 and policy.payment == "online" else Status.CONFIRMED


def approve(*, booking: Booking, staff: User, now: dt.datetime | None = None) -> Booking:
    """Staff accept a booking that needed approval; it then awaits payment or is confirmed."""
    to = _after_acceptance(booking.amount_fen, booking.offering.policy)
    now = now or timeutil.now()
    changes: dict[str, Any] = {}
    if to == Status.PENDING_PAYMENT:
        changes["hold_expires_at"] = now + dt.timedelta(minutes=booking.offering.policy.hold_minutes)
    return _transition(booking, to, action="approve", by=staff, now=now, changes=changes)


def reject(*, booking: Booking, staff: User, reason: str, now: dt.datetime | None = None) -> Booking:
    moment = now or timeutil.now()

    def work() -> Booking:
        with transaction.atomic():
            _transition(booking, Status.REJECTED, action="reject", by=staff, now=moment, reason=reason)
            _return_credits(booking, reason or str(_("rejected")), now=moment, by=staff)
        return booking

    return with_retries(work)


def _return_credits(booking: Booking, reason: str, *, now: dt.datetime, by: By) -> None:
    """A booking paid with a membership card gets its classes back (in the caller's transaction)."""
    if booking.card_id is None:
        return
    from yuyue.memberships import services as memberships

    memberships.return_credits(booking=booking, reason=reason, now=now, by=by if isinstance(by, User) else None)


def expire_hold(*, booking: Booking, now: dt.datetime | None = None) -> Booking:
    """An unpaid hold ran out: the seats go back."""
    return _transition(booking, Status.EXPIRED, action="expire", by=None, now=now or timeutil.now())


def release_expired_holds(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Expire every unpaid booking whose hold has run out (run periodically)."""
    now = now or timeutil.now()
    expired = 0
    for booking in Booking.objects.filter(status=Status.PENDING_PAYMENT, hold_expires_at__lte=now)[:limit]:
        try:
            expire_hold(booking=booking, now=now)
            expired += 1
        except DomainError:
            continue  # paid or cancelled meanwhile
    return expired


def confirm(*, booking: Booking, by: By = None, now: dt.datetime | None = None, reason: str = "") -> Booking:
    """A pending payment arrived (the payments module calls this): the amount is now paid."""
    return _transition(
        booking,
        Status.CONFIRMED,
        action="confirm",
        by=by,
        now=now or timeutil.now(),
        reason=reason,
        changes={"hold_expires_at": None, "paid_fen": booking.amount_fen},
        from_states=[Status.PENDING_APPROVAL, Status.PENDING_PAYMENT],
    )


def revive_expired(*, booking: Booking, by: By = None, now: dt.datetime | None = None, reason: str = "") -> Booking:
    """A payment arrived after the hold expired: take the seats and claims again and confirm.

    Seats come back only through the same conditional UPDATE as a new booking, so a seat someone
    else took meanwhile refuses (``slot_full``, ``duplicate``, ``conflict``) and nothing changes:
    the caller then refunds the payment. One transition, expired -> confirmed, recorded as a
    confirmation (``data.revived``), so messages and webhooks treat it as one.
    """
    now = now or timeutil.now()
    slot = Slot.objects.select_related("offering").get(pk=booking.slot_id)
    policy = slot.offering.policy
    keys = _claim_keys(slot=slot, policy=policy, identities=_booking_identities(booking), answers=booking.answers)

    def work() -> Booking:
        with transaction.atomic():
            if not Booking.objects.select_for_update().filter(pk=booking.pk, status=Status.EXPIRED).exists():
                raise DomainError("not_allowed")
            _lock_slots(slot.pk)
            _take_seats(slot, booking.seats)
            _take_claims(booking, keys)
            _claim_resources(slot)
            return _transition(
                booking,
                Status.CONFIRMED,
                action="confirm",
                by=by,
                now=now,
                reason=reason,
                changes={"hold_expires_at": None, "paid_fen": booking.amount_fen},
                from_states=[Status.EXPIRED],
                data={"revived": True},
            )

    return _claims_refused(lambda: with_retries(work))


def mark_refunded(*, booking: Booking, refund_fen: int, now: dt.datetime | None = None) -> Booking:
    """The money owed back on a cancelled or expired booking has reached the customer.

    ``cancelled`` means "cancelled, refund (if any) under way"; ``refunded`` means it arrived.
    """
    return _transition(
        booking, Status.REFUNDED, action="refund", by=None, now=now or timeutil.now(), data={"refund_fen": refund_fen}
    )


# --------------------------------------------------------------------------------------------
# Reschedule
# --------------------------------------------------------------------------------------------


def reschedule(*, booking: Booking, slot_id: int, by: By, now: dt.datetime | None = None) -> Booking:
    """Move a booking to another slot of the same offering: the new seat is taken before the
    old one is given back, all in one transaction, or nothing changes."""
    now = now or timeutil.now()
    policy = booking.offering.policy
    if booking.status not in CANCELLABLE:
        raise DomainError("not_allowed")
    if booking.reschedule_count >= policy.max_reschedules:
        raise DomainError(
            "limit_reached",
            _("A booking can be moved at most %(n)d times.") % {"n": policy.max_reschedules},
        )
    if now >= booking.slot.start - dt.timedelta(hours=policy.cancel_deadline_hours):
        raise DomainError("too_late", _("It is too late to change this booking."))
    new_slot = _open_slot(slot_id)
    if new_slot.offering_id != booking.offering_id or new_slot.pk == booking.slot_id:
        raise DomainError("invalid", fields={"slot_id": _("Please choose another time of the same offering.")})
    if new_slot.effective_price_fen != booking.slot.effective_price_fen:
        raise DomainError("invalid", fields={"slot_id": _("That time has a different price; cancel and book again.")})
    if booking.card is not None and booking.card.expires_at <= new_slot.start:
        raise DomainError("invalid", fields={"slot_id": _("Your membership card expires before that time.")})
    _check_window(new_slot, policy, now)
    _check_resource_seats(new_slot, booking.party_size)
    keys = _claim_keys(slot=new_slot, policy=policy, identities=_booking_identities(booking), answers=booking.answers)
    old_slot_id = booking.slot_id

    def move() -> Booking:
        with transaction.atomic():
            # Locks in the engine's order: the booking, then slots by id (so opposite moves and a
            # concurrent cancel or check-in cannot deadlock or slip in between).
            mine = Booking.objects.select_for_update().filter(
                pk=booking.pk, slot_id=old_slot_id, status__in=CANCELLABLE
            )
            if not mine.exists():
                raise DomainError("not_allowed", _("This booking has changed meanwhile."))
            _lock_slots(old_slot_id, new_slot.pk)
            _take_seats(new_slot, booking.seats)
            Claim.objects.filter(booking=booking).delete()
            _take_claims(booking, keys)
            _claim_resources(new_slot)
            Booking.objects.filter(pk=booking.pk).update(
                slot=new_slot, reschedule_count=F("reschedule_count") + 1, updated_at=now
            )
            _give_back_seats(old_slot_id, booking.seats, booking.user_id)
            _release_idle_resources(old_slot_id)
            booking.refresh_from_db()
            _record(
                booking,
                "reschedule",
                booking.status,
                booking.status,
                by=by,
                now=now,
                data={"from_slot": old_slot_id, "to_slot": new_slot.pk},
            )
            promote_waitlist(slot_id=old_slot_id, now=now)
            return booking

    return _claims_refused(lambda: with_retries(move))


# --------------------------------------------------------------------------------------------
# Waitlist
# --------------------------------------------------------------------------------------------


def join_waitlist(
    *,
    user: EndUser,
    slot_id: int,
    person_ids: Sequence[int] = (),
    party_size: int | None = None,
    answers: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> WaitlistEntry:
    """Queue for a full slot; the first in line is booked automatically when seats free up."""
    now = now or timeutil.now()
    slot = _open_slot(slot_id)
    policy = slot.offering.policy
    _check_window(slot, policy, now)
    party = _party(user=user, slot=slot, policy=policy, person_ids=person_ids, party_size=party_size)
    clean_answers = validate_answers(slot.offering.form, answers or {})
    seats = party.size if policy.seats == "party" else 1
    if slot.remaining >= seats:
        raise DomainError("invalid", fields={"slot_id": _("There are seats left: please book directly.")})
    already = [k.key for k in _claim_keys(slot=slot, policy=policy, identities=party.identities, answers={})]
    if Claim.objects.filter(key__in=already[: len(party.identities)]).exists():
        raise DomainError("duplicate")
    try:
        with transaction.atomic():
            entry = WaitlistEntry.objects.create(
                slot=slot,
                user=user,
                # Only the people a real-name booking checked: ids a count-based offering ignored
                # (possibly not even the caller's) are not kept.
                person_ids=list(person_ids) if party.attendees else [],
                party_size=party.size,
                answers=clean_answers,
                active_key=f"{slot.pk}:{user.pk}",
                created_at=now,
            )
    except IntegrityError:
        raise DomainError("duplicate", _("You are already on the waitlist for this time.")) from None
    # A seat may have freed up while we were joining, before our entry was visible to the
    # cancellation that freed it: look once more after our entry is committed.
    transaction.on_commit(lambda: promote_waitlist(slot_id=slot.pk, now=now))
    entry.refresh_from_db()
    return entry


def waitlist_position(entry: WaitlistEntry) -> int:
    return WaitlistEntry.objects.filter(slot_id=entry.slot_id, status=WaitlistStatus.WAITING, id__lte=entry.pk).count()


def leave_waitlist(*, entry: WaitlistEntry) -> None:
    """Leave the queue; too late once the entry has been booked (cancel that booking instead)."""

    def leave() -> int:
        return WaitlistEntry.objects.filter(pk=entry.pk, status=WaitlistStatus.WAITING).update(
            status=WaitlistStatus.CANCELLED, active_key=None
        )

    if not with_retries(leave):
        raise DomainError("not_allowed", _("You are no longer on this waitlist; see your bookings."))


def promote_waitlist(*, slot_id: int, now: dt.datetime | None = None) -> list[Booking]:
    """Book waiting people in order while seats are free. Strictly first come, first served:
    when the first in line does not fit, later ones wait too. Someone whose booking breaks a
    rule (already booked, banned, limit) is skipped with the reason."""
    now = now or timeutil.now()
    promoted: list[Booking] = []
    for entry in WaitlistEntry.objects.filter(slot_id=slot_id, status=WaitlistStatus.WAITING).select_related("user"):
        try:
            with transaction.atomic():
                # Take the entry first: someone leaving the queue right now either wins or is told.
                if not WaitlistEntry.objects.filter(pk=entry.pk, status=WaitlistStatus.WAITING).update(
                    status=WaitlistStatus.PROMOTED, active_key=None
                ):
                    continue
                booking = book(
                    user=entry.user,
                    slot_id=slot_id,
                    person_ids=entry.person_ids,
                    party_size=entry.party_size,
                    answers=entry.answers,
                    now=now,
                )
                WaitlistEntry.objects.filter(pk=entry.pk).update(booking=booking)
                _record(booking, "promote", booking.status, booking.status, by=None, now=now, reason="waitlist")
            promoted.append(booking)
        except DomainError as exc:
            if exc.code == "slot_full":
                break
            WaitlistEntry.objects.filter(pk=entry.pk, status=WaitlistStatus.WAITING).update(
                status=WaitlistStatus.SKIPPED, active_key=None, note=exc.message[:200]
            )
    return promoted


# --------------------------------------------------------------------------------------------
# On the day: check-in, no-show, completion, reviews
# --------------------------------------------------------------------------------------------


def voucher_for(booking: Booking, *, now: dt.datetime | None = None) -> str:
    """The text in the QR code: the booking code and a signature only the server can make.

    For offerings with ``dynamic_voucher`` a third part is a time-based code that changes every
    VOUCHER_TOTP_STEP seconds, so a screenshot stops working within a minute.
    """
    signed = f"{booking.code}.{_voucher_signature(booking.code)}"
    if booking.offering.policy.dynamic_voucher:
        return f"{signed}.{_voucher_totp(_voucher_keys()[0], booking.code, _totp_step(now or timeutil.now()))}"
    return signed


def _voucher_keys() -> list[str]:
    """Signing keys, newest first: VOUCHER_KEYS, else SECRET_KEY (what vouchers were always signed with)."""
    return list(getattr(settings, "VOUCHER_KEYS", None) or [settings.SECRET_KEY])


def _voucher_signature(code: str, key: str | None = None) -> str:
    key = key if key is not None else _voucher_keys()[0]
    return hmac.new(key.encode(), f"voucher|{code}".encode(), hashlib.sha256).hexdigest()[:12]


def _totp_step(moment: dt.datetime) -> int:
    return int(moment.timestamp()) // int(getattr(settings, "VOUCHER_TOTP_STEP", 30))


def _voucher_totp(key: str, code: str, step: int) -> str:
    """RFC 6238-style code of one time step, from the booking's secret (derived, never stored)."""
    secret = hmac.new(key.encode(), f"voucher-totp|{code}".encode(), hashlib.sha256).digest()
    digest = hmac.new(secret, step.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(int.from_bytes(digest[offset : offset + 4], 'big') & 0x7FFFFFFF) % 10**8:08d}"


@dataclass(frozen=True)
class VoucherCheck:
    """What a gate can tell from the scanned text alone, without the database."""

    genuine: bool  # signed by one of our keys
    code: str = ""
    dynamic: bool = False  # carries a time-based part
    current: bool = False  # ... and it is within the allowed clock skew now


def check_voucher(voucher: str, *, now: dt.datetime | None = None) -> VoucherCheck:
    """Valid or forged, with no database query: for gates that must answer offline and fast."""
    code, _sep, rest = (voucher or "").strip().partition(".")
    signature, _sep, totp = rest.partition(".")
    if not code or not signature:
        return VoucherCheck(genuine=False)
    for key in _voucher_keys():
        if hmac.compare_digest(signature, _voucher_signature(code, key)):
            break
    else:
        return VoucherCheck(genuine=False, code=code)
    if not totp:
        return VoucherCheck(genuine=True, code=code)
    step = _totp_step(now or timeutil.now())
    skew = int(getattr(settings, "VOUCHER_TOTP_SKEW", 1))
    current = any(
        hmac.compare_digest(totp, _voucher_totp(key, code, step + delta))
        for key in _voucher_keys()
        for delta in range(-skew, skew + 1)
    )
    return VoucherCheck(genuine=True, code=code, dynamic=True, current=current)


def booking_for_voucher(voucher: str, *, merchant: Merchant | None = None) -> Booking:
    checked = check_voucher(voucher)
    if not checked.genuine:
        raise DomainError("not_found", _("This voucher is not valid."))
    found = Booking.objects.select_related("slot", "offering").filter(code=checked.code)
    if merchant is not None:
        found = found.filter(merchant=merchant)
    booking = found.first()
    if booking is None:
        raise DomainError("not_found", _("This voucher is not valid."))
    return booking


def _check_dynamic(booking: Booking, voucher: str, now: dt.datetime) -> None:
    """Offerings with a dynamic QR admit only a code of the current time step (± the allowed skew)."""
    if not booking.offering.policy.dynamic_voucher:
        return
    checked = check_voucher(voucher, now=now)
    if not checked.dynamic:
        raise DomainError(
            "not_allowed", _("This booking needs the live QR code from the app; a saved picture is not accepted.")
        )
    if not checked.current:
        raise DomainError(
            "not_allowed",
            _("This QR code is out of date (a screenshot?). Open the booking in the app and show the live code."),
        )


def check_in(
    *, voucher: str, staff: User | None, merchant: Merchant | None = None, now: dt.datetime | None = None
) -> Booking:
    """Admit the holder of a voucher once. A second scan is refused and says when the first was."""
    now = now or timeutil.now()
    booking = booking_for_voucher(voucher, merchant=merchant)
    if booking.status in {Status.CHECKED_IN, Status.COMPLETED} and booking.checked_in_at:
        raise _already_checked_in(booking)
    _check_dynamic(booking, voucher, now)
    opens = booking.slot.start - dt.timedelta(minutes=booking.offering.policy.checkin_opens_minutes_before)
    if now < opens:
        when = opens.astimezone(timeutil.local_zone())
        raise DomainError("not_open", _("Check-in opens at %(when)s.") % {"when": f"{when:%Y-%m-%d %H:%M}"})
    if now >= booking.slot.end:
        raise DomainError("too_late", _("This booking's time is over."))
    try:
        return _transition(
            booking, Status.CHECKED_IN, action="check_in", by=staff, now=now, changes={"checked_in_at": now}
        )
    except DomainError:
        booking.refresh_from_db()
        if booking.checked_in_at:  # a concurrent scan won
            raise _already_checked_in(booking) from None
        raise DomainError(
            "not_allowed",
            _("This booking is %(status)s and cannot be checked in.") % {"status": booking.get_status_display()},
        ) from None


def _already_checked_in(booking: Booking) -> DomainError:
    assert booking.checked_in_at is not None
    first = booking.checked_in_at.astimezone(timeutil.local_zone())
    return DomainError(
        "duplicate",
        _("Already checked in at %(when)s.") % {"when": f"{first:%Y-%m-%d %H:%M:%S}"},
        checked_in_at=booking.checked_in_at.isoformat(),
    )


def mark_no_show(*, booking: Booking, staff: User | None, now: dt.datetime | None = None) -> Booking:
    """The person did not come. Enough no-shows within the policy's window ban the account."""
    now = now or timeutil.now()
    if now < booking.slot.start:
        raise DomainError("not_allowed", _("The booking has not started yet."))
    with transaction.atomic():
        _transition(booking, Status.NO_SHOW, action="no_show", by=staff, now=now)
        policy = booking.offering.policy
        if policy.no_show_points:
            accounts.change_points(
                user=booking.user,
                merchant=booking.merchant,
                delta=-policy.no_show_points,
                reason=str(_("No-show at %(offering)s") % {"offering": booking.offering.title}),
                booking_id=booking.pk,
                may_go_negative=policy.points_may_go_negative,
                at=now,
            )
        rule = policy.no_show_ban
        if rule is not None:
            since = now - dt.timedelta(days=rule.window_days)
            count = Booking.objects.filter(
                user_id=booking.user_id, merchant_id=booking.merchant_id, status=Status.NO_SHOW, slot__start__gte=since
            ).count()
            if (
                count >= rule.count
                and accounts.active_ban(user=booking.user, merchant_id=booking.merchant_id, at=now) is None
            ):
                Ban.objects.create(
                    user_id=booking.user_id,
                    merchant_id=booking.merchant_id,
                    starts_at=now,
                    ends_at=now + dt.timedelta(days=rule.ban_days),
                    reason=str(
                        _("%(count)d no-shows within %(days)d days") % {"count": count, "days": rule.window_days}
                    ),
                )
    return booking


def complete_finished(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Checked-in bookings whose time is over become completed (run periodically), earning the
    policy's completion points in the same transaction."""
    now = now or timeutil.now()
    done = 0
    finished = Booking.objects.filter(status=Status.CHECKED_IN, slot__end__lte=now).select_related(
        "offering", "user", "merchant"
    )
    for booking in finished[:limit]:
        try:
            _complete(booking, now)
            done += 1
        except DomainError:
            continue  # changed meanwhile
    return done


def _complete(booking: Booking, now: dt.datetime) -> Booking:
    def work() -> Booking:
        with transaction.atomic():
            _transition(booking, Status.COMPLETED, action="complete", by=None, now=now)
            points = booking.offering.policy.completion_points
            if points:
                accounts.change_points(
                    user=booking.user,
                    merchant=booking.merchant,
                    delta=points,
                    reason=str(_("Completed %(offering)s") % {"offering": booking.offering.title}),
                    booking_id=booking.pk,
                    at=now,
                )
        return booking

    return with_retries(work)


def add_review(
    *, booking: Booking, user: EndUser, rating: int, text: str = "", now: dt.datetime | None = None
) -> Review:
    """A review after the visit; it updates the offering's and the resource's average rating."""
    if booking.user_id != user.pk:
        raise DomainError("forbidden")
    if booking.status not in {Status.CHECKED_IN, Status.COMPLETED}:
        raise DomainError("not_allowed", _("You can review after your visit."))
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise DomainError("invalid", fields={"rating": _("Please rate from 1 to 5.")})
    # The person who served is rated: resources sort by type, so coach/doctor/driver come first.
    resource = booking.slot.resources.order_by("type", "pk").first()
    try:
        with transaction.atomic():
            review = Review.objects.create(
                booking=booking,
                user=user,
                offering_id=booking.offering_id,
                resource=resource,
                rating=rating,
                text=(text or "").strip()[:2000],
                created_at=now or timeutil.now(),
            )
            refresh_ratings(offering_id=booking.offering_id, resource_id=resource.pk if resource else None)
    except IntegrityError:
        raise DomainError("duplicate", _("You have already reviewed this booking.")) from None
    return review


def refresh_ratings(*, offering_id: int, resource_id: int | None = None) -> None:
    visible = Review.objects.filter(is_hidden=False)
    Offering.objects.filter(pk=offering_id).update(
        rating=visible.filter(offering_id=offering_id).aggregate(avg=Avg("rating"))["avg"]
    )
    if resource_id is not None:
        Resource.objects.filter(pk=resource_id).update(
            rating=visible.filter(resource_id=resource_id).aggregate(avg=Avg("rating"))["avg"]
        )


# --------------------------------------------------------------------------------------------
# Transient database errors
# --------------------------------------------------------------------------------------------

T = TypeVar("T")
_TRANSIENT_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock (PostgreSQL)
_TRANSIENT_MYSQL = {1205, 1213}  # lock wait timeout, deadlock (MariaDB/MySQL)


def _is_transient(exc: Exception) -> bool:
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    if cause is not None and getattr(cause, "args", None) and cause.args[0] in _TRANSIENT_MYSQL:
        return True
    return "database is locked" in str(exc)


def with_retries(work: Callable[[], T], attempts: int = 5) -> T:
    """Run a transaction again when the database broke it off to resolve a deadlock.

    Inside an outer transaction there is nothing to retry: the error goes up.
    """
    for attempt in range(attempts):
        try:
            return work()
        except (OperationalError, IntegrityError) as exc:
            if connection.in_atomic_block or attempt == attempts - 1 or not _is_transient(exc):
                raise
            log.info("retrying after transient database error: %s", exc)
            time.sleep(random.uniform(0, 0.02 * 2**attempt))
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------
# Closures: the merchant closes a slot (a typhoon, a sick coach)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotClosure:
    """What closing one slot did: bookings cancelled, and active ones that could not be (already checked in)."""

    slot_id: int
    cancelled: list[Booking]
    untouched: list[Booking]
    refunds: dict[int, int]  # booking id -> fen owed back (all that was paid)

    @property
    def refund_fen(self) -> int:
        return sum(self.refunds.values())

    @property
    def seats_freed(self) -> int:
        return sum(b.seats for b in self.cancelled)


def cancel_for_closure(*, slot_id: int, by: User | None, reason: str, now: dt.datetime | None = None) -> SlotClosure:
    """Close a slot and cancel every booking on it with the merchant's reason, in one transaction.

    The slot is closed first (no new booking can take a seat), the waiting list is emptied, and
    each cancellable booking is cancelled through ``_transition`` as the merchant's doing: seats
    and claims go back, and the event records the full refund owed (the customer did nothing
    wrong, so no late-cancel cost applies). Bookings already checked in are left as they are and
    reported. Locks follow the engine's order: the bookings, then the slot.
    """
    now = now or timeutil.now()
    reason = (reason or "").strip()[:200]

    def cancellable() -> list[int]:
        return list(
            Booking.objects.select_for_update()
            .filter(slot_id=slot_id, status__in=CANCELLABLE)
            .order_by("pk")
            .values_list("pk", flat=True)
        )

    def work() -> SlotClosure:
        with transaction.atomic():
            cancellable()
            if not _lock_slots(slot_id):
                raise DomainError("not_found", _("This time slot does not exist."))
            Slot.objects.filter(pk=slot_id).update(status=SlotStatus.CLOSED)
            WaitlistEntry.objects.filter(slot_id=slot_id, status=WaitlistStatus.WAITING).update(
                status=WaitlistStatus.CANCELLED, active_key=None, note=reason
            )
            cancelled: list[Booking] = []
            refunds: dict[int, int] = {}
            # Read again under the slot lock: a booking that took a seat just before the slot closed is included.
            for booking in Booking.objects.filter(pk__in=cancellable()).select_related("offering", "slot"):
                refund = booking.paid_fen  # all that was paid online; nothing for on-site payment
                try:
                    _transition(
                        booking,
                        Status.CANCELLED,
                        action="close",
                        by=by,
                        now=now,
                        reason=reason,
                        changes={"cancelled_at": now, "cancel_reason": reason},
                        # Recorded with the event (not updated afterwards): the ledger seals it as written.
                        data={
                            "closure": True,
                            "refund_fen": refund,
                            "refund_percent": 100,
                            **({"credit_back": True} if booking.card_id is not None else {}),
                        },
                    )
                except DomainError:
                    continue  # changed by its owner a moment ago
                refunds[booking.pk] = refund
                if refund:
                    refund_owed.send(sender=Booking, booking=booking, refund_fen=refund, reason=reason, now=now)
                _return_credits(booking, reason, now=now, by=by)  # paid with a card: its classes go back
                cancelled.append(booking)
                # Notification hook: when the notification service exists, write its outbox row
                # ("cancelled by the merchant: <reason>, full refund") here, in this transaction,
                # so the message goes out exactly when the cancellation commits.
            untouched = list(
                Booking.objects.filter(slot_id=slot_id, status__in=ACTIVE_STATUSES).exclude(
                    pk__in=[b.pk for b in cancelled]
                )
            )
            return SlotClosure(slot_id=slot_id, cancelled=cancelled, untouched=untouched, refunds=refunds)

    return with_retries(work)


# --------------------------------------------------------------------------------------------
# Minimum attendance: a class with too few people is cancelled at its check time
# --------------------------------------------------------------------------------------------


def min_attendance_reason() -> str:
    """The reason customers are told, in the site's language (it is stored with the cancellation)."""
    with translation.override(settings.LANGUAGE_CODE):
        return str(_("Not enough people booked: the class is cancelled"))


def check_min_attendance(*, now: dt.datetime | None = None) -> int:
    """Cancel every slot that has fewer seats booked than its policy's ``min_attendance`` once its
    check time (``min_attendance_check_hours`` before the start) has come; returns the slots cancelled.

    Each slot is checked once: an ``AttendanceCheck`` row (unique per slot) is written in the
    transaction of the check, so running the job twice, or on two workers, changes nothing more.
    Cancelling goes through ``cancel_for_closure``: everyone gets back what they paid online (the
    payments app listens) or the classes of their card, and the closure notification says why.
    """
    now = now or timeutil.now()
    kinds_on = [code for code, kind in KINDS.items() if kind.policy.min_attendance]
    candidates = Offering.objects.filter(Q(kind__in=kinds_on) | Q(policy_overrides__has_key="min_attendance"))
    cancelled = 0
    for offering in candidates:
        policy = offering.policy
        if not policy.min_attendance:
            continue
        due = Slot.objects.filter(
            offering=offering,
            status=SlotStatus.OPEN,
            start__gt=now,
            start__lte=now + dt.timedelta(hours=policy.min_attendance_check_hours),
            attendance_check__isnull=True,
        ).values_list("pk", flat=True)
        for slot_id in list(due):
            if _check_attendance(slot_id, policy.min_attendance, now):
                cancelled += 1
    return cancelled


def _check_attendance(slot_id: int, minimum: int, now: dt.datetime) -> bool:
    """Check one slot once; True if it was cancelled. Seats held count (a hold awaiting payment too);
    a booking that races the check is cancelled and refunded with the others."""

    def work() -> bool:
        with transaction.atomic():
            seats = Slot.objects.values_list("reserved", flat=True).get(pk=slot_id)
            try:
                with transaction.atomic():
                    check = AttendanceCheck.objects.create(
                        slot_id=slot_id, checked_at=now, seats_booked=seats, minimum=minimum
                    )
            except IntegrityError:
                return False  # checked a moment ago by another worker
            if seats >= minimum:
                return False
            cancel_for_closure(slot_id=slot_id, by=None, reason=min_attendance_reason(), now=now)
            AttendanceCheck.objects.filter(pk=check.pk).update(cancelled=True)
            return True

    return with_retries(work)
