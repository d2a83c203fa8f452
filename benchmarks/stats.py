"""The statistics dashboard on 1,000,000 bookings in PostgreSQL: how long each of its queries takes.

    .venv/bin/python benchmarks/stats.py --db-url postgres://postgres@127.0.0.1:5432/yuyue_stats_bench --rows 1000000

Creates the database if it does not exist and migrates it, then loads ``--rows`` bookings with
COPY (not the ORM row by row): five merchants (one big one with 60 % of the bookings), three
branches each, four offerings per branch, two coaches per branch, four slots per offering and day
over the last year and the next two weeks, demand that follows the weekday and the hour, statuses
as a year of real traffic leaves them (completed, checked in, no-shows, cancellations, refunds,
expired holds), check-in times, booking events (a refund recorded with each refund) and reviews.
A later run with the same ``--rows`` reuses the data (``--reload`` drops the database first).

Then, as the big merchant's owner (every block, money included), it runs the dashboard's own
functions (``yuyue.insights.stats``) over the last year and over the last month, ``--runs`` times
each, each time on a fresh scope (blocks of one dashboard share a few aggregates: a block alone
pays for all it uses, and the total is what one page or API call costs). It prints one
``name: value`` per line: the median milliseconds of every block and of the whole dashboard, with
the row counts and the number of CPUs. ``--sql`` runs a statement first, e.g. to try an index.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/yuyue_stats_bench"
MERCHANTS = 5
BIG_SHARE = 0.6
BRANCHES = 3
OFFERINGS_PER_BRANCH = 4
HISTORY_DAYS = 365
FUTURE_DAYS = 14
SLOT_HOURS = ((7, 30), (12, 0), (18, 30), (20, 0))  # four classes a day, shifted per offering
USERS = 100_000
SEED = 7
SLUG = "bench-stats-{rows}-{n}"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def ensure_database(url: str, *, fresh: bool = False) -> None:
    """CREATE DATABASE when it is missing (connected to the server's ``postgres`` database)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
            log(f"created database {name}")


def setup_django(url: str) -> None:
    os.environ["YUYUE_DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yuyue.settings")
    import django

    django.setup()


# --- Loading ---------------------------------------------------------------------------------


def copy_rows(conn: Any, model: Any, rows: Iterable[dict[str, Any]], *, with_ids: bool = False) -> int:
    """COPY plain dicts into ``model``'s table; fields a row leaves out get the model's default.

    The id comes from the row with ``with_ids`` (so that other rows can point to it), else from
    the table's identity."""
    from django.db.models import JSONField
    from psycopg.types.json import Jsonb

    fields = [f for f in model._meta.concrete_fields if with_ids or not f.primary_key]
    defaults = {f.attname: f.get_default() for f in fields}
    json_fields = {f.attname for f in fields if isinstance(f, JSONField)}
    columns = ", ".join(f'"{f.column}"' for f in fields)
    count = 0
    with conn.cursor() as cursor, cursor.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as copy:
        for row in rows:
            values = []
            for f in fields:
                value = row.get(f.attname, defaults[f.attname])
                values.append(Jsonb(value) if f.attname in json_fields else value)
            copy.write_row(values)
            count += 1
    return count


def next_id(conn: Any, table: str) -> int:
    return int(conn.execute(f'SELECT coalesce(max(id), 0) + 1 FROM "{table}"').fetchone()[0])


def reset_sequence(conn: Any, table: str) -> None:
    conn.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT max(id) FROM \"{table}\"))")


def demand(weekday: int, hour: int) -> float:
    """Evenings and weekend mornings are busy, lunchtime on workdays is quiet."""
    weekend = weekday >= 5
    by_hour = {7: 0.9 if weekend else 0.6, 12: 0.45 if weekend else 0.3, 18: 0.75, 20: 1.0 if not weekend else 0.55}
    return by_hour[hour] * (1.15 if weekend else 1.0)


def load(url: str, rows: int) -> None:
    import psycopg
    from django.contrib.auth.models import User
    from django.db import transaction

    from yuyue.accounts.models import EndUser
    from yuyue.booking.models import Booking, BookingEvent, Review, Status
    from yuyue.catalog.models import Offering, Resource
    from yuyue.core import ids, timeutil
    from yuyue.scheduling.models import Slot
    from yuyue.tenants.models import Branch, Merchant, Staff

    rng = random.Random(SEED)
    started = time.perf_counter()
    now = timeutil.now()
    today = timeutil.today()
    first_day = today - dt.timedelta(days=HISTORY_DAYS)

    existing = EndUser.objects.count()
    if existing < USERS:
        EndUser.objects.bulk_create(
            [EndUser(nickname=f"压测用户{n}") for n in range(existing, USERS)], batch_size=10_000
        )
    user_ids = list(EndUser.objects.order_by("id").values_list("id", flat=True)[:USERS])

    with transaction.atomic():
        plans: list[dict[str, Any]] = []  # one per offering: its ids and prices
        for n in range(MERCHANTS):
            merchant = Merchant.objects.create(name=f"压测商户{n + 1}", slug=SLUG.format(rows=rows, n=n))
            owner = User.objects.create_user(username=f"{merchant.slug}-owner", password=None)
            Staff.objects.create(user=owner, merchant=merchant, role="owner")
            for b in range(BRANCHES):
                branch = Branch.objects.create(merchant=merchant, name=f"{b + 1}号店")
                coaches = [
                    Resource.objects.create(merchant=merchant, branch=branch, type="coach", name=f"教练{b + 1}-{c + 1}")
                    for c in range(2)
                ]
                for o in range(OFFERINGS_PER_BRANCH):
                    online = o % 2 == 0
                    offering = Offering.objects.create(
                        merchant=merchant,
                        branch=branch,
                        kind="course",
                        title=f"{branch.name}课程{o + 1}",
                        price_fen=rng.choice([0, 6000, 8000, 12000]) if o else 0,
                        policy_overrides={} if online else {"payment": "on_site"},
                    )
                    plans.append(
                        {
                            "merchant": merchant.pk,
                            "offering": offering.pk,
                            "price": offering.price_fen,
                            "online": online,
                            "coach": coaches[o % 2].pk,
                            "shift": o % 2,  # half the offerings start 30 minutes later
                            "big": n == 0,
                        }
                    )

    conn = psycopg.connect(url)
    zone = timeutil.local_zone()
    # Slots: four a day per offering, capacity by offering.
    slot_rows: list[dict[str, Any]] = []
    slot_id = next_id(conn, Slot._meta.db_table)
    for plan in plans:
        capacity = rng.choice([40, 50, 60, 80]) if plan["big"] else rng.choice([20, 30, 40])
        for day_offset in range(HISTORY_DAYS + FUTURE_DAYS + 1):
            day = first_day + dt.timedelta(days=day_offset)
            for hour, minute in SLOT_HOURS:
                start = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone) + dt.timedelta(
                    minutes=30 * plan["shift"]
                )
                slot_rows.append(
                    {
                        "id": slot_id,
                        "offering_id": plan["offering"],
                        "start": start,
                        "end": start + dt.timedelta(minutes=60),
                        "capacity": capacity,
                        "reserved": 0,
                        "status": "open",
                        "_plan": plan,
                        "_weight": demand(day.weekday(), hour) * rng.uniform(0.6, 1.4),
                    }
                )
                slot_id += 1
    with conn.transaction():
        copy_rows(conn, Slot, slot_rows, with_ids=True)
        copy_rows(
            conn, Slot.resources.through, ({"slot_id": s["id"], "resource_id": s["_plan"]["coach"]} for s in slot_rows)
        )
    log(f"slots: {len(slot_rows)}")

    # How many bookings each slot gets: the big merchant 60 %, by demand, never over capacity.
    counts = [0] * len(slot_rows)
    for big in (True, False):
        target = round(rows * BIG_SHARE) if big else rows - round(rows * BIG_SHARE)
        members = [i for i, s in enumerate(slot_rows) if s["_plan"]["big"] == big]
        total_weight = sum(slot_rows[i]["_weight"] for i in members)
        for i in members:
            counts[i] = min(slot_rows[i]["capacity"], int(slot_rows[i]["_weight"] * target / total_weight))
        missing = target - sum(counts[i] for i in members)
        while missing > 0:
            for i in members:
                if missing and counts[i] < slot_rows[i]["capacity"]:
                    counts[i] += 1
                    missing -= 1
            if missing and all(counts[i] >= slot_rows[i]["capacity"] for i in members):
                raise SystemExit("not enough capacity for --rows; raise the capacities")

    booking_id = next_id(conn, Booking._meta.db_table)
    first_booking_id = booking_id
    events: list[tuple[Any, ...]] = []  # (booking, action, from, to, at, data): tuples, to keep 2M of them small
    reviews: list[dict[str, Any]] = []

    def past_status() -> str:
        roll = rng.random()
        for share, status in (
            (0.70, Status.COMPLETED),
            (0.04, Status.NO_SHOW),
            (0.09, Status.CANCELLED),
            (0.02, Status.REFUNDED),
            (0.02, Status.EXPIRED),
            (0.005, Status.REJECTED),
        ):
            if roll < share:
                return status
            roll -= share
        return Status.CONFIRMED  # nobody marked it

    def future_status() -> str:
        roll = rng.random()
        return Status.CANCELLED if roll < 0.08 else Status.PENDING_PAYMENT if roll < 0.12 else Status.CONFIRMED

    def bookings() -> Iterator[dict[str, Any]]:
        nonlocal booking_id
        for slot, count in zip(slot_rows, counts, strict=True):
            plan = slot["_plan"]
            start: dt.datetime = slot["start"]
            for _ in range(count):
                if start + dt.timedelta(minutes=60) <= now:
                    status = past_status()
                elif start <= now:
                    status = rng.choice([Status.CHECKED_IN] * 8 + [Status.CONFIRMED] * 2)
                else:
                    status = future_status()
                created = start - dt.timedelta(hours=rng.uniform(2, 24 * 10))
                paid = plan["price"] if plan["online"] and status not in {Status.PENDING_PAYMENT, Status.EXPIRED} else 0
                attended = status in {Status.CHECKED_IN, Status.COMPLETED}
                cancelled = status in {Status.CANCELLED, Status.REFUNDED}
                row = {
                    "id": booking_id,
                    "code": ids.booking_code(),
                    "user_id": rng.choice(user_ids),
                    "merchant_id": plan["merchant"],
                    "offering_id": plan["offering"],
                    "slot_id": slot["id"],
                    "status": status,
                    "amount_fen": plan["price"],
                    "paid_fen": paid if status != Status.REJECTED else 0,
                    "checked_in_at": start + dt.timedelta(minutes=rng.uniform(-20, 15)) if attended else None,
                    "cancelled_at": created + dt.timedelta(hours=1) if cancelled else None,
                    "cancel_reason": "临时有事" if cancelled else "",
                    "created_at": created,
                    "updated_at": created,
                }
                first = Status.PENDING_PAYMENT if plan["price"] and plan["online"] else Status.CONFIRMED
                events.append((booking_id, "book", "", first, created, None))
                if status in {Status.COMPLETED, Status.CHECKED_IN, Status.NO_SHOW}:
                    events.append((booking_id, status, Status.CONFIRMED, status, start, None))
                if cancelled:
                    closure = rng.random() < 0.1
                    data = {"closure": True, "refund_fen": paid, "refund_percent": 100} if closure else {}
                    events.append((booking_id, "cancel", Status.CONFIRMED, Status.CANCELLED, created, data))
                    if status == Status.REFUNDED:
                        data = {"refund_fen": paid}
                        events.append((booking_id, "refund", Status.CANCELLED, Status.REFUNDED, created, data))
                if status == Status.COMPLETED and rng.random() < 0.15:
                    reviews.append(
                        {
                            "booking_id": booking_id,
                            "user_id": row["user_id"],
                            "offering_id": plan["offering"],
                            "resource_id": plan["coach"],
                            "rating": rng.choices([5, 4, 3, 2, 1], [56, 30, 9, 4, 1])[0],
                            "text": "",
                            "is_hidden": False,
                            "created_at": start + dt.timedelta(hours=3),
                        }
                    )
                booking_id += 1
                yield row

    def event_rows() -> Iterator[dict[str, Any]]:
        for booking, action, old, new, at, data in events:
            yield {
                "booking_id": booking,
                "action": action,
                "from_status": old,
                "to_status": new,
                "actor": "system",
                "reason": "",
                "data": data or {},
                "created_at": at,
            }

    with conn.transaction():
        loaded = copy_rows(conn, Booking, bookings(), with_ids=True)
        log(f"bookings: {loaded}")
        copy_rows(conn, BookingEvent, event_rows())
        log(f"events: {len(events)}")
        copy_rows(conn, Review, reviews)
        log(f"reviews: {len(reviews)}")
        for table in (Slot._meta.db_table, Booking._meta.db_table):
            reset_sequence(conn, table)
        holding = tuple(
            str(s)
            for s in (Status.PENDING_PAYMENT, Status.CONFIRMED, Status.CHECKED_IN, Status.COMPLETED, Status.NO_SHOW)
        )
        conn.execute(
            f"""UPDATE "{Slot._meta.db_table}" s SET reserved = b.seats
                FROM (SELECT slot_id, sum(seats) AS seats FROM "{Booking._meta.db_table}"
                      WHERE id >= %s AND status = ANY(%s) GROUP BY slot_id) b
                WHERE s.id = b.slot_id""",
            [first_booking_id, list(holding)],
        )
        conn.execute(
            f"""UPDATE "{Resource._meta.db_table}" r SET rating = v.average
                FROM (SELECT resource_id, round(avg(rating), 2) AS average FROM "{Review._meta.db_table}"
                      GROUP BY resource_id) v
                WHERE r.id = v.resource_id"""
        )
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    log(f"load seconds: {time.perf_counter() - started:.1f}")


# --- Timing ----------------------------------------------------------------------------------


def timed(work: Callable[[Any], Any], make_scope: Callable[[], Any], runs: int) -> float:
    """Median milliseconds of ``work(scope)``, each run on a fresh scope (nothing cached between runs)."""
    samples = []
    for _ in range(runs):
        scope = make_scope()
        started = time.perf_counter()
        work(scope)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default=DEFAULT_URL)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query (the median is printed)")
    parser.add_argument("--reload", action="store_true", help="drop the database and load everything again")
    parser.add_argument("--sql", action="append", default=[], help="SQL to run before timing, e.g. CREATE INDEX …")
    args = parser.parse_args()
    if not urlsplit(args.db_url).scheme.startswith("postgres"):
        raise SystemExit("this benchmark is for PostgreSQL: --db-url postgres://…")

    ensure_database(args.db_url, fresh=args.reload)
    setup_django(args.db_url)
    from django.core.management import call_command
    from django.db import connection

    from yuyue.booking.models import Booking, BookingEvent, Review
    from yuyue.console.access import desk_for
    from yuyue.core import timeutil
    from yuyue.insights import stats
    from yuyue.scheduling.models import Slot
    from yuyue.tenants.models import Merchant, Staff

    call_command("migrate", verbosity=0)
    big_slug = SLUG.format(rows=args.rows, n=0)
    if not Merchant.objects.filter(slug=big_slug).exists():
        load(args.db_url, args.rows)
    elif not Booking.objects.filter(merchant__slug=big_slug).exists():
        raise SystemExit("an earlier load did not finish: run again with --reload")
    else:
        log(f"reusing the bookings of {big_slug}")
    with connection.cursor() as cursor:
        for sql in args.sql:
            log(f"running: {sql}")
            cursor.execute(sql)
        cursor.execute("ANALYZE")

    owner = Staff.objects.select_related("merchant", "user").get(merchant__slug=big_slug, role="owner")
    desk = desk_for(owner)
    today = timeutil.today()
    print(f"database: PostgreSQL {connection.cursor().connection.info.server_version}")
    print(f"nproc: {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}")
    print(f"bookings: {Booking.objects.count()}")
    print(f"bookings_of_the_big_merchant: {Booking.objects.filter(merchant=desk.merchant).count()}")
    print(f"slots: {Slot.objects.count()}")
    print(f"booking_events: {BookingEvent.objects.count()}")
    print(f"reviews: {Review.objects.count()}")
    print(f"runs_per_query: {args.runs}")
    # Other work on the machine slows every figure down: say how busy it was.
    print(f"load_average_before: {os.getloadavg()[0]:.2f}")
    for label, days in (("year", 365), ("month", 30)):
        period = stats.Period.parse(
            desk, {"date_from": (today - dt.timedelta(days=days - 1)).isoformat(), "date_to": today.isoformat()}
        )
        scope = stats.Scope(desk, period)
        print(f"{label}_bookings_in_period: {scope.bookings().count()}")
        for name, block in stats.BLOCKS.items():
            print(f"{label}_{name}_ms: {timed(block, functools.partial(stats.Scope, desk, period), args.runs):.1f}")
        total = timed(stats.dashboard, functools.partial(stats.Scope, desk, period), args.runs)
        print(f"{label}_dashboard_total_ms: {total:.1f}")
    print(f"load_average_after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
