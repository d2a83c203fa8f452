"""What one booking request costs the server: SQL statements and CPU, measured in-process.

    python benchmarks/request_cost.py --db postgres
    python benchmarks/request_cost.py --db sqlite --requests 300

Creates a scratch database (``--db-name``, default ``yuyue_cost``; dropped afterwards), one free
scenic slot of ``--requests`` seats and twice as many signed-in people, then sends the booking
requests through Django's test client (the whole middleware and API stack, no HTTP server): first
enough to fill the slot, then as many again that get the sold-out answer. Prints, one
``name: value`` per line:

- ``statements_per_booking`` / ``statements_per_soldout``: SQL statements of one warm request
  (``CaptureQueriesContext``), and the averages over all requests (``avg_…``);
- ``cpu_ms_per_booking`` / ``cpu_ms_per_soldout``: process CPU time (``time.process_time``) per
  request over the run, which includes the database driver's work in this process but not the
  database server's or Redis's.

Redis (``--redis``, a scratch database: it is flushed) is on unless ``--no-redis``. Per-address
rate limits are lifted as in ``rush.py`` (every request comes from one address).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rush  # the scenario and database helpers of the rush benchmark

DEFAULT_REDIS = "redis://127.0.0.1:6379/7"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "mariadb"], default="sqlite")
    parser.add_argument("--db-name", default="yuyue_cost", help="scratch database (created and dropped)")
    parser.add_argument("--requests", type=int, default=300, help="bookings measured (and as many sold-out answers)")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="scratch Redis database (flushed)")
    parser.add_argument("--no-redis", action="store_true", help="run without Redis (no gate, limits in the DB cache)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="booking",
        choices=["booking", "soldout"],
        help="print where the booking requests (or the sold-out answers) spend CPU (cProfile)",
    )
    return parser.parse_args(argv)


def measure(scenario: rush.Scenario, count: int, *, profile: str | None = None) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    statements = 0

    def counting(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal statements
        statements += len(params) if many and isinstance(params, list | tuple) else 1
        return execute(sql, params, many, context)

    def book(i: int) -> int:
        body = json.dumps({"slot_id": scenario.slot_id, "people": [scenario.person_ids[i]]})
        answer = client.post(
            "/api/v1/bookings",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {scenario.tokens[i]}",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        )
        return answer.status_code

    def run(first: int, n: int, expect: set[int]) -> tuple[float, int]:
        nonlocal statements
        statements = 0
        began = time.process_time()
        with connection.execute_wrapper(counting):
            for i in range(first, first + n):
                status = book(i)
                if status not in expect:
                    raise SystemExit(f"request_cost: request {i} answered {status}, expected {sorted(expect)}")
        return (time.process_time() - began) * 1000 / n, statements

    # One warm-up booking (imports, caches, prepared connections), then one counted statement by statement.
    first = [book(0)]
    with CaptureQueriesContext(connection) as booked:
        first.append(book(1))
    if any(status not in (200, 201) for status in first):
        raise SystemExit(f"request_cost: the first bookings answered {first}")
    # Read the captured statements now: the next request empties the connection's query log.
    booking_sql = [q["sql"] for q in booked.captured_queries]

    def profiled(what: str, measured: Any) -> Any:
        if profile != what:
            return measured()
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        try:
            return measured()
        finally:
            profiler.disable()
            stats = pstats.Stats(profiler, stream=sys.stderr)
            stats.sort_stats(os.environ.get("REQUEST_COST_SORT", "tottime"))
            stats.print_stats(int(os.environ.get("REQUEST_COST_LINES", "25")))

    cpu_booking, booking_statements = profiled("booking", lambda: run(2, count - 2, {200, 201}))
    with CaptureQueriesContext(connection) as refused:
        sold_out_status = book(count)
    soldout_sql = [q["sql"] for q in refused.captured_queries]
    cpu_soldout, soldout_statements = profiled("soldout", lambda: run(count + 1, count - 1, {sold_out_status}))
    return {
        "statements_per_booking": len(booking_sql),
        "avg_statements_per_booking": booking_statements / (count - 2),
        "cpu_ms_per_booking": cpu_booking,
        "soldout_status": sold_out_status,
        "statements_per_soldout": len(soldout_sql),
        "avg_statements_per_soldout": soldout_statements / (count - 1),
        "cpu_ms_per_soldout": cpu_soldout,
        "_booking_sql": booking_sql,
        "_soldout_sql": soldout_sql,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.requests < 10:
        raise SystemExit("request_cost: --requests must be at least 10")
    root = Path(tempfile.mkdtemp(prefix="yuyue-cost-"))
    env = {
        "YUYUE_HOME": str(root),
        "YUYUE_DATABASE_URL": rush.database_url(args.db, args.db_name, root),
        "YUYUE_REDIS_URL": "" if args.no_redis else args.redis,
        "YUYUE_BROKER_URL": "",
        "YUYUE_SECRET_KEY": uuid.uuid4().hex * 2,
        "YUYUE_WAITING_ROOM": "",
        "YUYUE_NOTIFY_QUIET_HOURS": "",
        "YUYUE_DEBUG": "",
        "DJANGO_SETTINGS_MODULE": "yuyue.settings",
    }
    try:
        rush.recreate_database(args.db, args.db_name)
        if not args.no_redis:
            rush.flush_redis(args.redis)
        rush.setup_django(env)
        rush.rate_limits(env, rush.DEFAULT_BOOKING_USER_LIMIT)
        os.environ.update(env)
        from django.conf import settings
        from django.core.management import call_command

        for name, value in env.items():  # settings were read before the limits were lifted
            if name.startswith("YUYUE_RATE_"):
                setattr(settings, name.removeprefix("YUYUE_"), value)
        call_command("migrate", interactive=False, verbosity=0)
        scenario = rush.create_scenario(args.requests, 2 * args.requests)
        values = {"db": args.db, "redis": "off" if args.no_redis else args.redis, "requests": args.requests}
        values.update(measure(scenario, args.requests, profile=args.profile))
        verbose = os.environ.get("REQUEST_COST_SQL")
        for name, value in values.items():
            if name.startswith("_"):
                if verbose:
                    print(f"{name}:")
                    for sql in value:
                        print(f"    {sql[:200]}")
                continue
            print(f"{name}: {value:.2f}" if isinstance(value, float) else f"{name}: {value}")
        if args.json:
            Path(args.json).write_text(json.dumps(values, indent=2, default=str))
        return 0
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        rush.drop_database(args.db, args.db_name)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
