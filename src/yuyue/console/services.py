"""What staff do to bookings, customers and reviews: the engine's rules, the desk's scope, one audit row.

Every function takes the desk (who, for which merchant) and the client address, checks that the
object is within the desk's scope, calls the engine (``booking.services``) or the accounts
service, and writes its audit entry in the same transaction: the change and its record commit
together or not at all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from yuyue.accounts import services as accounts
from yuyue.accounts.models import Ban, EndUser, Person, Relation
from yuyue.booking import services as engine
from yuyue.booking.models import Booking, Review
from yuyue.console.access import Desk, record, scope_bookings, scope_slots
from yuyue.console.models import CustomerNote
from yuyue.core import personal
from yuyue.core.errors import DomainError
from yuyue.scheduling.models import Slot


def _in_scope(desk: Desk, booking: Booking) -> Booking:
    found = scope_bookings(desk, Booking.objects.select_related("slot", "offering", "user")).filter(pk=booking.pk)
    row = found.first()
    if row is None:
        raise DomainError("not_found")
    return row


def _need_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("invalid", fields={"reason": _("Please give a reason.")})
    return reason[:200]


# --- Bookings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Someone a phone caller books for: a name, and the ID number/phone/birth date the offering needs."""

    name: str
    id_number: str = ""
    phone: str = ""
    birth_date: dt.date | None = None
    relation: str = Relation.OTHER


def _person_for(owner: EndUser, caller: Caller, *, consent: bool, ip: str | None) -> Person:
    """The caller's person entry: an existing one with the same ID number (or name), else a new one.

    A new one with an ID number, or a child under 14, needs the separate consent the desk read to
    the caller (``consent``): it is recorded exactly as a user's own, with its text version.
    """
    people = Person.objects.filter(owner=owner, is_deleted=False)
    if caller.id_number:
        digest = personal.id_hash(personal.normalize_id_number(caller.id_number))
        found = people.filter(id_hash=digest).first()
    else:
        found = people.filter(name=caller.name.strip(), id_hash="").first()
    if found is not None:
        return found
    from yuyue.privacy import services as privacy

    return privacy.add_person(
        owner=owner,
        consent=consent,
        ip=ip,
        name=caller.name,
        relation=caller.relation,
        id_number=caller.id_number or None,
        phone=caller.phone or None,
        birth_date=caller.birth_date,
    )


def book_for_caller(
    *,
    desk: Desk,
    ip: str | None,
    phone: str,
    slot_id: int,
    people: list[Caller],
    party_size: int | None = None,
    answers: dict[str, Any] | None = None,
    sensitive_consent: bool = False,
    now: dt.datetime | None = None,
) -> Booking:
    """A phone booking: the caller's account (by phone), their people, then the engine's ``book`` with
    exactly the rules a user booking online meets; ``booked_by`` records the staff member.

    ``sensitive_consent``: the caller agreed, after hearing the consent texts, to the processing
    of the ID numbers and children's data given (PIPL art. 29/31), as a user ticks it online.
    """
    if not scope_slots(desk, Slot.objects.filter(pk=slot_id)).exists():
        raise DomainError("not_found", _("This time slot does not exist."))
    with transaction.atomic():
        user = accounts.get_or_create_user_by_phone(phone)
        person_ids = [_person_for(user, caller, consent=sensitive_consent, ip=ip).pk for caller in people]
        booking = engine.book(
            user=user,
            slot_id=slot_id,
            person_ids=person_ids,
            party_size=party_size,
            answers=answers,
            booked_by=desk.user,
            now=now,
        )
        record(
            merchant=desk.merchant,
            staff_user=desk.user,
            action="booking.create",
            obj=booking,
            ip=ip,
            slot=slot_id,
            people=len(person_ids),
            sensitive_consent=sensitive_consent,
        )
    return booking


def cancel(*, desk: Desk, ip: str | None, booking: Booking, reason: str, now: dt.datetime | None = None) -> Booking:
    reason = _need_reason(reason)
    booking = _in_scope(desk, booking)
    with transaction.atomic():
        engine.cancel(booking=booking, by=desk.user, reason=reason, now=now)
        record(merchant=desk.merchant, staff_user=desk.user, action="booking.cancel", obj=booking, ip=ip, reason=reason)
    return booking


def no_show(*, desk: Desk, ip: str | None, booking: Booking, now: dt.datetime | None = None) -> Booking:
    booking = _in_scope(desk, booking)
    with transaction.atomic():
        engine.mark_no_show(booking=booking, staff=desk.user, now=now)
        record(merchant=desk.merchant, staff_user=desk.user, action="booking.no_show", obj=booking, ip=ip)
    return booking


def move(*, desk: Desk, ip: str | None, booking: Booking, slot_id: int, now: dt.datetime | None = None) -> Booking:
    booking = _in_scope(desk, booking)
    if not scope_slots(desk, Slot.objects.filter(pk=slot_id)).exists():
        raise DomainError("invalid", fields={"slot_id": _("Please choose another time of the same offering.")})
    old_slot = booking.slot_id
    with transaction.atomic():
        engine.reschedule(booking=booking, slot_id=slot_id, by=desk.user, now=now)
        record(
            merchant=desk.merchant,
            staff_user=desk.user,
            action="booking.move",
            obj=booking,
            ip=ip,
            from_slot=old_slot,
            to_slot=slot_id,
        )
    return booking


def approve(*, desk: Desk, ip: str | None, booking: Booking, now: dt.datetime | None = None) -> Booking:
    booking = _in_scope(desk, booking)
    with transaction.atomic():
        engine.approve(booking=booking, staff=desk.user, now=now)
        record(merchant=desk.merchant, staff_user=desk.user, action="booking.approve", obj=booking, ip=ip)
    return booking


def reject(*, desk: Desk, ip: str | None, booking: Booking, reason: str, now: dt.datetime | None = None) -> Booking:
    reason = _need_reason(reason)
    booking = _in_scope(desk, booking)
    with transaction.atomic():
        engine.reject(booking=booking, staff=desk.user, reason=reason, now=now)
        record(merchant=desk.merchant, staff_user=desk.user, action="booking.reject", obj=booking, ip=ip, reason=reason)
    return booking


def booking_for_code(desk: Desk, text: str) -> Booking:
    """The booking a scanned voucher or a typed booking code names, within the desk's scope."""
    text = (text or "").strip()
    if "." in text:
        booking = engine.booking_for_voucher(text, merchant=desk.merchant)
    else:
        booking = Booking.objects.filter(code=text.upper(), merchant=desk.merchant).first()  # type: ignore[assignment]
        if booking is None:
            raise DomainError("not_found", _("No booking with this code."))
    return _in_scope(desk, booking)


def check_in(*, desk: Desk, ip: str | None, text: str, now: dt.datetime | None = None) -> Booking:
    """Admit the holder once (scanned voucher, or the code typed by staff); a second time is ``duplicate``
    with the first check-in time."""
    booking = booking_for_code(desk, text)
    with transaction.atomic():
        # A scanned voucher is checked as scanned (dynamic QR codes must be current); a typed code is staff's call.
        voucher = text.strip() if "." in (text or "") else engine.voucher_for(booking, now=now)
        done = engine.check_in(voucher=voucher, staff=desk.user, merchant=desk.merchant, now=now)
        record(merchant=desk.merchant, staff_user=desk.user, action="booking.check_in", obj=done, ip=ip)
    return done


def note_export(*, desk: Desk, ip: str | None, kind: str, filters: dict[str, str]) -> None:
    """An export of bookings is recorded: who took which customers' data out, and how much of it."""
    record(
        merchant=desk.merchant,
        staff_user=desk.user,
        action="booking.export",
        ip=ip,
        format=kind,
        filters=filters,
        unmasked=desk.can("personal.full"),
    )


# --- Customers ------------------------------------------------------------------------------


def add_note(*, desk: Desk, ip: str | None, user: EndUser, text: str) -> CustomerNote:
    text = (text or "").strip()
    if not text:
        raise DomainError("invalid", fields={"text": _("Please write a note.")})
    with transaction.atomic():
        note = CustomerNote.objects.create(merchant=desk.merchant, user=user, author=desk.user, text=text[:2000])
        record(merchant=desk.merchant, staff_user=desk.user, action="customer.note", obj=user, ip=ip, note=note.pk)
    return note


def ban(
    *, desk: Desk, ip: str | None, user: EndUser, until: dt.datetime, reason: str, now: dt.datetime | None = None
) -> Ban:
    with transaction.atomic():
        entry = accounts.ban(user=user, merchant=desk.merchant, until=until, reason=reason, by=desk.user, at=now)
        record(
            merchant=desk.merchant,
            staff_user=desk.user,
            action="customer.ban",
            obj=user,
            ip=ip,
            until=until.isoformat(),
            reason=entry.reason,
        )
    return entry


def lift_ban(*, desk: Desk, ip: str | None, ban_id: int, reason: str) -> Ban:
    entry = Ban.objects.filter(pk=ban_id, merchant=desk.merchant).select_related("user").first()
    if entry is None:
        raise DomainError("not_found")
    with transaction.atomic():
        accounts.lift_ban(ban=entry, reason=reason)
        record(
            merchant=desk.merchant,
            staff_user=desk.user,
            action="customer.lift_ban",
            obj=entry.user,
            ip=ip,
            ban=entry.pk,
            reason=entry.lift_reason,
        )
    return entry


# --- Reviews --------------------------------------------------------------------------------


def set_review_hidden(*, desk: Desk, ip: str | None, review: Review, hidden: bool) -> Review:
    """Hide a review from the public (or show it again); the averages are recomputed at once."""
    if not scope_bookings(desk, Booking.objects.filter(pk=review.booking_id)).exists():
        raise DomainError("not_found")
    with transaction.atomic():
        Review.objects.filter(pk=review.pk).update(is_hidden=hidden)
        engine.refresh_ratings(offering_id=review.offering_id, resource_id=review.resource_id)
        record(
            merchant=desk.merchant,
            staff_user=desk.user,
            action="review.hide" if hidden else "review.show",
            obj=review,
            ip=ip,
        )
    review.refresh_from_db()
    return review
