"""Personal data lifecycle (PIPL): separate consent, "download my data", account deletion,
anonymisation after the retention period, and audited decryption of ID numbers by staff.

Anonymisation wipes personal fields in place and keeps every row, count, amount, status and date,
so statistics, exports and payments stay as they were. The ledger is untouched: its entries seal
booking events (booking code, statuses, actor ids, reasons, amounts), never attendee names, ID
numbers or phones, so ``yuyue ledger verify`` still passes after anonymisation.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from yuyue.accounts import services as accounts
from yuyue.accounts import tokencache
from yuyue.accounts.models import ApiToken, EndUser, Person
from yuyue.booking.models import ACTIVE_STATUSES, Attendee, Booking, Claim, Review, Status, WaitlistEntry
from yuyue.core import personal, ratelimit, timeutil
from yuyue.core.errors import DomainError
from yuyue.privacy import consent as texts
from yuyue.privacy.models import Anonymisation, Consent, ConsentKind, IdReveal, RevealPurpose

# What wiped names and answers read afterwards; a fixed Chinese word, like the data it replaces.
ANONYMISED = "已匿名"
# Bookings in these states are over and keep no seat: their personal data may go after the period.
FINISHED_STATUSES = (
    Status.COMPLETED,
    Status.CANCELLED,
    Status.NO_SHOW,
    Status.REFUNDED,
    Status.EXPIRED,
    Status.REJECTED,
)
# Form answers of these types are personal (free text, phones, IDs); choices, numbers and dates
# are kept, since merchants count them (e.g. which department, how many luggage items).
PERSONAL_ANSWER_TYPES = frozenset({"text", "phone", "id_number"})
CONSENT_FIELD = "sensitive_consent"


def _ip(value: str | None) -> str | None:
    """An address for the audit columns, or None when the request gave none that parses."""
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


# --- Separate consent ---------------------------------------------------------------------------


def sensitive_kinds(*, id_number: str | None, birth_date: dt.date | None, today: dt.date | None = None) -> list[str]:
    """Which separate consents adding such a person needs: an ID number, a child under 14, both or none.

    Lenient on purpose: an ID that does not validate still asks for consent, the ID check itself
    reports what is wrong with it.
    """
    today = today or timeutil.today()
    kinds: list[str] = []
    born = birth_date
    if id_number and id_number.strip():
        kinds.append(ConsentKind.ID_NUMBER)
        with contextlib.suppress(DomainError, ValueError):  # an invalid ID: its own error says so
            born = personal.birth_date_from_id(personal.normalize_id_number(id_number))
    age = personal.age_on(born, today)
    if age is not None and age < accounts.MINOR_AGE:
        kinds.append(ConsentKind.MINOR)
    return kinds


def _consent_missing() -> str:
    return gettext("Please agree separately to the processing of this sensitive personal information.")


def add_person(*, owner: EndUser, consent: bool, ip: str | None = None, **fields: Any) -> Person:
    """Add someone to "my people" (``accounts.services.add_person``), with the separate consent an
    ID number or a child under 14 needs recorded in the same transaction.

    Without the consent, nothing is stored and ``invalid`` names the ``sensitive_consent`` field
    (next to any other field errors).
    """
    now = timeutil.now()
    wanted = sensitive_kinds(id_number=fields.get("id_number"), birth_date=fields.get("birth_date"))
    missing = bool(wanted) and not consent
    with transaction.atomic():
        try:
            person = accounts.add_person(owner=owner, **fields)
        except DomainError as exc:
            if missing and exc.code == "invalid":
                exc.fields.setdefault(CONSENT_FIELD, _consent_missing())
            raise
        kinds = sensitive_kinds(id_number=person.id_number, birth_date=person.birth_date)
        if kinds and not consent:
            raise DomainError("invalid", fields={CONSENT_FIELD: _consent_missing()})  # rolls the person back
        Consent.objects.bulk_create(
            [
                Consent(user=owner, person=person, kind=k, text_version=texts.CURRENT[k], given_at=now, ip=_ip(ip))
                for k in kinds
            ]
        )
    return person


def _live_person(owner: EndUser, person_id: int) -> Person:
    person = Person.objects.filter(pk=person_id, owner=owner, is_deleted=False).first()
    if person is None:
        raise DomainError("not_found")
    return person


def withdraw_id_number(*, owner: EndUser, person_id: int) -> Person:
    """Withdraw the consent for a person's ID number: the number is deleted from "my people".

    Bookings already made keep their own copy until they are anonymised (after the retention
    period) or the account is deleted; withdrawing does not undo processing before it.
    """
    now = timeutil.now()
    with transaction.atomic():
        person = _live_person(owner, person_id)
        Person.objects.filter(pk=person.pk).update(id_number="", id_hash="")
        Consent.objects.filter(person=person, kind=ConsentKind.ID_NUMBER, withdrawn_at=None).update(withdrawn_at=now)
    person.refresh_from_db()
    return person


def remove_person(*, owner: EndUser, person_id: int) -> None:
    """Remove someone from "my people": hidden as before, and their ID number and phone wiped, every
    consent about them withdrawn (the name stays for the bookings' history until anonymisation)."""
    now = timeutil.now()
    with transaction.atomic():
        person = _live_person(owner, person_id)
        accounts.remove_person(owner=owner, person_id=person.pk)
        Person.objects.filter(pk=person.pk).update(id_number="", id_hash="", phone="", phone_hash="")
        Consent.objects.filter(person=person, withdrawn_at=None).update(withdrawn_at=now)


# --- Download my data ------------------------------------------------------------------------------


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def my_data(user: EndUser, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Everything yuyue keeps about an account, decrypted for its owner (PIPL art. 45), as JSON.

    Counted against ``YUYUE_RATE_DATA_EXPORT``: the answer holds every ID number of the account.
    """
    from yuyue.assistant.models import Conversation
    from yuyue.memberships.models import Card
    from yuyue.payments.models import Payment, Refund

    now = now or timeutil.now()
    ratelimit.hit("data-export", str(user.pk), settings.RATE_DATA_EXPORT, now=now)
    bookings = list(
        Booking.objects.filter(user=user)
        .select_related("offering", "merchant", "slot")
        .prefetch_related("attendees")
        .order_by("id")
    )
    return {
        "format": "yuyue-my-data/1",
        "exported_at": now.isoformat(),
        "account": {
            "id": user.pk,
            "phone": user.phone,
            "nickname": user.nickname,
            "wechat_linked": bool(user.wechat_openid),
            "alipay_linked": bool(user.alipay_user_id),
            "points_balance": user.points_balance,
            "created_at": _time(user.created_at),
        },
        "people": [
            {
                "id": p.pk,
                "name": p.name,
                "relation": p.relation,
                "id_number": p.id_number,
                "phone": p.phone,
                "birth_date": p.birth_date.isoformat() if p.birth_date else None,
                "guardian_id": p.guardian_id,
                "created_at": _time(p.created_at),
            }
            for p in Person.objects.filter(owner=user, is_deleted=False)
        ],
        "bookings": [
            {
                "code": b.code,
                "status": b.status,
                "merchant": b.merchant.name,
                "offering": b.offering.title,
                "start": _time(b.slot.start),
                "end": _time(b.slot.end),
                "party_size": b.party_size,
                "amount_fen": b.amount_fen,
                "paid_fen": b.paid_fen,
                "answers": b.answers,
                "attendees": [
                    {
                        "name": a.name,
                        "id_number": a.id_number,
                        "phone": a.phone,
                        "birth_date": a.birth_date.isoformat() if a.birth_date else None,
                        "guardian_name": a.guardian_name,
                    }
                    for a in b.attendees.all()
                ],
                "created_at": _time(b.created_at),
                "cancelled_at": _time(b.cancelled_at),
                "cancel_reason": b.cancel_reason,
            }
            for b in bookings
        ],
        "payments": [
            {
                "out_trade_no": p.out_trade_no,
                "booking": p.booking.code,
                "provider": p.provider,
                "amount_fen": p.amount_fen,
                "state": p.state,
                "paid_at": _time(p.paid_at),
                "created_at": _time(p.created_at),
            }
            for p in Payment.objects.filter(booking__user=user).select_related("booking").order_by("id")
        ],
        "refunds": [
            {
                "out_refund_no": r.out_refund_no,
                "booking": r.booking.code,
                "refund_fen": r.refund_fen,
                "state": r.state,
                "reason": r.reason,
                "finished_at": _time(r.finished_at),
                "created_at": _time(r.created_at),
            }
            for r in Refund.objects.filter(booking__user=user).select_related("booking").order_by("id")
        ],
        "points": [
            {
                "merchant": e.merchant.name if e.merchant else None,
                "delta": e.delta,
                "balance_after": e.balance_after,
                "reason": e.reason,
                "at": _time(e.created_at),
            }
            for e in user.points_entries.select_related("merchant").order_by("id")
        ],
        "cards": [
            {
                "merchant": c.merchant.name,
                "product": c.product.name,
                "credits_total": c.credits_total,
                "credits_left": c.credits_left,
                "expires_at": _time(c.expires_at),
                "status": c.status,
                "price_fen": c.price_fen,
            }
            for c in Card.objects.filter(user=user).select_related("merchant", "product").order_by("id")
        ],
        "consents": [
            {
                "kind": c.kind,
                "person_id": c.person_id,
                "text_version": c.text_version,
                "text": texts.text(c.kind, c.text_version),
                "given_at": _time(c.given_at),
                "ip": c.ip,
                "withdrawn_at": _time(c.withdrawn_at),
            }
            for c in Consent.objects.filter(user=user).order_by("id")
        ],
        "reviews": [
            {"booking": r.booking.code, "rating": r.rating, "text": r.text, "at": _time(r.created_at)}
            for r in Review.objects.filter(user=user).select_related("booking").order_by("id")
        ],
        "assistant_conversations": [
            {
                "started_at": _time(c.created_at),
                "messages": [
                    {"from": m.sender, "text": m.text, "at": _time(m.created_at)} for m in c.messages.order_by("id")
                ],
            }
            for c in Conversation.objects.filter(user=user).order_by("id")
        ],
    }


# --- Delete my account ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blockers:
    """What keeps an account from being deleted now: things the user would lose or still expects."""

    bookings: list[str]  # codes of upcoming bookings still held
    payments: list[str]  # payment numbers still being paid
    refunds: list[str]  # refunds not yet through
    cards: list[str]  # membership cards with classes left

    def __bool__(self) -> bool:
        return bool(self.bookings or self.payments or self.refunds or self.cards)

    def as_fields(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        if self.bookings:
            fields["bookings"] = gettext("Cancel these upcoming bookings first: %(codes)s") % {
                "codes": "、".join(self.bookings)
            }
        if self.payments:
            fields["payments"] = gettext("These payments are still under way: %(numbers)s") % {
                "numbers": "、".join(self.payments)
            }
        if self.refunds:
            fields["refunds"] = gettext("These refunds are not through yet: %(numbers)s") % {
                "numbers": "、".join(self.refunds)
            }
        if self.cards:
            fields["cards"] = gettext("These membership cards still have classes left: %(names)s") % {
                "names": "、".join(self.cards)
            }
        return fields


def deletion_blockers(user: EndUser, *, now: dt.datetime | None = None) -> Blockers:
    """Upcoming active bookings, money in flight and prepaid classes: deleting would lose them, so
    the user settles them first (we do not cancel or forfeit anything on their behalf)."""
    from yuyue.memberships.models import Card, CardStatus
    from yuyue.payments.models import Payment, PaymentState, Refund, RefundState

    now = now or timeutil.now()
    upcoming = (
        Booking.objects.filter(user=user, status__in=ACTIVE_STATUSES - {Status.COMPLETED, Status.NO_SHOW})
        .filter(slot__end__gt=now)
        .order_by("slot__start")
        .values_list("code", flat=True)
    )
    return Blockers(
        bookings=list(upcoming),
        payments=list(
            Payment.objects.filter(booking__user=user, state=PaymentState.PENDING).values_list(
                "out_trade_no", flat=True
            )
        ),
        refunds=list(
            Refund.objects.filter(booking__user=user, state__in=[RefundState.PENDING, RefundState.FAILED]).values_list(
                "out_refund_no", flat=True
            )
        ),
        cards=[
            f"{name}（{left}）"
            for name, left in Card.objects.filter(
                user=user, status=CardStatus.ACTIVE, credits_left__gt=0, expires_at__gt=now
            ).values_list("product__name", "credits_left")
        ],
    )


def delete_account(user: EndUser, *, now: dt.datetime | None = None) -> None:
    """Delete an account (PIPL art. 47): refused with the list of blockers, otherwise anonymised.

    The account row stays as an anonymous, disabled record (its bookings, payments and ledger
    entries point at it, and merchant statistics count them); phone, nickname, mini-program ids,
    people, attendee data, review texts and assistant conversations are wiped; every token is
    revoked and H5 sessions end because the account is no longer active.
    """
    from yuyue.assistant.models import Conversation

    now = now or timeutil.now()
    with transaction.atomic():
        # The row lock makes a booking made at this moment by the same account wait for us.
        locked = EndUser.objects.select_for_update().filter(pk=user.pk, is_active=True).first()
        if locked is None:
            raise DomainError("not_found")
        blockers = deletion_blockers(locked, now=now)
        if blockers:
            raise DomainError(
                "not_allowed",
                _("Your account cannot be deleted yet; please settle the items listed first."),
                fields=blockers.as_fields(),
            )
        EndUser.objects.filter(pk=user.pk).update(
            phone="", phone_hash=None, nickname="", wechat_openid=None, alipay_user_id=None, is_active=False
        )
        ApiToken.objects.filter(user=user, revoked_at=None).update(revoked_at=now)
        # A bulk update sends no signals: drop the shared token cache's entries ourselves.
        transaction.on_commit(lambda: tokencache.forget_user(user_id=user.pk))
        Person.objects.filter(owner=user).update(
            name=ANONYMISED, id_number="", id_hash="", phone="", phone_hash="", birth_date=None, is_deleted=True
        )
        Consent.objects.filter(user=user, withdrawn_at=None).update(withdrawn_at=now)
        WaitlistEntry.objects.filter(user=user, status="waiting").update(status="cancelled", active_key=None)
        Review.objects.filter(user=user).update(text="")
        Conversation.objects.filter(user=user).delete()
        booking_ids = list(
            Booking.objects.filter(user=user).exclude(pk__in=_anonymised_ids()).values_list("pk", flat=True)
        )
        _anonymise(booking_ids, reason="account_deleted", now=now)
    user.refresh_from_db()


# --- Anonymisation after the retention period ---------------------------------------------------------


def _anonymised_ids() -> Any:
    return Anonymisation.objects.values("booking_id")


def due_for_anonymisation(*, now: dt.datetime | None = None) -> Any:
    """Finished bookings whose slot ended more than ``YUYUE_PERSONAL_DATA_RETENTION_DAYS`` ago and
    that were not anonymised yet (a queryset, oldest first)."""
    now = now or timeutil.now()
    cutoff = now - dt.timedelta(days=settings.PERSONAL_DATA_RETENTION_DAYS)
    return (
        Booking.objects.filter(status__in=FINISHED_STATUSES, slot__end__lt=cutoff)
        .exclude(pk__in=_anonymised_ids())
        .order_by("pk")
    )


def anonymise_finished(*, now: dt.datetime | None = None, batch: int = 500, dry_run: bool = False) -> int:
    """The periodic job: anonymise due bookings in batches; returns how many (would be) anonymised.

    Idempotent (done bookings get an ``Anonymisation`` row and are skipped next time), and each
    batch is one transaction, so a crash loses at most a batch's work, never half a booking.
    """
    now = now or timeutil.now()
    due = due_for_anonymisation(now=now)
    if dry_run:
        return due.count()
    # People removed before removal wiped them (older releases) lose their ID number and phone too.
    Person.objects.filter(is_deleted=True).exclude(id_hash="", phone_hash="").update(
        id_number="", id_hash="", phone="", phone_hash=""
    )
    done = 0
    while ids := list(due.values_list("pk", flat=True)[:batch]):
        with transaction.atomic():
            done += _anonymise(ids, reason="retention", now=now)
        if len(ids) < batch:
            break
    return done


def _anonymise(booking_ids: Iterable[int], *, reason: str, now: dt.datetime) -> int:
    """Wipe the personal data of these bookings, in the caller's transaction.

    Kept: the booking row (code, status, seats, amounts, dates), its events and ledger entries,
    payments and refunds, choice/number/date answers. Wiped: attendee names, ID numbers, phones,
    birth dates and guardians, text/phone/ID answers, and the claim rows (keyed by ID hashes) that
    only mattered while the slot could still be booked.
    """
    ids = list(booking_ids)
    if not ids:
        return 0
    Attendee.objects.filter(booking_id__in=ids).update(
        name=ANONYMISED, id_number="", id_hash="", phone="", phone_hash="", birth_date=None, guardian_name=""
    )
    # Claims of a slot that is over can no longer refuse anyone (a deleted account has no upcoming one).
    Claim.objects.filter(booking_id__in=ids, booking__slot__end__lt=now).delete()
    forms: dict[int, list[Any]] = {}
    for booking in Booking.objects.filter(pk__in=ids).select_related("offering"):
        if booking.offering_id not in forms:
            forms[booking.offering_id] = list(booking.offering.form)
        answers = _anonymised_answers(forms[booking.offering_id], booking.answers or {})
        if answers != booking.answers:
            Booking.objects.filter(pk=booking.pk).update(answers=answers)
    Anonymisation.objects.bulk_create([Anonymisation(booking_id=i, reason=reason, at=now) for i in ids])
    return len(ids)


def _anonymised_answers(form: list[Any], answers: dict[str, Any]) -> dict[str, Any]:
    kinds = {f.key: f.type for f in form}
    # Unknown keys (a field removed from the form since) are treated as personal.
    return {
        key: (ANONYMISED if kinds.get(key, "text") in PERSONAL_ANSWER_TYPES and value not in ("", None) else value)
        for key, value in answers.items()
    }


# --- Staff see full ID numbers only through an audited action ----------------------------------------


def _check_reveal_allowed(desk: Any, purpose: str) -> None:
    if not desk.can("personal.full"):
        raise DomainError("forbidden", _("Only owners and managers may see full ID numbers."))
    if purpose not in RevealPurpose.values:
        raise DomainError("invalid", fields={"purpose": _("Please choose why you need the full ID number.")})


def reveal_booking_ids(
    *, desk: Any, booking: Booking, purpose: str, note: str = "", ip: str | None = None
) -> dict[str, Any]:
    """The full ID numbers of one booking (attendees and ID answers), one audit row per number shown.

    ``booking`` must already be scoped to the desk (``console.access.get_scoped_or_404``); the
    merchant is checked again here, so a row of another merchant is never decrypted.
    """
    _check_reveal_allowed(desk, purpose)
    if booking.merchant_id != desk.merchant.pk:
        raise DomainError("not_found")
    now = timeutil.now()
    attendees = [a for a in booking.attendees.all() if a.id_number]
    id_answers = [
        (f.label, str(booking.answers[f.key]))
        for f in booking.offering.form
        if f.type == "id_number" and booking.answers.get(f.key) not in ("", None, ANONYMISED)
    ]
    rows = [
        IdReveal(
            merchant=desk.merchant,
            staff_user=desk.user,
            booking=booking,
            attendee=a,
            what="attendee",
            purpose=purpose,
            note=note[:200],
            ip=_ip(ip),
            at=now,
        )
        for a in attendees
    ] + [
        IdReveal(
            merchant=desk.merchant,
            staff_user=desk.user,
            booking=booking,
            what="answer",
            purpose=purpose,
            note=f"{label}: {note}"[:200],
            ip=_ip(ip),
            at=now,
        )
        for label, _value in id_answers
    ]
    IdReveal.objects.bulk_create(rows)
    return {
        "attendees": [{"name": a.name, "id_number": a.id_number} for a in attendees],
        "answers": id_answers,
    }


def note_full_export(*, desk: Any, purpose: str, count: int, note: str = "", ip: str | None = None) -> IdReveal:
    """An export with full ID numbers: owners only (a manager exports masked), one audit row."""
    from yuyue.tenants.models import Role

    _check_reveal_allowed(desk, purpose)
    if desk.role != Role.OWNER:
        raise DomainError("forbidden", _("Only the owner may export full ID numbers."))
    return IdReveal.objects.create(
        merchant=desk.merchant,
        staff_user=desk.user,
        what="export",
        count=count,
        purpose=purpose,
        note=note[:200],
        ip=_ip(ip),
    )
