"""Exports of the filtered bookings as .xlsx and CSV, in bounded memory whatever the row count.

Rows come from the same ``filter_bookings`` queryset the list shows, read in chunks by primary
key (related rows joined, attendees and resources fetched once per chunk: a fixed number of
queries per chunk, never one per booking). The .xlsx is written by openpyxl's
write-only workbook to a temporary file and streamed from disk; the CSV is generated row by row.
ID numbers and phones, including those typed into form answers, are masked unless the desk may
see personal data in full.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from yuyue.booking.models import Attendee, Booking, Status
from yuyue.catalog.models import Offering
from yuyue.catalog.policy import FormField
from yuyue.console.access import Desk
from yuyue.core import personal, timeutil
from yuyue.scheduling.models import Slot


def headers() -> list[str]:
    """Column headers (Chinese by default: 预约号, 项目, 门店, 开始时间, …)."""
    return [
        pgettext("export column", "Booking code"),
        pgettext("export column", "Offering"),
        pgettext("export column", "Branch"),
        pgettext("export column", "Start time"),
        pgettext("export column", "End time"),
        pgettext("export column", "Resource"),
        pgettext("export column", "Attendees"),
        pgettext("export column", "Party size"),
        pgettext("export column", "ID number"),
        pgettext("export column", "Phone"),
        pgettext("export column", "Form answers"),
        pgettext("export column", "Status"),
        pgettext("export column", "Amount (yuan)"),
        pgettext("export column", "Paid (yuan)"),
        pgettext("export column", "Account phone"),
        pgettext("export column", "Booked by staff"),
        pgettext("export column", "Created at"),
        pgettext("export column", "Checked in at"),
        pgettext("export column", "Cancelled at"),
        pgettext("export column", "Cancel reason"),
    ]


WIDTHS = [13, 24, 14, 17, 17, 16, 18, 6, 22, 14, 36, 10, 10, 10, 14, 12, 17, 17, 17, 20]


# What a row needs from the booking and the rows joined to it, read as plain values (no model
# instances: at 100k rows Django's per-object work costs more than the database).
_FIELDS = (
    "pk",
    "code",
    "offering_id",
    "offering__title",
    "offering__branch__name",
    "slot_id",
    "slot__start",
    "slot__end",
    "party_size",
    "status",
    "amount_fen",
    "paid_fen",
    "answers",
    "user__phone",
    "user__nickname",
    "booked_by__username",
    "created_at",
    "checked_in_at",
    "cancelled_at",
    "cancel_reason",
)


def _local(moment: dt.datetime | None) -> dt.datetime | None:
    """Local wall time without a zone: spreadsheets have no time zones."""
    return moment.astimezone(timeutil.local_zone()).replace(tzinfo=None, microsecond=0) if moment else None


def _yuan(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def _safe(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula (=, +, -, @) is kept as text."""
    if isinstance(value, str) and value[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + value
    return value


spreadsheet_safe = _safe  # for the other CSV downloads (statistics)


class _Rows:
    """Turns bookings (value rows) into export rows; each offering's form is parsed once."""

    def __init__(self, desk: Desk, full_ids: bool = False) -> None:
        self.full = desk.can("personal.full")
        # Full ID numbers only in an owner's audited export (privacy.services.note_full_export).
        self.full_ids = full_ids and self.full
        self.forms: dict[int, list[FormField]] = {}
        self.statuses = {value: str(label) for value, label in Status.choices}

    def _form(self, offering_id: int) -> list[FormField]:
        if offering_id not in self.forms:
            self.forms[offering_id] = Offering.objects.get(pk=offering_id).form
        return self.forms[offering_id]

    def _phone(self, value: str) -> str:
        return value if self.full else personal.mask_phone(value)

    def _id(self, value: str) -> str:
        return value if self.full_ids else personal.mask_id(value)

    def _answers(self, offering_id: int, answers: dict[str, Any]) -> str:
        parts = []
        for field in self._form(offering_id):
            if field.key not in answers:
                continue
            value = str(answers[field.key])
            if field.type == "phone":
                value = self._phone(value)
            elif field.type == "id_number":
                value = self._id(value)
            parts.append(f"{field.label}: {value}")
        return "; ".join(parts)

    def chunk(self, bookings: list[Any]) -> Iterator[list[Any]]:
        """Rows for one chunk of bookings: two more queries (attendees, resources), whatever its size."""
        people: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
        for booking_id, name, id_number, phone in (
            Attendee.objects.filter(booking_id__in=[b.pk for b in bookings])
            .order_by("booking_id", "id")
            .values_list("booking_id", "name", "id_number", "phone")
        ):
            people[booking_id].append((name, id_number, phone))
        resources: dict[int, list[str]] = defaultdict(list)
        for slot_id, name in (
            Slot.resources.through.objects.filter(slot_id__in={b.slot_id for b in bookings})
            .order_by("resource__type", "resource_id")
            .values_list("slot_id", "resource__name")
        ):
            resources[slot_id].append(name)
        for b in bookings:
            yield [_safe(v) for v in self._values(b, people[b.pk], resources[b.slot_id])]

    def _values(self, b: Any, attendees: list[tuple[str, str, str]], resources: list[str]) -> list[Any]:
        account_phone = b.user__phone
        phones = [phone for _n, _i, phone in attendees if phone] or ([account_phone] if account_phone else [])
        return [
            b.code,
            b.offering__title,
            b.offering__branch__name or "",
            _local(b.slot__start),
            _local(b.slot__end),
            "、".join(resources),
            "、".join(name for name, _i, _p in attendees) or b.user__nickname,
            b.party_size,
            "、".join(self._id(id_number) for _n, id_number, _p in attendees if id_number),
            "、".join(self._phone(p) for p in phones),
            self._answers(b.offering_id, b.answers or {}),
            self.statuses.get(b.status, b.status),
            _yuan(b.amount_fen),
            _yuan(b.paid_fen),
            self._phone(account_phone),
            b.booked_by__username or "",
            _local(b.created_at),
            _local(b.checked_in_at),
            _local(b.cancelled_at),
            b.cancel_reason,
        ]


def rows(
    desk: Desk, qs: QuerySet[Booking], chunk_size: int | None = None, *, full_ids: bool = False
) -> Iterator[list[Any]]:
    """Export rows for every booking of ``qs``, newest first, read chunk by chunk.

    Chunks follow the primary key (``id < last id of the previous chunk``, LIMIT n) rather than a
    server-side cursor, so memory stays bounded on every database (MySQL/MariaDB and SQLite
    drivers would otherwise hold the whole result in memory) and each chunk is one indexed query.
    """
    size = chunk_size or settings.CONSOLE_EXPORT_CHUNK
    make = _Rows(desk, full_ids)
    ordered = qs.order_by("-pk")
    last: int | None = None
    while True:
        page = ordered if last is None else ordered.filter(pk__lt=last)
        bookings = list(page.values_list(*_FIELDS, named=True)[:size])
        if not bookings:
            return
        yield from make.chunk(bookings)
        last = bookings[-1].pk


def write_xlsx(
    desk: Desk, qs: QuerySet[Booking], out: IO[bytes], chunk_size: int | None = None, *, full_ids: bool = False
) -> int:
    """Write the .xlsx to ``out``; returns the number of bookings written."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_("Bookings"))
    for index, width in enumerate(WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    sheet.append(headers())
    count = 0
    for row in rows(desk, qs, chunk_size, full_ids=full_ids):
        sheet.append(row)
        count += 1
    workbook.save(out)
    return count


def xlsx_file(desk: Desk, qs: QuerySet[Booking], *, full_ids: bool = False) -> IO[bytes]:
    """The .xlsx in a temporary file (deleted when closed), rewound, ready to stream."""
    out = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 (the response closes it)
    write_xlsx(desk, qs, out, full_ids=full_ids)
    out.seek(0)
    return out


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    return str(value)


def csv_chunks(desk: Desk, qs: QuerySet[Booking], chunk_size: int | None = None) -> Iterator[str]:
    """The CSV as text pieces: a BOM first (so Excel reads UTF-8 Chinese), then ~100 rows a piece."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers())
    yield "\ufeff" + buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    for n, row in enumerate(rows(desk, qs, chunk_size), start=1):
        writer.writerow([_csv_value(v) for v in row])
        if n % 100 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def filename(extension: str) -> str:
    return f"bookings-{timeutil.now().astimezone(timeutil.local_zone()):%Y%m%d-%H%M%S}.{extension}"
