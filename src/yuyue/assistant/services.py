"""The customer-service assistant: classify a question, answer it from the FAQ and the asker's own
data, offer actions, hand off to staff; and what staff do with hand-offs and the FAQ.

Everything personal is read through the H5 selectors (``booking_of``, ``bookings_of``,
``waiting_entries_of``), which only ever return the signed-in user's rows, and every action goes
through the booking engine or the notification outbox: the assistant has no rules of its own
about bookings, and another person's booking code is simply "not found".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, F, Q
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from yuyue.accounts.models import EndUser
from yuyue.assistant import classifier, llm
from yuyue.assistant.defaults import default_answers
from yuyue.assistant.models import (
    INTENT_CHOICES,
    Conversation,
    ConversationStatus,
    FaqEntry,
    Language,
    Message,
    Sender,
)
from yuyue.booking import services as engine
from yuyue.booking.models import Booking, Status
from yuyue.catalog.kinds import KINDS
from yuyue.catalog.models import Offering
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.h5 import selectors
from yuyue.memberships import selectors as memberships
from yuyue.notify import outbox
from yuyue.notify.events import EVENT_KIND
from yuyue.scheduling.models import Slot
from yuyue.scheduling.selectors import slots_for
from yuyue.tenants.models import Merchant

MAX_QUESTION_CHARS = 500
MAX_REPLY_CHARS = 2000
# Below this calibrated probability the assistant does not guess: a person answers.
HANDOFF_BELOW = 0.35
# How many bookings, slots and points entries an answer lists.
LIST_LIMIT = 5
SLOT_CHOICES = 4
# An automatic chat (never handed to staff) that has been quiet this long is over.
QUIET_CHAT_ENDS = dt.timedelta(hours=6)
# The chat page shows this many of the latest messages.
SHOWN_MESSAGES = 50
# Slots offered for a move: this many days either side of the booking's day.
RESCHEDULE_DAYS_AROUND = 3
VOUCHER_STATUSES = frozenset({Status.CONFIRMED, Status.CHECKED_IN})
INTENTS = frozenset(code for code, _label in INTENT_CHOICES)
UI_LANGUAGE = {"zh": "zh-hans", "en": "en"}
DEFAULT_ANSWERS = tuple(default_answers())
WEEKDAYS = (
    gettext_lazy("Mon"),
    gettext_lazy("Tue"),
    gettext_lazy("Wed"),
    gettext_lazy("Thu"),
    gettext_lazy("Fri"),
    gettext_lazy("Sat"),
    gettext_lazy("Sun"),
)


@dataclass(frozen=True)
class Reply:
    intent: str
    answer: str
    confidence: float
    actions: list[dict[str, Any]] = field(default_factory=list)
    handoff: bool = False
    language: str = "zh"
    conversation_id: int | None = None


@dataclass
class _Context:
    user: EndUser | None
    merchant: Merchant | None
    language: str
    now: dt.datetime
    question: str = ""


# --- asking ---------------------------------------------------------------------------------------


def clean_question(text: str) -> str:
    question = (text or "").strip()
    if not question:
        raise DomainError("invalid", fields={"question": _("Please type a question.")})
    if len(question) > MAX_QUESTION_CHARS or "\x00" in question:
        raise DomainError(
            "invalid",
            fields={"question": _("At most %(n)d characters, please.") % {"n": MAX_QUESTION_CHARS}},
        )
    return question


def merchant_for(merchant_id: int | None) -> Merchant | None:
    if merchant_id is None:
        return None
    merchant = Merchant.objects.filter(pk=merchant_id, is_active=True).first()
    if merchant is None:
        raise DomainError("invalid", fields={"merchant_id": _("There is no such merchant.")})
    return merchant


def ask(
    *,
    question: str,
    user: EndUser | None,
    merchant: Merchant | None = None,
    conversation: Conversation | None = None,
    now: dt.datetime | None = None,
) -> Reply:
    """Answer one message. Signed-in users get their own data; a hand-off opens a ticket.

    ``conversation`` continues a chat (the H5 page keeps an anonymous visitor's in the session);
    a signed-in user's messages go to their latest conversation that is not closed.
    """
    question = clean_question(question)
    now = now or timeutil.now()
    prediction = classifier.classify(question)
    context = _Context(user=user, merchant=merchant, language=prediction.language, now=now, question=question)
    intent = prediction.intent
    handoff = intent == "human_agent" or prediction.confidence < HANDOFF_BELOW
    actions: list[dict[str, Any]] = []
    personal = False
    with translation.override(UI_LANGUAGE[context.language]):
        if handoff and intent != "human_agent":
            answer = _("I am not sure I understood, so I have passed your question to our staff.")
        else:
            answer, actions, personal = _compose(intent, context)
    if not personal and not handoff:
        # Only FAQ text may be reworded: the user's own data never leaves for the language model.
        answer = llm.rephrase(question=question, answer=answer, language=context.language) or answer
    reply = Reply(intent, answer[:MAX_REPLY_CHARS], round(prediction.confidence, 4), actions, handoff, context.language)
    if user is not None or conversation is not None or handoff:
        conversation = _record(question=question, reply=reply, context=context, conversation=conversation)
        reply = replace(reply, conversation_id=conversation.pk)
    return reply


def _compose(intent: str, context: _Context) -> tuple[str, list[dict[str, Any]], bool]:
    """The answer, its actions, and whether it holds the user's own data."""
    personal = PERSONAL.get(intent)
    if personal is None or context.user is None:
        faq = faq_answer(intent, context.language, merchant=context.merchant, kind=_kind_for(context))
        if personal is not None:
            hint = _("Sign in and I can look this up for you.")
            faq = f"{faq}\n{hint}"
        return faq, [], False
    text, actions = personal(context)
    if intent in FAQ_AFTER_PERSONAL:
        text = f"{text}\n\n{faq_answer(intent, context.language, merchant=context.merchant, kind=_kind_for(context))}"
    return text, actions, True


# --- FAQ ------------------------------------------------------------------------------------------


def faq_answer(intent: str, language: str, *, merchant: Merchant | None, kind: str = "") -> str:
    """The most specific active answer: the merchant's own before the platform's, the kind's own
    before the general one; English falls back to Chinese when nothing is written in English."""
    entries = list(
        FaqEntry.objects.filter(intent=intent, active=True, language__in=[language, Language.ZH])
        .filter(Q(merchant=merchant) | Q(merchant__isnull=True) if merchant else Q(merchant__isnull=True))
        .filter(Q(kind="") | Q(kind=kind))
    )
    if entries:
        best = min(
            entries,
            key=lambda e: (e.language != language, e.merchant_id is None, e.kind == "", e.order, e.pk),
        )
        return fill_placeholders(best.answer, merchant)
    # The defaults the migration stores are also the last resort when those rows were removed.
    shipped = [
        r for r in DEFAULT_ANSWERS if r.intent == intent and r.language in {language, "zh"} and r.kind in {"", kind}
    ]
    if not shipped:
        return _("Please ask our staff about this.")
    return fill_placeholders(min(shipped, key=lambda r: (r.language != language, r.kind == "")).answer, merchant)


def fill_placeholders(text: str, merchant: Merchant | None) -> str:
    name = merchant.name if merchant else _("the merchant")
    phone = merchant.phone if merchant and merchant.phone else _("the number on the offering page")
    return text.replace("{merchant}", name).replace("{phone}", phone)


def _kind_for(context: _Context) -> str:
    """The kind the question is most likely about: the merchant's main kind of offering."""
    if context.merchant is None:
        return ""
    top = (
        Offering.objects.filter(merchant=context.merchant, is_active=True)
        .values("kind")
        .annotate(n=Count("id"))
        .order_by("-n", "kind")
        .first()
    )
    return str(top["kind"]) if top else ""


def faq_entries(merchant: Merchant) -> list[FaqEntry]:
    """The merchant's own entries and the platform defaults they can override, for the console."""
    return list(
        FaqEntry.objects.filter(Q(merchant=merchant) | Q(merchant__isnull=True)).order_by(
            "intent", "language", "kind", "merchant_id", "order", "id"
        )
    )


def save_faq(
    *,
    merchant: Merchant,
    entry: FaqEntry | None,
    intent: str,
    language: str,
    kind: str,
    question: str,
    answer: str,
    active: bool,
    order: int = 0,
) -> FaqEntry:
    """Create or change one of the merchant's own answers (platform defaults are never edited here:
    a merchant overrides one by writing their own for the same intent)."""
    if entry is not None and entry.merchant_id != merchant.pk:
        raise DomainError("not_found")
    question, answer = (question or "").strip(), (answer or "").strip()
    errors: dict[str, Any] = {}
    if intent not in INTENTS:
        errors["intent"] = _("Please choose an intent.")
    if language not in Language.values:
        errors["language"] = _("Please choose a language.")
    if kind and kind not in KINDS:
        errors["kind"] = _("Please choose a kind.")
    if not question or len(question) > 200:
        errors["question"] = _("A question of 1 to 200 characters.")
    if not answer or len(answer) > MAX_REPLY_CHARS:
        errors["answer"] = _("An answer of 1 to %(n)d characters.") % {"n": MAX_REPLY_CHARS}
    if not 0 <= order <= 10_000:
        errors["order"] = _("A number from 0 to 10000.")
    if errors:
        raise DomainError("invalid", fields=errors)
    target = entry or FaqEntry(merchant=merchant)
    target.intent, target.language, target.kind = intent, language, kind
    target.question, target.answer, target.active, target.order = question, answer, active, order
    target.save()
    return target


# --- personal answers -----------------------------------------------------------------------------


def _when(moment: dt.datetime) -> str:
    local = moment.astimezone(timeutil.local_zone())
    return f"{local:%m-%d} {WEEKDAYS[local.weekday()]} {local:%H:%M}"


def _booking_line(booking: Booking) -> str:
    return _("%(offering)s, %(when)s, %(status)s, booking code %(code)s") % {
        "offering": booking.offering.title,
        "when": _when(booking.slot.start),
        "status": booking.get_status_display(),
        "code": booking.code,
    }


def _upcoming(context: _Context) -> list[Booking]:
    assert context.user is not None
    found = selectors.bookings_of(context.user, upcoming=True)
    if context.merchant is not None:
        found = found.filter(merchant=context.merchant)
    return list(found[:LIST_LIMIT])


def _link(booking: Booking, label: str) -> dict[str, Any]:
    return {"type": "link", "booking": booking.code, "url": reverse("h5:booking", args=[booking.code]), "label": label}


def _my_bookings(context: _Context) -> tuple[str, list[dict[str, Any]]]:
    bookings = _upcoming(context)
    if not bookings:
        return _("You have no upcoming bookings."), []
    lines = [_("Your upcoming bookings:")] + [f"· {_booking_line(b)}" for b in bookings]
    return "\n".join(lines), [_link(b, str(b.offering.title)) for b in bookings]


def _next_changeable(context: _Context) -> Booking | None:
    """The booking the question is about: the one whose code or title it names, else the next one."""
    bookings = [b for b in _upcoming(context) if b.status in engine.CANCELLABLE]
    text = classifier.normalise(context.question)
    for booking in bookings:
        if booking.code.lower() in text:
            return booking
    for booking in bookings:
        title = classifier.normalise(booking.offering.title.split("（")[0].split("(")[0])
        if len(title) >= 2 and title in text:
            return booking
    return bookings[0] if bookings else None


def reschedule_choices(booking: Booking, *, now: dt.datetime, limit: int = SLOT_CHOICES) -> list[Slot]:
    """Open slots of the same offering near the booking's time that the engine would take now:
    room for the booking's seats, the same price, inside the booking window."""
    policy = booking.offering.policy
    price = booking.slot.effective_price_fen
    day = timeutil.local_date(booking.slot.start)
    first = max(timeutil.local_date(now), day - dt.timedelta(days=RESCHEDULE_DAYS_AROUND))
    nearby = (
        slots_for(
            offering_id=booking.offering_id, date_from=first, date_to=day + dt.timedelta(days=RESCHEDULE_DAYS_AROUND)
        )
        .prefetch_related(None)  # the resources are not shown here
        .exclude(pk=booking.slot_id)
        .filter(capacity__gte=F("reserved") + booking.seats)
    )
    candidates = []
    for slot in nearby:
        if slot.start == booking.slot.start:
            continue  # the same time with another vehicle or room is not a change of time
        own_price = slot.price_fen if slot.price_fen is not None else booking.offering.price_fen
        if own_price != price:
            continue
        opens = engine.booking_opens_at(slot, policy)
        if (opens is not None and now < opens) or now >= engine.booking_closes_at(slot, policy):
            continue
        candidates.append(slot)
    # One slot per start time (the roomiest): the customer chooses a time, not a row.
    by_start: dict[dt.datetime, Slot] = {}
    for slot in candidates:
        if slot.start not in by_start or slot.remaining > by_start[slot.start].remaining:
            by_start[slot.start] = slot
    nearest = sorted(by_start.values(), key=lambda s: (abs((s.start - booking.slot.start).total_seconds()), s.start))
    return sorted(nearest[:limit], key=lambda s: (s.start, s.pk))


def reschedule_refusal(booking: Booking, *, now: dt.datetime) -> str:
    """Why the engine would refuse to move this booking at all (empty: it may be moved)."""
    policy = booking.offering.policy
    if booking.status not in engine.CANCELLABLE:
        return _("This booking cannot be changed in its current state.")
    if booking.reschedule_count >= policy.max_reschedules:
        return _("This booking has already been moved as often as the rules allow.")
    if now >= booking.slot.start - dt.timedelta(hours=policy.cancel_deadline_hours):
        return _("It is too late to change this booking; you may cancel it or ask our staff.")
    return ""


def _reschedule(context: _Context) -> tuple[str, list[dict[str, Any]]]:
    booking = _next_changeable(context)
    if booking is None:
        return _("You have no upcoming booking that can be moved."), []
    head = _("Your next booking: %(line)s.") % {"line": _booking_line(booking)}
    refusal = reschedule_refusal(booking, now=context.now)
    if refusal:
        return f"{head}\n{refusal}", [_link(booking, _("Open the booking"))]
    slots = reschedule_choices(booking, now=context.now)
    if not slots:
        nothing = _("There is no free time to move it to in the coming days.")
        return f"{head}\n{nothing}", [_link(booking, _("Open the booking"))]
    actions = [
        {
            "type": "reschedule",
            "booking": booking.code,
            "slot_id": slot.pk,
            "label": _("Move to %(when)s") % {"when": _when(slot.start)},
        }
        for slot in slots
    ]
    pick = _("These times are free; pick one to move your booking:")
    return f"{head}\n{pick}", actions


def _cancel(context: _Context) -> tuple[str, list[dict[str, Any]]]:
    booking = _next_changeable(context)
    if booking is None:
        return _("You have no upcoming booking that can be cancelled."), []
    preview = engine.cancel_preview(booking=booking, now=context.now)
    head = _("Your next booking: %(line)s.") % {"line": _booking_line(booking)}
    if not preview.allowed:
        return f"{head}\n{preview.reason}", [_link(booking, _("Open the booking"))]
    cost = _("If you cancel now: refund %(refund)s yuan, %(points)d points deducted. %(reason)s") % {
        "refund": f"{preview.refund_fen / 100:.2f}",
        "points": preview.points_penalty,
        "reason": preview.reason,
    }
    action = {
        "type": "cancel",
        "booking": booking.code,
        "refund_fen": preview.refund_fen,
        "points_penalty": preview.points_penalty,
        "label": _("Cancel this booking"),
    }
    return f"{head}\n{cost}", [action]


def _voucher(context: _Context) -> tuple[str, list[dict[str, Any]]]:
    bookings = [b for b in _upcoming(context) if b.status in VOUCHER_STATUSES]
    if not bookings:
        return _("None of your upcoming bookings has a voucher yet (it appears once the booking is confirmed)."), []
    booking = bookings[0]
    action = {
        **_link(booking, _("Show the voucher")),
        "voucher_url": reverse("api-1:booking_voucher", kwargs={"code": booking.code}),
    }
    return _("The voucher of %(line)s is on the booking page.") % {"line": _booking_line(booking)}, [action]


def _points(context: _Context) -> tuple[str, list[dict[str, Any]]]:
    """Points are kept per merchant: the balance here (or at every merchant) and the latest changes."""
    assert context.user is not None
    balances = list(memberships.points_balances(context.user))
    if context.merchant is not None:
        balances = [b for b in balances if b.merchant_id == context.merchant.pk]
    if not balances:
        return _("You have no points yet."), []
    lines = [_("Your points at %(merchant)s: %(n)d.") % {"merchant": b.merchant.name, "n": b.balance} for b in balances]
    for entry in memberships.points_history(context.user, context.merchant)[:3]:
        lines.append(f"· {entry.created_at.astimezone(timeutil.local_zone()):%m-%d} {entry.delta:+d} {entry.reason}")
    return "\n".join(lines), []


def _waitlist(context: _Context) -> tuple[str, list[dict[str, Any]]]:
    assert context.user is not None
    entries = list(selectors.waiting_entries_of(context.user)[:LIST_LIMIT])
    if not entries:
        return _("You are not on any waitlist."), []
    lines = [_("You are waiting for:")]
    for entry in entries:
        lines.append(
            "· "
            + _("%(offering)s, %(when)s: number %(position)d in line")
            % {
                "offering": entry.slot.offering.title,
                "when": _when(entry.slot.start),
                "position": engine.waitlist_position(entry),
            }
        )
    return "\n".join(lines), []


def last_notification(user: EndUser, *, now: dt.datetime | None = None) -> outbox.OutboxItem | None:
    """The user's latest booking notification (the event row the channels fan out from); reminders
    waiting for their time are not sent yet, so they do not count."""
    return (
        outbox.OutboxItem.objects.filter(kind=EVENT_KIND, payload__user_id=user.pk)
        .exclude(status=outbox.OutboxStatus.PENDING, next_attempt_at__gt=now or timeutil.now())
        .order_by("-id")
        .first()
    )


def delivery_rows(event: outbox.OutboxItem) -> list[outbox.OutboxItem]:
    """The text message, email and WeChat rows the event fanned out to (keyed by its dedupe id)."""
    return list(outbox.OutboxItem.objects.filter(key__startswith=f"{event.dedupe_id}:").order_by("id"))


CHANNEL_LABELS = {
    "notify.sms": gettext_lazy("text message"),
    "notify.email": gettext_lazy("email"),
    "notify.wechat": gettext_lazy("WeChat message"),
}


def _notification_missing(context: _Context) -> tuple[str, list[dict[str, Any]]]:
    assert context.user is not None
    event = last_notification(context.user, now=context.now)
    if event is None:
        return _("We have not sent you any notification yet."), []
    booking = Booking.objects.filter(pk=event.payload.get("booking_id"), user=context.user).first()
    about = booking.code if booking else ""
    lines = [
        _("Your last notification (booking %(code)s, %(when)s): %(status)s.")
        % {"code": about, "when": _when(event.created_at), "status": event.get_status_display()}
    ]
    for row in delivery_rows(event):
        lines.append(f"· {CHANNEL_LABELS.get(row.kind, row.kind)}: {row.get_status_display()}")
    lines.append(_("It is also in Messages in the app."))
    action = {"type": "resend_notification", "notification": event.pk, "label": _("Send the notification again")}
    return "\n".join(lines), [action]


PERSONAL = {
    "my_bookings": _my_bookings,
    "reschedule": _reschedule,
    "cancel": _cancel,
    "voucher": _voucher,
    "points": _points,
    "waitlist": _waitlist,
    "notification_missing": _notification_missing,
}
# Personal answers that keep the FAQ text after the user's own data (rules still worth reading).
FAQ_AFTER_PERSONAL = frozenset({"cancel", "waitlist", "points"})


# --- actions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionResult:
    message: str
    booking_code: str = ""


def perform(*, user: EndUser, action: dict[str, Any], now: dt.datetime | None = None) -> ActionResult:
    """Carry out an action an answer offered, for the signed-in user only.

    The booking is looked up among the user's own (someone else's code is ``not_found``) and the
    engine decides, exactly as for the booking page and ``/bookings/{code}/…``.
    """
    kind = action.get("type")
    if kind == "resend_notification":
        count = resend_notification(user=user, notification_id=_int(action, "notification"))
        return ActionResult(_("Sent again (%(n)d messages).") % {"n": count})
    booking = selectors.booking_of(user, str(action.get("booking") or "")[:16])
    if booking is None:
        raise DomainError("not_found", _("This booking does not exist."))
    if kind == "reschedule":
        engine.reschedule(booking=booking, slot_id=_int(action, "slot_id"), by=user, now=now)
        booking.refresh_from_db()
        return ActionResult(
            _("Done: booking %(code)s is now on %(when)s.") % {"code": booking.code, "when": _when(booking.slot.start)},
            booking.code,
        )
    if kind == "cancel":
        engine.cancel(booking=booking, by=user, reason=_("Cancelled in the customer-service chat"), now=now)
        return ActionResult(_("Done: booking %(code)s is cancelled.") % {"code": booking.code}, booking.code)
    raise DomainError("invalid", fields={"type": _("Unknown action.")})


def _int(action: dict[str, Any], key: str) -> int:
    value = action.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise DomainError("invalid", fields={key: _("A number is needed.")})
    number = int(value)
    if not 1 <= number <= 2**63 - 1:
        raise DomainError("invalid", fields={key: _("A number is needed.")})
    return number


def resend_notification(*, user: EndUser, notification_id: int) -> int:
    """Queue the user's own notification again on every channel it went to; returns how many rows.

    The outbox sends them like any other (``redeliver``): a fresh set of attempts, now.
    """
    event = outbox.OutboxItem.objects.filter(pk=notification_id, kind=EVENT_KIND, payload__user_id=user.pk).first()
    if event is None:
        raise DomainError("not_found", _("This notification does not exist."))
    rows = delivery_rows(event) or [event]
    return sum(outbox.redeliver(row.pk) for row in rows)


# --- conversations and hand-off -------------------------------------------------------------------


def _handoff_merchant(context: _Context) -> Merchant | None:
    """Whose inbox a hand-off goes to: the merchant asked about, else that of the user's next booking."""
    if context.merchant is not None or context.user is None:
        return context.merchant
    booking = selectors.bookings_of(context.user, upcoming=True).first() or (
        selectors.bookings_of(context.user, upcoming=False).first()
    )
    return booking.merchant if booking else None


def current_conversation(user: EndUser) -> Conversation | None:
    return Conversation.objects.filter(user=user).exclude(status=ConversationStatus.CLOSED).order_by("-id").first()


def _finished(conversation: Conversation, now: dt.datetime) -> bool:
    """Closed by staff, or an automatic chat gone quiet: the next question starts a new conversation."""
    if conversation.status == ConversationStatus.CLOSED:
        return True
    return conversation.status == ConversationStatus.BOT and conversation.updated_at < now - QUIET_CHAT_ENDS


def _record(*, question: str, reply: Reply, context: _Context, conversation: Conversation | None) -> Conversation:
    now = context.now
    with transaction.atomic():
        if conversation is None and context.user is not None:
            conversation = current_conversation(context.user)
        if conversation is not None and _finished(conversation, now):
            conversation = None
        if conversation is None:
            conversation = Conversation.objects.create(user=context.user, merchant=context.merchant, created_at=now)
        changes: dict[str, Any] = {"updated_at": now}
        if reply.handoff and conversation.status != ConversationStatus.OPEN:
            changes.update(status=ConversationStatus.OPEN, handed_off_at=now)
            if conversation.merchant_id is None:
                changes["merchant"] = _handoff_merchant(context)
        Conversation.objects.filter(pk=conversation.pk).update(**changes)
        Message.objects.create(conversation=conversation, sender=Sender.CUSTOMER, text=question, created_at=now)
        Message.objects.create(
            conversation=conversation,
            sender=Sender.ASSISTANT,
            text=reply.answer,
            intent=reply.intent,
            confidence=reply.confidence,
            actions=reply.actions,
            created_at=now,
        )
    return conversation


def staff_reply(*, conversation: Conversation, staff_user: User, text: str, now: dt.datetime | None = None) -> Message:
    """Staff answer a hand-off; the customer sees it in the chat."""
    text = (text or "").strip()
    if not text or len(text) > MAX_REPLY_CHARS:
        raise DomainError("invalid", fields={"text": _("A reply of 1 to %(n)d characters.") % {"n": MAX_REPLY_CHARS}})
    now = now or timeutil.now()
    with transaction.atomic():
        message = Message.objects.create(
            conversation=conversation, sender=Sender.STAFF, text=text, staff_user=staff_user, created_at=now
        )
        Conversation.objects.filter(pk=conversation.pk).update(status=ConversationStatus.ANSWERED, updated_at=now)
    return message


def close(*, conversation: Conversation, now: dt.datetime | None = None) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(
        status=ConversationStatus.CLOSED, updated_at=now or timeutil.now()
    )


def messages_after(conversation: Conversation, after_id: int = 0, limit: int = SHOWN_MESSAGES) -> list[Message]:
    """The conversation's messages after ``after_id``, oldest first: at most the latest ``limit``."""
    latest = conversation.messages.filter(id__gt=after_id).order_by("-id")[:limit]
    return list(reversed(latest))
