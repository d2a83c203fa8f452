"""Holiday rush through the real HTTP API: N people press "book" on one slot at the same moment.

    python benchmarks/rush.py --db postgres                 # 10,000 users, 1,000 seats, concurrency 500
    python benchmarks/rush.py --db sqlite --users 2000 --capacity 200 --concurrency 100
    python benchmarks/rush.py --db postgres --servers 2 --celery-workers 2 --mixed

Starts yuyue with its production server (`yuyue serve`: granian, workers sized to the cores) in a
fresh YUYUE_HOME on a fresh database (created and dropped by the run), creates one free scenic
slot of --capacity seats and --users signed-in people (tokens made in bulk, not N sign-ins), then a
separate load process (asyncio, one keep-alive HTTP/1.1 connection per concurrent client) releases
every user's `POST /api/v1/bookings` at the same moment. Afterwards it checks the DATABASE, not the
answers: confirmed bookings, oversold seats, slot.reserved against the active seats, duplicates,
and that every 201 is a confirmed booking. Prints one `name: value` per line and exits 1 when any
of those checks fails.

With --mixed, 80% of the requests browse the offering's slots and 5% cancel a booking made in the
run; each freed seat is offered to someone who was turned away, so at the end the slot must again
be exactly full. With --pgbench (the default on PostgreSQL), pgbench first measures what the
database alone does for the same conditional update + insert on one hot row, and the run prints
`db_limit_ratio` = bookings_per_s / pgbench_tps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
DEFAULT_DB_NAME = "yuyue_rush"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
DB_HOSTS = {
    "postgres": "postgres://postgres@127.0.0.1:5432/{name}",
    "mariadb": "mysql://root@127.0.0.1:3306/{name}",
}
# Every user of the run comes from 127.0.0.1: per-address limits would throttle the whole crowd
# as one client, so they are lifted for the run (and printed). Per-user limits stay as configured.
IP_LIMIT_FOR_RUN = "1000000/1"
DEFAULT_BOOKING_USER_LIMIT = "10/60,60/3600"
READY_TIMEOUT = 180
TRANSPORT_RETRIES = 2
BROWSE_SHARE = 0.80
CANCEL_SHARE = 0.05


# --- small helpers ------------------------------------------------------------------------------


def cores() -> int:
    return os.cpu_count() or 1


def default_server_workers() -> int:
    """What `yuyue serve` picks by itself: one process per core (at least 2)."""
    from yuyue.cli import default_workers

    return default_workers()


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` consecutive free TCP ports (like 8001..8004 behind nginx)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind((host, 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind((host, port))
            return list(range(base, base + count))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free consecutive ports")


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value)


# --- databases ----------------------------------------------------------------------------------


def database_url(db: str, name: str, home: Path) -> str:
    if db == "sqlite":
        return f"sqlite:///{home / 'rush.sqlite3'}"
    return DB_HOSTS[db].format(name=name)


def recreate_database(db: str, name: str) -> None:
    """A fresh, empty database for the run (SQLite: a new file, nothing to do)."""
    if db == "postgres":
        import psycopg

        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    elif db == "mariadb":
        import MySQLdb

        conn = MySQLdb.connect(host="127.0.0.1", user="root")
        try:
            cur = conn.cursor()
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        finally:
            conn.close()


def drop_database(db: str, name: str) -> None:
    with contextlib.suppress(Exception):
        if db == "postgres":
            import psycopg

            with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        elif db == "mariadb":
            import MySQLdb

            conn = MySQLdb.connect(host="127.0.0.1", user="root")
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
            conn.close()


def flush_redis(url: str) -> None:
    """The run's Redis database starts empty: slot ids repeat between runs on fresh databases."""
    import redis

    client = redis.Redis.from_url(url)
    if int(client.connection_pool.connection_kwargs.get("db", 0)) == 0:
        raise SystemExit("rush: refusing to flush Redis database 0; give --redis a scratch database like …/15")
    client.flushdb()
    client.close()


PGBENCH_SETUP = """
CREATE TABLE slot (id int PRIMARY KEY, capacity int NOT NULL, reserved int NOT NULL);
INSERT INTO slot VALUES (1, 2000000000, 0);
CREATE TABLE booking (id serial PRIMARY KEY, user_id int NOT NULL, slot_id int NOT NULL REFERENCES slot,
                      created_at timestamptz NOT NULL);
"""
PGBENCH_SCRIPT = """\\set uid random(1, 10000000)
BEGIN;
UPDATE slot SET reserved = reserved + 1 WHERE id = 1 AND reserved < capacity;
INSERT INTO booking (user_id, slot_id, created_at) VALUES (:uid, 1, now());
END;
"""


def run_pgbench(name: str, seconds: int, clients: int, home: Path) -> float | None:
    """Durable transactions/s of PostgreSQL alone for the booking's conditional update + insert."""
    pgbench = shutil.which("pgbench") or "/usr/bin/pgbench"
    if not Path(pgbench).exists():
        print("rush: pgbench not found; skipping the database-alone measurement", file=sys.stderr)
        return None
    scratch = f"{name}_pgbench"
    recreate_database("postgres", scratch)
    try:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={scratch}", autocommit=True) as conn:
            conn.execute(PGBENCH_SETUP)
            conn.execute("SET synchronous_commit = on")  # the server default, said out loud
        script = home / "booking.pgbench"
        script.write_text(PGBENCH_SCRIPT)
        out = subprocess.run(
            [
                pgbench,
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-n",
                "-c",
                str(clients),
                "-j",
                str(min(clients, 2)),
                "-T",
                str(seconds),
                "-f",
                str(script),
                scratch,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        found = re.search(r"tps = ([0-9.]+)", out.stdout)
        if not found:
            print(f"rush: pgbench failed: {out.stderr.strip()[:500]}", file=sys.stderr)
            return None
        return float(found.group(1))
    finally:
        drop_database("postgres", scratch)


# --- the scenario (needs Django set up on the run's database) ------------------------------------


@dataclass
class Scenario:
    merchant_id: int
    offering_id: int
    slot_id: int
    capacity: int
    tokens: list[str]
    person_ids: list[int]
    day: str


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "yuyue.settings"
    import django

    django.setup()


def visitor(account: Any, i: int, seed: int) -> Any:
    """Visitor ``i`` of a run: an adult with a valid resident ID, different for every ``i`` of the run
    and, through ``seed``, from other runs on the same database."""
    from stdnum.cn import ric

    from yuyue.accounts.models import Person
    from yuyue.core import personal

    body = f"{110000 + i % 90000:06d}1990{(i // 90000) % 12 + 1:02d}{(i // 1080000) % 28 + 1:02d}"
    body += f"{(seed + i // 90000) % 1000:03d}"
    number = body + ric.calc_check_digit(body + "0")
    return Person(
        owner=account,
        name=f"游客{i}",
        id_number=number,
        id_hash=personal.id_hash(number),
        birth_date=dt.date(1990, 1, 1),
    )


def create_scenario(capacity: int, users: int, *, batch: int = 1000) -> Scenario:
    """One free scenic slot (confirmed at once, one real-name visitor per booking) and `users` people
    with a bearer token each, written in bulk: what `yuyue token` does for a batch of phones."""
    from django.db import connection, transaction

    from yuyue.accounts.models import Person
    from yuyue.accounts.services import issue_tokens, users_for_phones
    from yuyue.catalog.models import Offering
    from yuyue.core import timeutil
    from yuyue.scheduling.models import Slot
    from yuyue.tenants.models import Merchant

    run = uuid.uuid4().hex[:8]
    merchant = Merchant.objects.create(name=f"压测景区 {run}", slug=f"rush-{run}")
    # Holiday factor off: the slot's capacity is exactly --capacity whatever day it falls on.
    offering = Offering.objects.create(
        merchant=merchant, kind="scenic", title="国庆早场", price_fen=0, policy_overrides={"holiday_mode": "normal"}
    )
    day = timeutil.today() + dt.timedelta(days=2)
    start = timeutil.local_datetime(day, dt.time(8))
    slot = Slot.objects.create(offering=offering, start=start, end=start + dt.timedelta(hours=4), capacity=capacity)

    tokens: list[str] = []
    person_ids: list[int] = []
    seed = int(run, 16)
    for first in range(0, users, batch):
        count = min(batch, users - first)
        phones = [f"139{(seed + first + i) % 100_000_000:08d}" for i in range(count)]
        with transaction.atomic():
            accounts = users_for_phones(phones)
            tokens += issue_tokens(accounts)
            people = [visitor(account, first + offset, seed) for offset, account in enumerate(accounts)]
            made = Person.objects.bulk_create(people)
            if connection.vendor == "mysql" or made[0].pk is None:  # MySQL returns no ids from bulk_create
                by_owner = dict(Person.objects.filter(owner__in=accounts).values_list("owner_id", "pk"))
                person_ids += [by_owner[a.pk] for a in accounts]
            else:
                person_ids += [p.pk for p in made]
    return Scenario(merchant.pk, offering.pk, slot.pk, capacity, tokens, person_ids, day.isoformat())


@dataclass
class Check:
    confirmed: int
    active_bookings: int
    active_seats: int
    reserved: int
    oversold: int
    duplicates: int
    cancelled: int

    @property
    def reserved_ok(self) -> bool:
        return self.reserved == self.active_seats


def check_database(scenario: Scenario) -> Check:
    """What the database says, whatever the answers said."""
    from django.db.models import Count, Sum

    from yuyue.booking.models import ACTIVE_STATUSES, Booking
    from yuyue.booking.models import Status as BookingStatus
    from yuyue.scheduling.models import Slot

    slot = Slot.objects.get(pk=scenario.slot_id)
    on_slot = Booking.objects.filter(slot_id=scenario.slot_id)
    active = on_slot.filter(status__in=ACTIVE_STATUSES)
    seats = active.aggregate(n=Sum("seats"))["n"] or 0
    duplicates = sum(
        row["n"] - 1 for row in active.values("user_id").annotate(n=Count("id")).filter(n__gt=1).values("n")
    )
    return Check(
        confirmed=on_slot.filter(status=BookingStatus.CONFIRMED).count(),
        active_bookings=active.count(),
        active_seats=seats,
        reserved=slot.reserved,
        oversold=max(0, seats - slot.capacity, slot.reserved - slot.capacity),
        duplicates=duplicates,
        cancelled=on_slot.filter(status=BookingStatus.CANCELLED).count(),
    )


def notifications_state(merchant_id: int) -> Counter[str]:
    """The run's booking confirmations in the outbox, by status (and `retried`: delivered only after
    more than one try, i.e. possibly twice)."""
    from yuyue.notify.events import EVENT_KIND
    from yuyue.notify.outbox import OutboxItem

    rows = OutboxItem.objects.filter(merchant_id=merchant_id, kind=EVENT_KIND, payload__event="confirmed")
    states: Counter[str] = Counter()
    for status, attempts in rows.values_list("status", "attempts"):
        states[status] += 1
        if status == "delivered" and attempts > 1:
            states["retried"] += 1
    return states


# --- server processes ---------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class Cluster:
    """The processes of a run: app servers (each `yuyue serve`) and Celery workers."""

    root: Path
    env: dict[str, str]
    servers: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def _spawn(self, name: str, command: list[str], home: Path) -> Proc:
        home.mkdir(parents=True, exist_ok=True)
        log = self.root / f"{name}.log"
        env = {**self.env, "YUYUE_HOME": str(home)}
        with log.open("wb") as out:
            popen = subprocess.Popen(
                command, env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return Proc(name, popen, log)

    def start_servers(self, count: int, workers: int, threads: int = 0) -> None:
        for port in free_ports(count):
            command = [sys.executable, "-m", "yuyue.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
            command += ["--workers", str(workers)]
            if threads:
                command += ["--threads", str(threads)]
            self.servers.append(self._spawn(f"server-{port}", command, self.root / f"server-{port}"))
            self.urls.append(f"http://127.0.0.1:{port}")

    def start_workers(self, count: int, concurrency: int = 1) -> None:
        """`yuyue worker` (which also runs the beat scheduler) once, plain Celery workers for the rest:
        exactly one beat, however many workers."""
        for i in range(count):
            home = self.root / f"worker-{i}"
            if i == 0:
                command = [sys.executable, "-m", "yuyue.cli", "worker", "--concurrency", str(concurrency)]
            else:
                command = [sys.executable, "-m", "celery", "-A", "yuyue.tasks", "worker", "--loglevel", "info"]
                command += ["--concurrency", str(concurrency), "-n", f"rush{i}@%h"]
            self.workers.append(self._spawn(f"worker-{i}", command, home))

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        for proc, url in zip(self.servers, self.urls, strict=True):
            while True:
                if proc.popen.poll() is not None:
                    raise RuntimeError(
                        f"{proc.name} exited ({proc.popen.returncode}); see {proc.log}:\n" + tail(proc.log)
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{proc.name} not ready after {timeout:.0f}s:\n" + tail(proc.log))
                time.sleep(0.3)

    def server_cpu_seconds(self) -> float:
        return sum(tree_cpu_seconds(p.popen.pid) for p in self.servers)

    def stop(self) -> None:
        procs = self.servers + self.workers
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 25
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)  # stragglers of the group, if any
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(5)


def tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants (the server and its workers), from /proc."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            raw = Path(f"/proc/{entry}/stat").read_text()
            fields = raw[raw.rindex(")") + 2 :].split()
            stats[int(entry)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry))
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            total += (int(stats[current][11]) + int(stats[current][12])) / tick  # utime, stime
        todo += children.get(current, [])
    return total


def counted_queries(folder: Path) -> int:
    total = 0
    for path in folder.glob("*"):
        if path.suffix != ".tmp":
            with contextlib.suppress(OSError, ValueError):
                total += int(path.read_text())
    return total


# --- the load -----------------------------------------------------------------------------------


def plan_operations(users: int, mixed: bool, seed: int = 8) -> list[list[Any]]:
    """Each user books once; with `mixed`, browses (80%) and cancels (5%) are shuffled in."""
    rng = random.Random(seed)
    ops: list[list[Any]] = [["book", i] for i in range(users)]
    if mixed:
        total = round(users / (1 - BROWSE_SHARE - CANCEL_SHARE))
        ops += [["browse", rng.randrange(users)] for _ in range(round(total * BROWSE_SHARE))]
        ops += [["cancel", 0] for _ in range(round(total * CANCEL_SHARE))]
    rng.shuffle(ops)
    return ops


class Connection:
    """One keep-alive HTTP/1.1 connection, as lean as it gets: the load generator shares the cores
    with the servers it measures, so it must not spend milliseconds of Python per request."""

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port or 80)
        self.host_header = f"Host: {host}:{self.port}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\n{self.host_header}{headers}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        try:
            self.writer.write(head.encode() + b"\r\n" + (body or b""))
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                fields[name.lower()] = value.strip()
            if "content-length" in fields:
                content = await self.reader.readexactly(int(fields["content-length"]))
            elif fields.get("transfer-encoding", "").lower() == "chunked":
                content = b""
                while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    content += (await self.reader.readexactly(size + 2))[:-2]
                await self.reader.readuntil(b"\r\n")
            else:
                content = await self.reader.read()
                fields["connection"] = "close"
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
            self.close()
            raise
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, content

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


TRANSPORT_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError)


async def _load(spec: dict[str, Any], control: Any) -> dict[str, Any]:
    urls: list[str] = spec["urls"]
    concurrency: int = spec["concurrency"]
    tokens: list[str] = spec["tokens"]
    people: list[int] = spec["person_ids"]
    # One connection per concurrent client, the clients spread round-robin over the servers.
    connections = [Connection(urls[i % len(urls)]) for i in range(concurrency)]
    # Open every connection before the start: the rush measures answers, not TCP handshakes.
    await asyncio.gather(*(c.request("GET", "/api/v1/health", "") for c in connections))

    queue: deque[list[Any]] = deque(spec["ops"])
    made: deque[tuple[int, str]] = deque()  # bookings of the run that a cancel may take back
    turned_away: deque[int] = deque()  # users answered slot_full: they try again when a seat frees
    records: list[tuple[str, int, str, float, float]] = []  # kind, status, code, ms, end offset
    retries: Counter[str] = Counter()
    slots_path = f"/api/v1/offerings/{spec['offering_id']}/slots?date_from={spec['day']}&date_to={spec['day']}"
    detail_path = f"/api/v1/offerings/{spec['offering_id']}"

    async def one(conn: Connection, op: list[Any]) -> None:
        kind = op[0]
        if kind == "cancel":
            if not made:
                if op[1] < 20:  # nothing to cancel yet: come back later
                    queue.append(["cancel", op[1] + 1])
                return
            user, code = made.popleft()
        else:
            user = op[1]
        auth = f"Authorization: Bearer {tokens[user]}\r\n"
        if kind == "book":
            # The same Idempotency-Key on a retry: the server answers the booking it made, if any.
            method, path = "POST", "/api/v1/bookings"
            headers = f"{auth}Idempotency-Key: {uuid.uuid4().hex}\r\n"
            body: bytes | None = json.dumps({"slot_id": spec["slot_id"], "people": [people[user]]}).encode()
        elif kind == "cancel":
            method, path, headers, body = "POST", f"/api/v1/bookings/{code}/cancel", auth, b'{"reason": "plans"}'
        else:
            method, path, headers, body = "GET", detail_path if user % 4 == 0 else slots_path, auth, None
        began = time.perf_counter()
        status, content, error = 0, b"", ""
        for _attempt in range(TRANSPORT_RETRIES + 1):
            try:
                status, content = await conn.request(method, path, headers, body)
                error = ""
                break
            except TRANSPORT_ERRORS as exc:
                # A keep-alive connection the server closed just as it was reused: clients retry.
                status, error = 0, type(exc).__name__
                retries[error] += 1
        ended = time.perf_counter()
        answer: Any = None
        if status >= 400 or (kind == "book" and status in (200, 201)):
            with contextlib.suppress(ValueError):
                answer = json.loads(content)
        if status >= 400:
            with contextlib.suppress(KeyError, TypeError):
                error = answer["error"]["code"]
        records.append((kind, status, error, (ended - began) * 1000, ended - start))
        if kind == "book" and status in (200, 201):  # 200: a retry answered with the booking made
            made.append((user, answer["code"]))
        elif kind == "book" and error == "slot_full" and spec["mixed"]:
            turned_away.append(user)
        elif kind == "cancel" and status == 200 and turned_away:
            queue.appendleft(["book", turned_away.popleft()])

    async def client_loop(conn: Connection) -> None:
        await released.wait()
        while queue:
            await one(conn, queue.popleft())
        conn.close()

    released = asyncio.Event()
    loops = [asyncio.create_task(client_loop(c)) for c in connections]
    await asyncio.sleep(0.05)  # every client is waiting at the barrier
    # Quickly: servers close keep-alive connections left idle (the clients would reconnect).
    control("ready")
    cpu_before = time.process_time()
    start = time.perf_counter()
    released.set()
    await asyncio.gather(*loops)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_before
    return {"wall": wall, "records": records, "load_cpu_s": cpu, "retries": dict(retries)}


def load_main(spec_path: str, out_path: str) -> int:
    """The load process: waits for `go` on stdin after saying `ready`, writes its records as JSON."""
    spec = json.loads(Path(spec_path).read_text())

    def control(message: str) -> None:
        print(message, flush=True)
        if sys.stdin.readline().strip() != "go":
            raise SystemExit(1)

    result = asyncio.run(_load(spec, control))
    Path(out_path).write_text(json.dumps(result))
    return 0


def fire(
    cluster: Cluster, scenario: Scenario, *, concurrency: int, mixed: bool, query_dir: Path | None
) -> dict[str, Any]:
    """Runs the load process against the cluster; returns its records plus server-side counters."""
    spec = {
        "urls": cluster.urls,
        "concurrency": concurrency,
        "tokens": scenario.tokens,
        "person_ids": scenario.person_ids,
        "slot_id": scenario.slot_id,
        "offering_id": scenario.offering_id,
        "day": scenario.day,
        "mixed": mixed,
        "ops": plan_operations(len(scenario.tokens), mixed),
    }
    spec_path, out_path = cluster.root / "load-spec.json", cluster.root / "load-result.json"
    spec_path.write_text(json.dumps(spec))
    load = subprocess.Popen(
        [sys.executable, str(HERE), "--load", str(spec_path), str(out_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert load.stdin is not None and load.stdout is not None
        if load.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the load process failed before the start (status {load.wait()})")
        time.sleep(0.3 if query_dir else 0)  # the warm-up's statements are flushed before the count
        cpu_before = cluster.server_cpu_seconds()
        queries_before = counted_queries(query_dir) if query_dir else 0
        load.stdin.write("go\n")
        load.stdin.flush()
        if load.wait() != 0:
            raise RuntimeError(f"the load process failed (status {load.returncode})")
        cpu_after = cluster.server_cpu_seconds()
        if query_dir:
            time.sleep(0.6)  # the servers flush their counts a few times a second
        queries_after = counted_queries(query_dir) if query_dir else 0
    finally:
        if load.poll() is None:
            os.killpg(load.pid, signal.SIGKILL)
            load.wait()
    result = json.loads(out_path.read_text())
    result["server_cpu_s"] = cpu_after - cpu_before
    result["queries"] = queries_after - queries_before if query_dir else None
    return result


# --- the report ---------------------------------------------------------------------------------


def summarize(load: dict[str, Any], check: Check, *, capacity: int, users: int, mixed: bool) -> dict[str, Any]:
    records = load["records"]
    books = [r for r in records if r[0] == "book"]
    browses = [r for r in records if r[0] == "browse"]
    cancels = [r for r in records if r[0] == "cancel"]
    statuses = Counter(str(r[1]) for r in records)
    successes = [r for r in books if r[1] in (200, 201)]
    sold_out = [r for r in books if r[2] == "slot_full"]
    other = Counter(
        f"{r[0]}:{r[1]}:{r[2]}"
        for r in records
        if 0 < r[1] < 500 and r[1] not in (200, 201) and not (r[0] == "book" and r[2] == "slot_full")
    )
    last_success = max((r[4] for r in successes), default=0.0)
    booking_ms = [r[3] for r in books]
    out: dict[str, Any] = {
        "attempts": len(books),
        "confirmed": check.confirmed,
        "oversold": check.oversold,
        "duplicates": check.duplicates,
        "reserved": check.reserved,
        "active_seats": check.active_seats,
        "reserved_matches": check.reserved_ok,
        "http_successes": len(successes),
        "errors_5xx": sum(1 for r in records if r[1] >= 500),
        "errors_transport": sum(1 for r in records if r[1] == 0),
        "errors_other": sum(other.values()),
        "errors_other_by_status": dict(other),
        "statuses": dict(statuses),
        "requests": len(records),
        "wall_s": load["wall"],
        "throughput_rps": len(records) / load["wall"] if load["wall"] else None,
        "bookings_per_s": len(successes) / last_success if last_success else None,
        "p50_ms": pct(booking_ms, 0.50),
        "p95_ms": pct(booking_ms, 0.95),
        "p99_ms": pct(booking_ms, 0.99),
        "max_ms": max(booking_ms, default=None),
        "mean_ms": statistics.fmean(booking_ms) if booking_ms else None,
        "soldout_p50_ms": pct([r[3] for r in sold_out], 0.50),
        "soldout_p95_ms": pct([r[3] for r in sold_out], 0.95),
        "soldout_p99_ms": pct([r[3] for r in sold_out], 0.99),
        "success_p50_ms": pct([r[3] for r in successes], 0.50),
        "success_p99_ms": pct([r[3] for r in successes], 0.99),
    }
    if mixed:
        out |= {
            "browses": len(browses),
            "browse_p50_ms": pct([r[3] for r in browses], 0.50),
            "browse_p95_ms": pct([r[3] for r in browses], 0.95),
            "browse_p99_ms": pct([r[3] for r in browses], 0.99),
            "cancel_requests": len(cancels),
            "cancelled": check.cancelled,
            "cancel_p99_ms": pct([r[3] for r in cancels], 0.99),
        }
    if load.get("queries") is not None and records:
        # Mixed runs count browsing and cancels too: only the per-request figure means something there.
        out["queries_per_request" if mixed else "queries_per_booking"] = load["queries"] / len(records)
    out["cpu_ms_per_request"] = load["server_cpu_s"] * 1000 / len(records) if records else None
    out["load_cpu_ms_per_request"] = load["load_cpu_s"] * 1000 / len(records) if records else None
    out["transport_retries"] = load["retries"]

    # Correctness: the database is the judge. Every 201 is a confirmed booking (less those
    # cancelled in the run), the slot is exactly full when demand allows, nothing over capacity.
    demand = users - check.cancelled
    problems = []
    if check.oversold:
        problems.append("oversold")
    if check.duplicates:
        problems.append("duplicates")
    if out["errors_5xx"] or out["errors_transport"]:
        problems.append("server errors")
    if not check.reserved_ok:
        problems.append("slot.reserved differs from the active seats")
    if check.active_bookings != len(successes) - check.cancelled:
        problems.append("201 answers differ from the active bookings in the database")
    if demand >= capacity and check.confirmed < capacity:
        problems.append("seats left unsold")
    out["problems"] = problems
    return out


def print_report(values: dict[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, dict):
            value = json.dumps(value, sort_keys=True) if value else "{}"
        elif isinstance(value, list):
            value = "; ".join(value) if value else "none"
        print(f"{name}: {fmt(value)}")


# --- main ---------------------------------------------------------------------------------------


def rate_limits(env: dict[str, str], booking_user: str) -> dict[str, str]:
    """The limits the servers run with: per-user booking as given, every per-address limit lifted."""
    from django.conf import settings

    limits = {}
    for name in sorted(n for n in dir(settings) if n.startswith("RATE_")):
        value = getattr(settings, name)
        if not isinstance(value, str) or not re.fullmatch(r"[0-9/,\s]+|on|off", value):
            continue  # not a limit (e.g. a list of the limit settings)
        if name.endswith("_IP") and value not in ("on", "off"):
            value = IP_LIMIT_FOR_RUN
        elif name == "RATE_BOOKING_USER":
            value = booking_user
        limits[f"YUYUE_{name}"] = value
    env.update(limits)
    return limits


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "mariadb"], default="sqlite")
    parser.add_argument("--db-name", default=DEFAULT_DB_NAME, help="scratch database, dropped and created")
    parser.add_argument("--capacity", type=int, default=1000)
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument(
        "--redis", default=DEFAULT_REDIS, help=f"scratch Redis database, flushed (default {DEFAULT_REDIS})"
    )
    parser.add_argument("--no-redis", action="store_true", help="run without Redis")
    parser.add_argument("--no-gate", action="store_true", help="Redis for rate limits only, no booking gate")
    parser.add_argument("--workers", type=int, default=0, help="worker processes per server (default: by cores)")
    parser.add_argument("--threads", type=int, default=0, help="threads per worker process (default: yuyue serve's)")
    parser.add_argument("--servers", type=int, default=1, help="app server processes on consecutive ports")
    parser.add_argument("--celery-workers", type=int, default=0, help="Celery worker processes (needs a broker)")
    parser.add_argument("--broker", default=DEFAULT_BROKER, help="broker for --celery-workers (RabbitMQ or Redis)")
    parser.add_argument("--mixed", action="store_true", help="80%% browsing, 5%% cancels besides the bookings")
    parser.add_argument(
        "--pgbench", action=argparse.BooleanOptionalAction, default=None, help="default: on for postgres"
    )
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--rate-booking-user", default=DEFAULT_BOOKING_USER_LIMIT)
    parser.add_argument("--keep", action="store_true", help="keep the database and the server home afterwards")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.db == "sqlite" and args.servers > 1:
        parser.error("SQLite is one file on one machine: use --servers 1")
    if args.pgbench and args.db != "postgres":
        parser.error("--pgbench measures PostgreSQL")
    if args.pgbench is None:
        args.pgbench = args.db == "postgres"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="yuyue-rush-"))
    env = {
        "YUYUE_HOME": str(root),
        "YUYUE_DATABASE_URL": database_url(args.db, args.db_name, root),
        "YUYUE_REDIS_URL": "" if args.no_redis else args.redis,
        "YUYUE_BROKER_URL": args.broker if args.celery_workers else "",
        "YUYUE_SECRET_KEY": uuid.uuid4().hex * 2,  # shared by every process of the run
        "YUYUE_COUNT_QUERIES": str(root / "queries"),
        "YUYUE_LOG_LEVEL": "WARNING",
        "YUYUE_BOOKING_GATE": "off" if args.no_gate else "on",
        "YUYUE_WAITING_ROOM": "",  # the rush measures the booking path, not the queue in front of it
        "YUYUE_NOTIFY_QUIET_HOURS": "",  # confirmations go out whatever the time of day
        "DJANGO_SETTINGS_MODULE": "yuyue.settings",
    }
    cluster = Cluster(root, env)

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        recreate_database(args.db, args.db_name)
        if not args.no_redis:
            flush_redis(args.redis)
        pgbench_tps = run_pgbench(args.db_name, args.pgbench_seconds, 32, root) if args.pgbench else None

        setup_django(env)
        from django.core.management import call_command
        from django.db import connections

        limits = rate_limits(env, args.rate_booking_user)
        cluster.env = {**os.environ, **env}
        call_command("migrate", interactive=False, verbosity=0)
        began = time.monotonic()
        scenario = create_scenario(args.capacity, args.users)
        prepared = time.monotonic() - began
        connections.close_all()

        workers = args.workers or default_server_workers()
        cluster.start_servers(args.servers, workers, args.threads)
        cluster.start_workers(args.celery_workers)
        cluster.wait_ready()
        load = fire(cluster, scenario, concurrency=args.concurrency, mixed=args.mixed, query_dir=root / "queries")
        check = check_database(scenario)
        values = summarize(load, check, capacity=args.capacity, users=args.users, mixed=args.mixed)
        if args.celery_workers:
            values["notifications"] = dict(wait_for_notifications(scenario.merchant_id, 60))
        connections.close_all()

        values = {
            "db": args.db,
            "cores": cores(),
            "servers": args.servers,
            "server_workers": f"{workers} x {args.threads or 'default'} threads",
            "celery_workers": args.celery_workers,
            "redis": "off" if args.no_redis else args.redis,
            "booking_gate": "off" if args.no_redis or args.no_gate else "on",
            "concurrency": args.concurrency,
            "users": args.users,
            "capacity": args.capacity,
            **{f"rate_{k.removeprefix('YUYUE_RATE_').lower()}": v for k, v in limits.items()},
            "setup_s": prepared,
            **values,
        }
        if pgbench_tps is not None:
            values["pgbench_tps"] = pgbench_tps
            values["db_limit_ratio"] = (values["bookings_per_s"] or 0) / pgbench_tps if pgbench_tps else None
        problems = values.pop("problems")
        values["problems"] = problems
        print_report(values)
        if args.json:
            Path(args.json).write_text(json.dumps(values, indent=2, default=str))
        return 1 if problems else 0
    except KeyboardInterrupt:
        print("rush: interrupted", file=sys.stderr)
        return 130
    finally:
        cluster.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if not args.keep:
            drop_database(args.db, args.db_name)
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept: {root} and database {args.db_name}", file=sys.stderr)


def wait_for_notifications(merchant_id: int, timeout: float) -> Counter[str]:
    """Until the workers have worked off the run's outbox (or the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        states = notifications_state(merchant_id)
        if not (states["pending"] + states["sending"] + states["failed"]) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--load":
        sys.exit(load_main(sys.argv[2], sys.argv[3]))
    sys.exit(main())
