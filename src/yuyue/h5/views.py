"""The H5 pages. Thin: read through selectors, change through services, show refusals by field."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from yuyue.accounts import services as accounts
from yuyue.accounts.models import EndUser, Relation
from yuyue.booking import documents
from yuyue.booking import services as engine
from yuyue.booking.models import Booking, Status, WaitlistEntry
from yuyue.catalog.kinds import KINDS
from yuyue.catalog.models import Offering, ResourceType
from yuyue.core import personal, ratelimit, timeutil, waitingroom
from yuyue.core.apischema import client_ip
from yuyue.core.errors import DomainError
from yuyue.h5 import selectors
from yuyue.h5.auth import current_user, is_htmx, safe_next, sign_in, sign_out, user_required
from yuyue.h5.presenters import form_errors, policy_lines
from yuyue.insights import services as insights
from yuyue.memberships import services as memberships
from yuyue.payments import services as payments
from yuyue.scheduling.models import Slot

ELDER_COOKIE = "yuyue_elder"
STRIP_DAYS = 14
RECOMMENDED = 4  # "为你推荐" cards on the home and booking pages
# Resource types shown as "who serves you" on the offering page, with their rating.
SERVING_TYPES = {ResourceType.COACH, ResourceType.DOCTOR, ResourceType.DRIVER}
VOUCHER_STATUSES = {Status.CONFIRMED, Status.CHECKED_IN, Status.COMPLETED}
PERSON_INPUTS = {
    "name": "person_name",
    "relation": "person_relation",
    "id_number": "person_id_number",
    "phone": "person_phone",
    "birth_date": "person_birth_date",
    "guardian_id": "person_guardian",
    "sensitive_consent": "person_sensitive_consent",  # separate consent (privacy app)
}


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    context.setdefault("me", current_user(request))
    return render(request, template, context, status=status)


# --------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:50]
    kind = request.GET.get("kind", "")
    if kind not in KINDS:
        kind = ""
    searching = bool(q or kind)
    offerings = list(selectors.search_offerings(q=q, kind=kind)[:60]) if searching else []
    me = current_user(request)
    context = {
        "me": me,
        "next_booking": selectors.bookings_of(me, upcoming=True).first() if me and not searching else None,
        "q": q,
        "kind": kind,
        "kind_label": KINDS[kind].label if kind else "",
        "kinds": selectors.kinds_with_counts(),
        "merchants": selectors.merchants_with_branches(),
        "offerings": offerings,
        "searching": searching,
        "recommendations": insights.recommend(user=me, limit=RECOMMENDED) if not searching else [],
    }
    if is_htmx(request) and request.headers.get("HX-Target") == "results":
        return _page(request, "h5/partials/results.html", context)
    return _page(request, "h5/home.html", context)


def _offering_or_404(offering_id: int) -> Offering:
    offering = selectors.offering_for_page(offering_id)
    if offering is None:
        raise Http404
    return offering


def _parse_day(raw: str | None, default: dt.date | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw or "")
    except ValueError:
        return default


def _slot_state(slot: Slot, now: dt.datetime) -> tuple[str, str]:
    """How a slot can be used now, for its button: book, waitlist, not yet open, or closed."""
    policy = slot.offering.policy
    opens = engine.booking_opens_at(slot, policy)
    if opens is not None and now < opens:
        when = opens.astimezone(timeutil.local_zone())
        return "not_open", _("Opens %(when)s") % {"when": f"{when:%m-%d %H:%M}"}
    if now >= engine.booking_closes_at(slot, policy):
        return "closed", _("Booking closed")
    if slot.remaining == 0:
        return "full", _("Full")
    return "open", ""


def _day_picker(offering: Offering, day: dt.date | None, *, mode: str = "book", booking: Booking | None = None) -> dict:
    today = timeutil.today()
    if day is None:
        day = selectors.first_day_with_slots(offering, today=today, days=STRIP_DAYS)
    day = min(max(day, today), today + dt.timedelta(days=STRIP_DAYS - 1))
    now = timeutil.now()
    slots = []
    day_slots = list(selectors.day_slots(offering, day))
    # Unpaid holds that ran out give their seats back before the seats are shown (one indexed query).
    if payments.expire_slot_holds([s.pk for s in day_slots], now=now):
        day_slots = list(selectors.day_slots(offering, day))
    for slot in day_slots:
        slot.offering = offering  # already loaded: saves a query per slot
        state, note = _slot_state(slot, now)
        if booking is not None and slot.pk == booking.slot_id:
            state, note = "current", _("Your current time")
        slots.append({"slot": slot, "state": state, "note": note, "resources": list(slot.resources.all())})
    if mode == "reschedule" and booking is not None:
        slots_url = reverse("h5:reschedule_slots", args=[booking.code])
    else:
        slots_url = reverse("h5:offering_slots", args=[offering.pk])
    return {
        "offering": offering,
        "days": selectors.bookable_days(offering, first=today, days=STRIP_DAYS),
        "day": day,
        "slots": slots,
        "mode": mode,
        "booking": booking,
        "slots_url": slots_url,
    }


@require_GET
def offering_page(request: HttpRequest, offering_id: int) -> HttpResponse:
    offering = _offering_or_404(offering_id)
    day = _parse_day(request.GET.get("date"), None)
    serving = [r for r in offering.resources.all() if r.type in SERVING_TYPES and r.is_active]
    context = {
        "offering": offering,
        "kind_label": KINDS[offering.kind].label,
        "place": selectors.place_of(offering),
        "policy_lines": policy_lines(offering.policy),
        "serving": serving,
        "reviews": selectors.recent_reviews(offering),
        "picker": _day_picker(offering, day),
    }
    return _page(request, "h5/offering.html", context)


@require_GET
def offering_slots(request: HttpRequest, offering_id: int) -> HttpResponse:
    """The date strip and the chosen day's slots: swapped in place by htmx, a page of its own without."""
    offering = _offering_or_404(offering_id)
    day = _parse_day(request.GET.get("date"), timeutil.today())
    picker = _day_picker(offering, day)
    if is_htmx(request):
        return _page(request, "h5/partials/day_picker.html", {"picker": picker})
    return HttpResponseRedirect(f"{reverse('h5:offering', args=[offering.pk])}?date={picker['day']:%Y-%m-%d}#slots")


# --------------------------------------------------------------------------------------------
# Booking form
# --------------------------------------------------------------------------------------------


def _int_list(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit()]


def _people_picker(
    user: EndUser,
    *,
    selected: list[int],
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    open_add: bool = False,
    people_error: str = "",
) -> dict[str, Any]:
    return {
        "people": selectors.people_of(user),
        "adults": selectors.adults_of(user),
        "selected": selected,
        "relations": Relation.choices,
        "new": values or {},
        "errors": errors or {},
        "open_add": open_add,
        "people_error": people_error,
    }


def _answer_inputs(offering: Offering) -> dict[str, str]:
    return {f.key: f"answer_{f.key}" for f in offering.form}


@user_required
@require_http_methods(["GET", "POST"])
@waitingroom.h5_queue
def book_page(request: HttpRequest, user: EndUser, slot_id: int) -> HttpResponse:
    slot = selectors.slot_for_booking(slot_id)
    if slot is None:
        raise Http404
    offering = slot.offering
    policy = offering.policy
    errors: dict[str, str] = {}
    general = ""
    selected: list[int] = []
    answers: dict[str, str] = {}
    party_size = ""
    new_person: dict[str, str] = {}
    person_errors: dict[str, str] = {}
    if request.method == "POST":
        selected = _int_list(request.POST.getlist("people"))
        answers = {f.key: request.POST.get(f"answer_{f.key}", "") for f in offering.form}
        party_size = request.POST.get("party_size", "")
        size = int(party_size) if party_size.isdigit() else None
        action = request.POST.get("action", "book")
        if action == "enter":
            # The Enter key (a hidden first submit button): add the person being typed, else submit.
            typing = policy.party == "people" and request.POST.get("person_name", "").strip()
            action = "add_person" if typing else ("waitlist" if slot.remaining == 0 else "book")
        if action == "add_person":
            # "Add" without scripts (with them, htmx swaps the picker alone): the same form comes back.
            person, new_person, person_errors = _add_person_from(request, user)
            if person is not None:
                selected.append(person.pk)
        elif policy.party == "count" and party_size and size is None:
            errors["party_size"] = _("Please enter a whole number.")
        else:
            try:
                if action == "waitlist":
                    entry = engine.join_waitlist(
                        user=user, slot_id=slot.pk, person_ids=selected, party_size=size, answers=answers
                    )
                    messages.success(
                        request,
                        _("You are number %(n)d on the waitlist. We book you automatically when a place frees up.")
                        % {"n": engine.waitlist_position(entry)},
                    )
                    return HttpResponseRedirect(reverse("h5:my_bookings"))
                # The same per-account limit as the API's booking endpoint: one counter, both doors.
                ratelimit.booking(request, user.pk)  # per account and per address, one Redis call
                card = request.POST.get("pay_with", "money")  # "money" or the id of a membership card
                booking = engine.book(
                    user=user,
                    slot_id=slot.pk,
                    person_ids=selected,
                    party_size=size,
                    answers=answers,
                    idempotency_key=request.POST.get("form_key") or None,
                    pay_with="credit" if card.isdigit() else "money",
                    card_id=int(card) if card.isdigit() and len(card) < 19 else None,
                )
                return HttpResponseRedirect(reverse("h5:booking", args=[booking.code]))
            except DomainError as exc:
                inputs = {**_answer_inputs(offering), "people": "people", "party_size": "party_size"}
                errors, general = form_errors(
                    exc, inputs=inputs, people_input="people" if policy.party == "people" else "party_size"
                )
                if policy.party == "count" and policy.max_party_size == 1 and "party_size" in errors:
                    general = errors.pop("party_size")  # a form without a party size field says it on top
                slot.refresh_from_db()
    else:
        # Phone questions start with the account's own number: one less thing to type.
        answers = {f.key: user.phone for f in offering.form if f.type == "phone"}
    state, note = _slot_state(slot, timeutil.now())
    context = {
        "slot": slot,
        "offering": offering,
        "policy": policy,
        "state": state,
        "state_note": note,
        "place": selectors.place_of(offering),
        "policy_lines": policy_lines(policy),
        "fields": [
            {
                "field": f,
                "name": f"answer_{f.key}",
                "value": answers.get(f.key, ""),
                "error": errors.get(f"answer_{f.key}"),
            }
            for f in offering.form
        ],
        "party_size": party_size or "1",
        "errors": errors,
        "general_error": general,
        "form_key": uuid.uuid4().hex,
        "picker": _people_picker(
            user,
            selected=selected,
            values=new_person,
            errors=person_errors,
            open_add=bool(person_errors),
            people_error=errors.get("people", ""),
        ),
        "resources": list(slot.resources.all()),
        # Membership cards (次卡) that can pay for this time instead of money, and the choice made.
        "cards": memberships.usable_cards(user=user, offering=offering, starts_at=slot.start)
        if slot.effective_price_fen
        else [],
        "pay_with": request.POST.get("pay_with", ""),
    }
    return _page(request, "h5/book.html", context, status=422 if errors or general or person_errors else 200)


# --------------------------------------------------------------------------------------------
# My people
# --------------------------------------------------------------------------------------------


def _add_person_from(request: HttpRequest, user: EndUser) -> tuple[Any, dict[str, str], dict[str, str]]:
    """Add the person described by the ``person_*`` inputs; (person or None, values, errors)."""
    values = {key: request.POST.get(name, "").strip() for key, name in PERSON_INPUTS.items()}
    errors: dict[str, str] = {}
    birth_date = None
    if values["birth_date"]:
        try:
            birth_date = dt.date.fromisoformat(values["birth_date"])
        except ValueError:
            errors["person_birth_date"] = _("Please enter a date like 2015-06-01.")
    guardian = values["guardian_id"]
    if guardian and not guardian.isdigit():
        errors["person_guardian"] = _("The guardian must be an adult among your people.")
    if errors:
        return None, values, errors
    from yuyue.privacy import services as privacy

    try:
        person = privacy.add_person(
            owner=user,
            consent=values["sensitive_consent"] == "1",
            ip=client_ip(request),
            name=values["name"],
            relation=values["relation"] or Relation.SELF,
            id_number=values["id_number"] or None,
            phone=values["phone"] or None,
            birth_date=birth_date,
            guardian_id=int(guardian) if guardian else None,
        )
    except DomainError as exc:
        by_input, general = form_errors(exc, inputs=PERSON_INPUTS, people_input="person_name")
        if general:
            by_input.setdefault("person_name", general)
        return None, values, by_input
    return person, {}, {}


@user_required
@require_POST
def person_add(request: HttpRequest, user: EndUser) -> HttpResponse:
    """Add someone from the booking form without leaving it (htmx), or from "my people"."""
    person, values, errors = _add_person_from(request, user)
    if is_htmx(request):
        selected = _int_list(request.POST.getlist("people"))
        if person is not None:
            selected.append(person.pk)
        picker = _people_picker(user, selected=selected, values=values, errors=errors, open_add=bool(errors))
        return _page(request, "h5/partials/people_picker.html", {"picker": picker})
    if person is not None:
        messages.success(request, _("%(name)s was added.") % {"name": person.name})
        return HttpResponseRedirect(safe_next(request, reverse("h5:people")))
    return _people_page(request, user, values=values, errors=errors, status=422)


@require_POST
def check_id(request: HttpRequest) -> HttpResponse:
    """Check a resident ID number while it is typed: the checksum, and what the birth date implies."""
    compact = request.POST.get("person_id_number", "").replace(" ", "").upper()
    context: dict[str, Any] = {}
    if compact.isdigit() and len(compact) < 18:
        context["progress"] = _("%(n)d of 18 characters") % {"n": len(compact)}
    elif compact:
        try:
            number = personal.normalize_id_number(compact)
        except DomainError as exc:
            context["error"] = str(exc.fields.get("id_number", exc.message))
        else:
            born = personal.birth_date_from_id(number)
            age = personal.age_on(born, timeutil.today())
            context["born"] = born
            context["minor"] = age is not None and age < accounts.MINOR_AGE
    return render(request, "h5/partials/id_check.html", context)


def _people_page(
    request: HttpRequest, user: EndUser, *, values: dict | None = None, errors: dict | None = None, status: int = 200
) -> HttpResponse:
    picker = _people_picker(user, selected=[], values=values, errors=errors, open_add=True)
    return _page(request, "h5/people.html", {"picker": picker}, status=status)


@user_required
@require_GET
def people_page(request: HttpRequest, user: EndUser) -> HttpResponse:
    return _people_page(request, user)


@user_required
@require_POST
def person_remove(request: HttpRequest, user: EndUser, person_id: int) -> HttpResponse:
    from yuyue.privacy import services as privacy  # also wipes the ID and phone, withdraws consents

    try:
        privacy.remove_person(owner=user, person_id=person_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Removed."))
    return HttpResponseRedirect(reverse("h5:people"))


# --------------------------------------------------------------------------------------------
# Bookings
# --------------------------------------------------------------------------------------------


def _booking_or_404(user: EndUser, code: str) -> Booking:
    booking = selectors.booking_of(user, code)
    if booking is None:
        raise Http404
    return booking


@user_required
@require_GET
def my_bookings(request: HttpRequest, user: EndUser) -> HttpResponse:
    tab = "past" if request.GET.get("tab") == "past" else "upcoming"
    context = {
        "tab": tab,
        "bookings": list(selectors.bookings_of(user, upcoming=tab == "upcoming")[:100]),
        "waiting": list(selectors.waiting_entries_of(user)) if tab == "upcoming" else [],
    }
    return _page(request, "h5/my_bookings.html", context)


@user_required
@require_POST
def waitlist_leave(request: HttpRequest, user: EndUser, entry_id: int) -> HttpResponse:
    entry = WaitlistEntry.objects.filter(pk=entry_id, user=user).first()
    if entry is None:
        raise Http404
    try:
        engine.leave_waitlist(entry=entry)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("You left the waitlist."))
    return HttpResponseRedirect(reverse("h5:my_bookings"))


@user_required
@require_GET
def booking_page(request: HttpRequest, user: EndUser, code: str) -> HttpResponse:
    booking = _booking_or_404(user, code)
    policy = booking.offering.policy
    status = booking.status
    context = {
        "booking": booking,
        "place": selectors.place_of(booking.offering),
        "attendees": list(booking.attendees.all()),
        "resources": list(booking.slot.resources.all()),
        "voucher_svg": documents.voucher_svg(booking) if status in VOUCHER_STATUSES else "",
        "can_cancel": status in engine.CANCELLABLE,
        "can_reschedule": status in engine.CANCELLABLE and booking.reschedule_count < policy.max_reschedules,
        "can_review": status in {Status.CHECKED_IN, Status.COMPLETED} and not selectors.has_review(booking),
        "review": getattr(booking, "review", None) if status in {Status.CHECKED_IN, Status.COMPLETED} else None,
        "in_calendar": status in engine.CANCELLABLE or status == Status.CHECKED_IN,
        "recommendations": insights.recommend(user=user, limit=RECOMMENDED),
    }
    return _page(request, "h5/booking.html", context)


@user_required
@require_http_methods(["GET", "POST"])
def booking_cancel(request: HttpRequest, user: EndUser, code: str) -> HttpResponse:
    """GET: what cancelling now costs (cancel_preview); POST: cancel, exactly as previewed."""
    booking = _booking_or_404(user, code)
    if request.method == "POST":
        try:
            engine.cancel(booking=booking, by=user, reason=request.POST.get("reason", "").strip()[:200])
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("The booking is cancelled."))
        return HttpResponseRedirect(reverse("h5:booking", args=[booking.code]))
    context = {"booking": booking, "preview": engine.cancel_preview(booking=booking)}
    template = "h5/partials/cancel_preview.html" if is_htmx(request) else "h5/cancel.html"
    return _page(request, template, context)


@user_required
@require_http_methods(["GET", "POST"])
def booking_reschedule(request: HttpRequest, user: EndUser, code: str) -> HttpResponse:
    booking = _booking_or_404(user, code)
    error = ""
    if request.method == "POST":
        raw = request.POST.get("slot_id", "")
        try:
            if not raw.isdigit():
                raise DomainError("invalid", fields={"slot_id": _("Please choose a new time.")})
            engine.reschedule(booking=booking, slot_id=int(raw), by=user)
        except DomainError as exc:
            error = str(exc.fields.get("slot_id", exc.message))
            booking = _booking_or_404(user, code)
        else:
            messages.success(request, _("The booking has moved to the new time."))
            return HttpResponseRedirect(reverse("h5:booking", args=[booking.code]))
    day = _parse_day(request.GET.get("date"), timeutil.local_date(booking.slot.start))
    context = {
        "booking": booking,
        "picker": _day_picker(booking.offering, day, mode="reschedule", booking=booking),
        "error": error,
    }
    return _page(request, "h5/reschedule.html", context, status=422 if error else 200)


@user_required
@require_GET
def reschedule_slots(request: HttpRequest, user: EndUser, code: str) -> HttpResponse:
    booking = _booking_or_404(user, code)
    day = _parse_day(request.GET.get("date"), timeutil.today())
    picker = _day_picker(booking.offering, day, mode="reschedule", booking=booking)
    if not is_htmx(request):
        return HttpResponseRedirect(f"{reverse('h5:reschedule', args=[code])}?date={picker['day']:%Y-%m-%d}")
    return _page(request, "h5/partials/day_picker.html", {"picker": picker})


@user_required
@require_POST
def booking_review(request: HttpRequest, user: EndUser, code: str) -> HttpResponse:
    booking = _booking_or_404(user, code)
    raw = request.POST.get("rating", "")
    try:
        if not raw.isdigit():
            raise DomainError("invalid", fields={"rating": _("Please rate from 1 to 5.")})
        engine.add_review(booking=booking, user=user, rating=int(raw), text=request.POST.get("text", ""))
    except DomainError as exc:
        messages.error(request, str(exc.fields.get("rating", exc.message)))
    else:
        messages.success(request, _("Thank you for your review."))
    return HttpResponseRedirect(reverse("h5:booking", args=[booking.code]) + "#review")


@user_required
@require_GET
def voucher_svg(request: HttpRequest, user: EndUser, code: str) -> HttpResponse:
    booking = _booking_or_404(user, code)
    if booking.status not in VOUCHER_STATUSES:
        raise Http404
    response = HttpResponse(documents.voucher_svg(booking), content_type="image/svg+xml")
    response["Cache-Control"] = "private, no-store"
    return response


@user_required
@require_GET
def calendar_ics(request: HttpRequest, user: EndUser, code: str) -> HttpResponse:
    booking = _booking_or_404(user, code)
    response = HttpResponse(documents.calendar_ics(booking), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="yuyue-{booking.code}.ics"'
    response["Cache-Control"] = "private, no-store"
    return response


# --------------------------------------------------------------------------------------------
# Sign-in, sign-out, elder mode
# --------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def signin(request: HttpRequest) -> HttpResponse:
    """Phone and SMS code: first send the code, then sign in with it."""
    next_url = safe_next(request, reverse("h5:my_bookings"))
    if request.method == "GET" and current_user(request) is not None:
        return HttpResponseRedirect(next_url)
    phone = request.POST.get("phone", "").strip()
    errors: dict[str, str] = {}
    sent = False
    status = 200
    if request.method == "POST":
        try:
            if request.POST.get("action") == "send":
                accounts.request_login_code(phone, ip=client_ip(request))
                sent = True
            else:
                code = request.POST.get("code", "").strip()
                if not code:
                    raise DomainError("invalid", fields={"code": _("Please enter the code from the SMS.")})
                ratelimit.sign_in_ip(request)
                user = accounts.login_with_code(phone, code)
                sign_in(request, user)
                return HttpResponseRedirect(next_url)
        except DomainError as exc:
            errors, general = form_errors(exc, inputs={"phone": "phone", "code": "code"}, people_input="phone")
            if general:
                errors.setdefault("code" if request.POST.get("action") != "send" else "phone", general)
            sent = request.POST.get("action") != "send"
            status = 429 if exc.code == "rate_limited" else 422
    context = {"phone": phone, "errors": errors, "sent": sent, "just_sent": sent and not errors, "next": next_url}
    return _page(request, "h5/signin.html", context, status=status)


@require_POST
def signout(request: HttpRequest) -> HttpResponse:
    sign_out(request)
    return HttpResponseRedirect(reverse("h5:home"))


@require_POST
def elder_mode(request: HttpRequest) -> HttpResponse:
    """Switch the elder-friendly mode (larger text and buttons, fewer things per page) on or off."""
    response = HttpResponseRedirect(safe_next(request, reverse("h5:home")))
    if request.POST.get("on") == "1":
        response.set_cookie(ELDER_COOKIE, "1", max_age=365 * 24 * 3600, samesite="Lax")
    else:
        response.delete_cookie(ELDER_COOKIE, samesite="Lax")
    return response


# --------------------------------------------------------------------------------------------
# Notifications: the inbox and the channels a person wants (notify/services.py)
# --------------------------------------------------------------------------------------------


@user_required
@require_GET
def inbox_page(request: HttpRequest, user: EndUser) -> HttpResponse:
    from yuyue.notify import services as notify

    items = list(notify.inbox(user)[:100])
    notify.mark_all_read(user)  # shown once as new (the list was read before marking)
    return _page(request, "h5/notify/inbox.html", {"items": items})


@user_required
@require_http_methods(["GET", "POST"])
def notification_settings(request: HttpRequest, user: EndUser) -> HttpResponse:
    from yuyue.notify import services as notify

    prefs = notify.preferences_of(user)
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = {name: request.POST.get(name) == "on" for name in ("inbox", "sms", "email", "wechat")}
        try:
            notify.save_preferences(user=user, email_address=request.POST.get("email_address", ""), **form)
        except DomainError as exc:
            errors = {key: str(message) for key, message in exc.fields.items()}
            for name, value in form.items():
                setattr(prefs, name, value)
            prefs.email_address = request.POST.get("email_address", "")
        else:
            messages.success(request, _("Saved."))
            return HttpResponseRedirect(reverse("h5:notification_settings"))
    return _page(request, "h5/notify/settings.html", {"prefs": prefs, "errors": errors}, status=422 if errors else 200)
