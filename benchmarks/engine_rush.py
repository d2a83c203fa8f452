"""Rush on one slot, straight through the booking engine (no HTTP): how fast and how exact.

    YUYUE_DATABASE_URL=postgres://… python benchmarks/engine_rush.py --capacity 200 --users 2000

Creates a fresh merchant, a scenic offering and one slot of --capacity seats, --users people
with resident IDs, then lets --processes processes of --threads threads (each thread with its
own database connection, like server workers) book as fast as they can, every user once.
Prints one `name: value` per line: attempts, confirmed, oversold, duplicates, errors,
throughput, and p50/p95/p99 latency of all answers and of the sold-out answers alone.
Uses the configured database (SQLite in the working directory by default); run it against a
scratch database: it leaves its rows behind for inspection.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capacity", type=int, default=200)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2, help="like server workers")
    parser.add_argument("--threads", type=int, default=8, help="per process")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yuyue.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Sum
    from stdnum.cn import ric

    from yuyue.accounts.models import EndUser, Person
    from yuyue.booking import services
    from yuyue.booking.models import ACTIVE_STATUSES, Booking
    from yuyue.catalog.models import Offering
    from yuyue.core import personal, timeutil
    from yuyue.core.errors import DomainError
    from yuyue.scheduling.models import Slot
    from yuyue.tenants.models import Merchant

    call_command("migrate", verbosity=0)
    run = uuid.uuid4().hex[:8]
    merchant = Merchant.objects.create(name=f"压测景区 {run}", slug=f"bench-{run}")
    offering = Offering.objects.create(merchant=merchant, kind="scenic", title="国庆早场")
    start = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=2), dt.time(8))
    end = start + dt.timedelta(hours=4)
    slot = Slot.objects.create(offering=offering, start=start, end=end, capacity=args.capacity)

    # People in bulk: one account and one real-name person each.
    phones = [f"13{int(run, 16) % 10}{i:08d}" for i in range(args.users)]
    EndUser.objects.bulk_create([EndUser(phone=p, phone_hash=personal.phone_hash(p)) for p in phones], batch_size=1000)
    users = list(EndUser.objects.filter(phone_hash__in=[personal.phone_hash(p) for p in phones]).order_by("pk"))
    ids = []
    for i in range(args.users):
        body = f"{110000 + (int(run, 16) + i) % 90000:06d}1990{(i // 28) % 12 + 1:02d}{i % 28 + 1:02d}{i % 1000:03d}"
        ids.append(body + ric.calc_check_digit(body + "0"))
    people = Person.objects.bulk_create(
        [
            Person(owner=u, name=f"游客{i}", id_number=n, id_hash=personal.id_hash(n), birth_date=dt.date(1990, 1, 1))
            for i, (u, n) in enumerate(zip(users, ids, strict=True))
        ],
        batch_size=1000,
    )
    if connection.vendor == "mysql" or people[0].pk is None:  # MySQL returns no ids from bulk_create
        by_owner = dict(Person.objects.filter(owner__in=users).values_list("owner_id", "pk"))
        person_ids = [by_owner[u.pk] for u in users]
    else:
        person_ids = [p.pk for p in people]

    work = list(zip(users, person_ids, strict=True))
    lock = threading.Lock()
    outcomes: Counter[str] = Counter()
    latencies: list[float] = []
    sold_out: list[float] = []

    def client(share: list) -> None:
        for user, person_id in share:
            began = time.perf_counter()
            try:
                services.book(user=user, slot_id=slot.pk, person_ids=[person_id])
                label = "ok"
            except DomainError as exc:
                label = exc.code
            except Exception as exc:  # a crash is a bug: count it, keep going
                label = f"error:{type(exc).__name__}"
            took = (time.perf_counter() - began) * 1000
            with lock:
                outcomes[label] += 1
                latencies.append(took)
                if label == "slot_full":
                    sold_out.append(took)
        connection.close()

    def process(index: int, results: Any) -> None:
        """One of --processes: its share of the users, booked from --threads threads."""
        connection.close()  # never share the parent's connection across fork
        mine = work[index :: args.processes]
        threads = [threading.Thread(target=client, args=(mine[i :: args.threads],)) for i in range(args.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results.put((dict(outcomes), latencies, sold_out))

    connection.close()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    began = time.perf_counter()
    workers = [context.Process(target=process, args=(i, results)) for i in range(args.processes)]
    for w in workers:
        w.start()
    for _ in workers:
        counts, lat, sold = results.get()
        outcomes.update(counts)
        latencies.extend(lat)
        sold_out.extend(sold)
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began

    slot.refresh_from_db()
    active = Booking.objects.filter(slot=slot, status__in=ACTIVE_STATUSES)
    seats = active.aggregate(n=Sum("seats"))["n"] or 0
    duplicates = active.count() - active.values("attendees__id_hash").distinct().count()

    def pct(values: list[float], q: float) -> str:
        if not values:
            return "n/a"
        values = sorted(values)
        return f"{values[min(len(values) - 1, int(q * len(values)))]:.1f}"

    print(f"database: {connection.vendor}")
    print(f"cores: {os.cpu_count()}")
    print(f"processes: {args.processes}")
    print(f"threads_per_process: {args.threads}")
    print(f"attempts: {sum(outcomes.values())}")
    print(f"confirmed: {outcomes['ok']}")
    print(f"slot_reserved: {slot.reserved}")
    print(f"oversold: {max(seats - args.capacity, 0) + max(slot.reserved - args.capacity, 0)}")
    print(f"reserved_matches_bookings: {slot.reserved == seats}")
    print(f"duplicates: {duplicates}")
    print(f"errors: {sum(v for k, v in outcomes.items() if k.startswith('error'))}")
    print(f"outcomes: {dict(outcomes)}")
    print(f"throughput_rps: {len(latencies) / elapsed:.1f}")
    print(f"bookings_per_s: {outcomes['ok'] / elapsed:.1f}")
    print(f"p50_ms: {pct(latencies, 0.50)}")
    print(f"p95_ms: {pct(latencies, 0.95)}")
    print(f"p99_ms: {pct(latencies, 0.99)}")
    print(f"sold_out_p50_ms: {pct(sold_out, 0.50)}")
    print(f"sold_out_p99_ms: {pct(sold_out, 0.99)}")
    print(f"mean_ms: {statistics.fmean(latencies):.1f}")
    ok = outcomes["ok"] == min(args.capacity, args.users) and slot.reserved == seats and duplicates == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
