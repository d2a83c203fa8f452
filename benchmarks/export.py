"""Export 100,000 bookings as .xlsx and CSV: how long it takes and how much memory it needs.

    python benchmarks/export.py --db postgres://postgres@127.0.0.1:5432/yuyue_bench --rows 100000

Loads --rows bookings of one merchant (one real-name attendee each, with an encrypted resident ID
and phone, form answers, a coach, mixed statuses) with bulk inserts, unless a previous run left
them there (the merchant's slug names the row count). Then, in a fresh process each so that the
loading does not count, exports every booking exactly as the console's export view does, as the
owner (personal data in full, so every value is decrypted: the slowest case), and prints one
`name: value` per line: rows, seconds, rows per second, peak traced Python memory
(tracemalloc, in a second run because tracing slows Python down) and the process's peak RSS
(ru_maxrss), for xlsx and csv; and the console list's first page, count and phone search times.
Run it against a scratch database: it leaves its rows behind for the next run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from typing import Any

SLOTS = 100


def _setup(db: str | None) -> None:
    if db:
        os.environ["YUYUE_DATABASE_URL"] = db
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yuyue.settings")
    import django

    django.setup()


def load(rows: int) -> str:
    """The benchmark merchant with ``rows`` bookings (made now, or found from an earlier run)."""
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection, transaction
    from stdnum.cn import ric

    from yuyue.accounts.models import EndUser
    from yuyue.booking.models import Attendee, Booking, Status
    from yuyue.catalog.models import Offering, Resource
    from yuyue.core import ids, personal, timeutil
    from yuyue.scheduling.models import Slot
    from yuyue.tenants.models import Branch, Merchant, Staff

    call_command("migrate", verbosity=0)
    slug = f"bench-export-{rows}"
    merchant = Merchant.objects.filter(slug=slug).first()
    if merchant is not None and Booking.objects.filter(merchant=merchant).count() == rows:
        print(f"reused: {rows} bookings of {slug}", file=sys.stderr)
        return slug
    if merchant is not None:
        raise SystemExit(f"{slug} exists with another number of bookings; use a fresh database")

    started = time.perf_counter()
    merchant = Merchant.objects.create(name="导出压测博物馆", slug=slug)
    branch = Branch.objects.create(merchant=merchant, name="总馆")
    coach = Resource.objects.create(merchant=merchant, branch=branch, type="coach", name="讲解员甲")
    offering = Offering.objects.create(
        merchant=merchant,
        branch=branch,
        kind="exhibition",
        title="常设展",
        price_fen=3000,
        form_fields=[
            {"key": "note", "label": "备注", "type": "text"},
            {"key": "contact", "label": "联系电话", "type": "phone"},
        ],
    )
    owner = User.objects.create_user(username=f"{slug}-owner", password=None)
    Staff.objects.create(user=owner, merchant=merchant, role="owner")
    per_slot = -(-rows // SLOTS)
    first = timeutil.local_datetime(timeutil.today() - dt.timedelta(days=50), dt.time(9))
    slots = [
        Slot(
            offering=offering,
            start=first + dt.timedelta(days=d),
            end=first + dt.timedelta(days=d, hours=8),
            capacity=per_slot,
            reserved=0,
        )
        for d in range(SLOTS)
    ]
    Slot.objects.bulk_create(slots)
    slots = list(Slot.objects.filter(offering=offering).order_by("start"))
    Slot.resources.through.objects.bulk_create(
        [Slot.resources.through(slot_id=s.pk, resource_id=coach.pk) for s in slots]
    )

    users_count = max(rows // 5, 1)
    phones = [f"135{i:08d}" for i in range(users_count)]
    for start in range(0, users_count, 5000):
        chunk = phones[start : start + 5000]
        EndUser.objects.bulk_create(
            [EndUser(phone=p, phone_hash=personal.phone_hash(p)) for p in chunk], ignore_conflicts=True
        )
    users = list(
        EndUser.objects.filter(phone_hash__in=[personal.phone_hash(p) for p in phones]).values_list("pk", flat=True)
    )

    statuses = (
        [Status.CONFIRMED] * 14 + [Status.CANCELLED] * 2 + [Status.CHECKED_IN] * 2 + [Status.NO_SHOW, Status.COMPLETED]
    )
    batch = 5000
    for start in range(0, rows, batch):
        with transaction.atomic():
            bookings = []
            for i in range(start, min(start + batch, rows)):
                slot = slots[i % SLOTS]
                status = statuses[i % len(statuses)]
                created = slot.start - dt.timedelta(days=3, minutes=i % 1440)
                bookings.append(
                    Booking(
                        code=ids.booking_code(),
                        user_id=users[i % len(users)],
                        merchant=merchant,
                        offering=offering,
                        slot=slot,
                        status=status,
                        amount_fen=3000,
                        answers={"note": f"第{i}号", "contact": phones[i % len(phones)]},
                        created_at=created,
                        checked_in_at=slot.start + dt.timedelta(minutes=5)
                        if status in {Status.CHECKED_IN, Status.COMPLETED}
                        else None,
                        cancelled_at=created + dt.timedelta(hours=1) if status == Status.CANCELLED else None,
                        cancel_reason="行程有变" if status == Status.CANCELLED else "",
                    )
                )
            Booking.objects.bulk_create(bookings)
            if connection.vendor == "mysql" or bookings[0].pk is None:  # no ids back from bulk_create
                by_code = dict(Booking.objects.filter(code__in=[b.code for b in bookings]).values_list("code", "pk"))
                for b in bookings:
                    b.pk = by_code[b.code]
            attendees = []
            for i, b in zip(range(start, start + len(bookings)), bookings, strict=True):
                body = f"{110101 + i % 800:06d}19{80 + i % 20}{i % 12 + 1:02d}{i % 28 + 1:02d}{i % 1000:03d}"
                id_number = body + ric.calc_check_digit(body + "0")
                phone = f"137{i:08d}"
                attendees.append(
                    Attendee(
                        booking_id=b.pk,
                        name=f"观众{i}",
                        id_number=id_number,
                        id_hash=personal.id_hash(id_number),
                        phone=phone,
                        phone_hash=personal.phone_hash(phone),
                    )
                )
            Attendee.objects.bulk_create(attendees)
        print(f"loaded {start + len(bookings)}/{rows}", file=sys.stderr)
    for slot in slots:
        Slot.objects.filter(pk=slot.pk).update(reserved=Booking.objects.filter(slot=slot).count())
    print(f"load seconds: {time.perf_counter() - started:.1f}", file=sys.stderr)
    return slug


def export(slug: str, kind: str, trace: bool, chunk: int) -> dict[str, Any]:
    """One export of every booking of the merchant, as the console's export view makes it."""
    from yuyue.console import exports
    from yuyue.console.access import desk_for
    from yuyue.console.selectors import BookingFilter, filter_bookings
    from yuyue.tenants.models import Staff

    desk = desk_for(Staff.objects.select_related("merchant", "user").get(merchant__slug=slug, role="owner"))
    qs = filter_bookings(desk, BookingFilter())
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        if kind == "xlsx":
            count = exports.write_xlsx(desk, qs, out, chunk_size=chunk)  # type: ignore[arg-type]
        else:
            count = -1  # the header
            for piece in exports.csv_chunks(desk, qs, chunk_size=chunk):
                out.write(piece.encode())
                count += piece.count("\n")
        size = out.tell()
    seconds = time.perf_counter() - started
    result = {"rows": count, "seconds": seconds, "bytes": size}
    if trace:
        result["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def list_timings(slug: str) -> dict[str, float]:
    """The console list on the same merchant: first page, total count, page 100, a phone search."""
    from yuyue.console.access import desk_for
    from yuyue.console.selectors import BookingFilter, booking_list_rows, filter_bookings, page_of
    from yuyue.tenants.models import Staff

    desk = desk_for(Staff.objects.select_related("merchant", "user").get(merchant__slug=slug, role="owner"))

    def timed(work: Any) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            work()
            best = min(best, time.perf_counter() - started)
        return best * 1000

    everything = filter_bookings(desk, BookingFilter())
    by_phone = filter_bookings(desk, BookingFilter(q="13700012345"))
    return {
        "list_first_page_ms": timed(lambda: page_of(booking_list_rows(everything), 1, 50)),
        "list_page_100_ms": timed(lambda: page_of(booking_list_rows(everything), 100, 50)),
        "list_count_ms": timed(everything.count),
        "search_phone_ms": timed(lambda: page_of(booking_list_rows(by_phone), 1, 50)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL (default: YUYUE_DATABASE_URL, else SQLite)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=2000, help="rows per database round trip")
    parser.add_argument("--no-trace", action="store_true", help="skip the (slower) tracemalloc runs")
    parser.add_argument("--child", nargs=3, metavar=("SLUG", "KIND", "TRACE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    _setup(args.db)

    if args.child:
        slug, kind, trace = args.child
        if kind == "list":
            print(json.dumps(list_timings(slug)))
        else:
            print(json.dumps(export(slug, kind, trace == "1", args.chunk)))
        return 0

    from django.db import connection

    slug = load(args.rows)
    print(f"database: {connection.vendor}")
    print(f"bookings: {args.rows}")

    def child(kind: str, trace: bool) -> dict[str, Any]:
        command = [sys.executable, __file__, "--rows", str(args.rows), "--chunk", str(args.chunk)]
        command += ["--child", slug, kind, "1" if trace else "0"]
        if args.db:
            command += ["--db", args.db]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    for kind in ("xlsx", "csv"):
        plain = child(kind, trace=False)
        print(f"{kind}_rows: {plain['rows']}")
        print(f"{kind}_seconds: {plain['seconds']:.1f}")
        print(f"{kind}_rows_per_second: {plain['rows'] / plain['seconds']:.0f}")
        print(f"{kind}_file_mb: {plain['bytes'] / 2**20:.1f}")
        print(f"{kind}_peak_rss_mb: {plain['maxrss_mb']:.0f}")
        if not args.no_trace:
            traced = child(kind, trace=True)
            print(f"{kind}_traced_peak_mb: {traced['traced_peak_mb']:.1f}")
    for name, value in child("list", trace=False).items():
        print(f"{name}: {value:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
