"""What a booking gives its holder to keep: the QR voucher (SVG) and a calendar entry (.ics).

Both are rendered from the booking alone, so the H5 pages and the API serve the same files.
The QR carries ``services.voucher_for(booking)``: the code plus an HMAC only the server can
make, so a voucher can be neither guessed nor forged.
"""

from __future__ import annotations

import datetime as dt
import io

import icalendar
import segno
from django.utils.translation import gettext as _

from yuyue.booking import services
from yuyue.booking.models import Booking
from yuyue.core import timeutil

REMINDER_BEFORE = dt.timedelta(hours=2)


def voucher_svg(booking: Booking, *, scale: int = 6) -> str:
    """The voucher as a standalone SVG QR code (error correction Q survives a cracked screen)."""
    qr = segno.make_qr(services.voucher_for(booking), error="q")
    buffer = io.BytesIO()
    title = _("Booking %(code)s") % {"code": booking.code}
    qr.save(buffer, kind="svg", scale=scale, border=2, xmldecl=False, svgns=True, title=title, nl=False)
    return buffer.getvalue().decode()


def _location(booking: Booking) -> str:
    branch = booking.offering.branch
    if branch is None:
        return booking.merchant.name
    parts = [branch.merchant.name, branch.name, branch.city, branch.address]
    return " ".join(p for p in parts if p)


def calendar_ics(booking: Booking, *, now: dt.datetime | None = None) -> bytes:
    """An RFC 5545 calendar with one event for the booking and a reminder before it starts."""
    zone = timeutil.local_zone()
    cal = icalendar.Calendar()
    cal.add("prodid", "-//yuyue//booking//ZH")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    if hasattr(icalendar, "Timezone") and hasattr(icalendar.Timezone, "from_tzinfo"):
        cal.add_component(icalendar.Timezone.from_tzinfo(zone, first_date=booking.slot.start.astimezone(zone).date()))

    event = icalendar.Event()
    event.add("uid", f"{booking.code}@yuyue")
    event.add("dtstamp", (now or timeutil.now()).astimezone(dt.UTC))
    event.add("dtstart", booking.slot.start.astimezone(zone))
    event.add("dtend", booking.slot.end.astimezone(zone))
    event.add("summary", booking.offering.title)
    event.add("location", _location(booking))
    lines = [
        _("Booking code: %(code)s") % {"code": booking.code},
        _("Show the QR voucher at the entrance."),
    ]
    if booking.merchant.phone:
        lines.append(_("Phone: %(phone)s") % {"phone": booking.merchant.phone})
    event.add("description", "\n".join(lines))
    event.add("status", "CANCELLED" if booking.status == "cancelled" else "CONFIRMED")

    alarm = icalendar.Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", booking.offering.title)
    alarm.add("trigger", -REMINDER_BEFORE)
    event.add_component(alarm)
    cal.add_component(event)
    return cal.to_ical()
