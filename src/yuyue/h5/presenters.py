"""Turning policies and refusals into the plain words the H5 pages show (no rules decided here)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from yuyue.catalog.policy import Policy
from yuyue.core.errors import DomainError


def _hours(value: float) -> str:
    return f"{value:g}"


def policy_lines(policy: Policy) -> list[str]:
    """An offering's policy in plain words, most important first: booking, people, changing one's mind."""
    lines: list[str] = []
    if policy.opens_days_ahead is not None:
        if policy.release_time:
            lines.append(
                ngettext(
                    "Booking opens %(days)d day ahead at %(time)s.",
                    "Booking opens %(days)d days ahead at %(time)s.",
                    policy.opens_days_ahead,
                )
                % {"days": policy.opens_days_ahead, "time": f"{policy.release_time:%H:%M}"}
            )
        else:
            lines.append(
                ngettext(
                    "Booking opens %(days)d day ahead.", "Booking opens %(days)d days ahead.", policy.opens_days_ahead
                )
                % {"days": policy.opens_days_ahead}
            )
    if policy.closes_minutes_before_start:
        lines.append(
            _("Booking closes %(minutes)d minutes before the start.") % {"minutes": policy.closes_minutes_before_start}
        )
    if policy.requires_approval:
        lines.append(_("The merchant confirms each booking."))
    if policy.payment == "on_site":
        lines.append(_("Pay at the venue; your booking is confirmed at once."))

    if policy.real_name:
        lines.append(_("Real-name booking: every visitor needs a resident ID number."))
    if policy.seats == "booking":
        lines.append(
            ngettext(
                "You book the whole vehicle, for up to %(n)d passenger.",
                "You book the whole vehicle, for up to %(n)d passengers.",
                policy.max_party_size,
            )
            % {"n": policy.max_party_size}
        )
    elif policy.max_party_size > 1:
        lines.append(_("Up to %(n)d people per booking.") % {"n": policy.max_party_size})
    else:
        lines.append(_("One person per booking."))
    if policy.max_minors is not None:
        lines.append(_("At most %(n)d children per booking.") % {"n": policy.max_minors})
    if policy.minors_need_adult:
        lines.append(_("Children under %(age)d come with an adult in the same booking.") % {"age": policy.minor_age})
    if policy.minors_need_guardian:
        lines.append(_("Children under %(age)d need a guardian among your people.") % {"age": policy.minor_age})
    if policy.per_person_per_day:
        where = {
            "offering": _("here"),
            "group": _("in the same department"),
            "merchant": _("at this merchant"),
        }[policy.limit_scope]
        lines.append(
            ngettext(
                "Each person may book %(n)d time a day %(where)s.",
                "Each person may book %(n)d times a day %(where)s.",
                policy.per_person_per_day,
            )
            % {"n": policy.per_person_per_day, "where": where}
        )
    if policy.unique_answers:
        lines.append(_("One sign-up per phone number."))

    if policy.cancel_deadline_hours:
        lines.append(
            _("Free cancellation until %(hours)s hours before the start.")
            % {"hours": _hours(policy.cancel_deadline_hours)}
        )
    else:
        lines.append(_("Free cancellation until the start."))
    late: list[str] = []
    if policy.late_cancel_points:
        late.append(_("%(points)d points are deducted") % {"points": policy.late_cancel_points})
    if policy.late_cancel_refund_percent < 100:
        late.append(_("%(percent)d%% of the price is refunded") % {"percent": policy.late_cancel_refund_percent})
    if policy.cancel_deadline_hours and late:
        lines.append(_("Cancelling later: %(cost)s.") % {"cost": _(", ").join(late)})
    elif policy.cancel_deadline_hours:
        lines.append(_("Cancelling later costs nothing, until the start."))
    if policy.max_reschedules:
        lines.append(
            ngettext(
                "You can change the time %(n)d time, before the cancellation deadline.",
                "You can change the time up to %(n)d times, before the cancellation deadline.",
                policy.max_reschedules,
            )
            % {"n": policy.max_reschedules}
        )
    if policy.no_show_ban is not None:
        rule = policy.no_show_ban
        lines.append(
            _("%(count)d no-shows within %(window)d days: no booking here for %(days)d days.")
            % {"count": rule.count, "window": rule.window_days, "days": rule.ban_days}
        )
    if policy.completion_points:
        lines.append(_("Each completed visit earns %(points)d points.") % {"points": policy.completion_points})
    if policy.no_show_points:
        lines.append(_("A no-show costs %(points)d points.") % {"points": policy.no_show_points})
    if policy.min_attendance:
        lines.append(
            _(
                "Needs at least %(n)d people: with fewer %(hours)s hours before the start, it is cancelled "
                "and everyone is refunded."
            )
            % {"n": policy.min_attendance, "hours": _hours(policy.min_attendance_check_hours)}
        )
    return lines


# Refusals that are about who is coming: shown next to the people (or party size) field.
_ABOUT_PEOPLE = {"duplicate", "limit_reached"}


def form_errors(exc: DomainError, *, inputs: dict[str, str], people_input: str) -> tuple[dict[str, str], str]:
    """Split a refusal into messages per input and one message for the whole form.

    ``inputs`` maps the service's field keys to the names of the inputs on the page. A refusal
    without fields (slot full, banned...) goes at the top; duplicates and limits go next to the
    people, where the user fixes them. Field keys the page has no input for go at the top too.
    """
    by_input: dict[str, str] = {}
    general: list[str] = []
    for key, message in exc.fields.items():
        if key in inputs:
            by_input[inputs[key]] = str(message)
        else:
            general.append(str(message))
    if not exc.fields:
        if exc.code in _ABOUT_PEOPLE:
            by_input[people_input] = exc.message
        else:
            general.append(exc.message)
    elif not by_input and not general:
        general.append(exc.message)
    return by_input, " ".join(general)
