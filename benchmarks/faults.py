"""Fault runs for the holiday rush: nothing lost, nothing counted twice, whatever breaks.

    YUYUE_DATABASE_URL=postgres://… python benchmarks/faults.py [--only db,redis,worker,notify,restart]

Five faults, each against real processes, each ending with a reconciliation of the answers the
clients got with what the database holds:

- ``db``: bookings from threads while another thread kills their database connections again and
  again (``pg_terminate_backend`` on PostgreSQL, ``KILL`` on MariaDB); clients retry with the same
  Idempotency-Key.
- ``redis``: a rush through ``yuyue serve`` with ``YUYUE_REDIS_URL`` pointing at a redis-server of
  our own, stopped and started again mid-rush (rate limits and the rush gate must fall back to
  the database and recover).
- ``worker``: ``yuyue worker`` (Celery, with a redis-server of our own as broker) killed with
  SIGKILL while it delivers a batch of webhooks to a recording HTTP server; a second worker
  finishes after the lease ends.
- ``notify``: the same signed sandbox payment notification posted 50 times at once to the
  server's callback URL.
- ``restart``: a rush through ``yuyue serve`` whose server is stopped gracefully (SIGTERM) and
  then killed (SIGKILL of the whole process group) mid-rush, and started again each time.

A booking counts as made only if it is whole: booking row, attendees, its ``book`` event, the
ledger entry of that event and its outbox row. Every booking answer (201/200) must be a booking in
the database, every booking in the database the answer its client got (possibly after retries
of the same key), and a replay of every key afterwards must return the same booking.

Prints each fault's figures as ``name: value`` lines and PASS/FAIL; exits 1 if one failed.
Uses the configured database (SQLite in the working directory by default): give it a scratch
database, it leaves its rows for inspection. The ``db`` fault needs PostgreSQL or MariaDB;
``redis`` and ``worker`` need redis-server on the PATH. The tests in tests/faults run the same
functions at a smaller scale.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def rush_visitor(account: Any, i: int, seed: int) -> Any:
    """The rush benchmark's visitor (one generator of test IDs for both scripts)."""
    import importlib.util

    module = sys.modules.get("yuyue_rush_benchmark")
    if module is None:
        spec = importlib.util.spec_from_file_location("yuyue_rush_benchmark", ROOT / "benchmarks" / "rush.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module.visitor(account, i, seed)


SRC = ROOT / "src"
TESTS = ROOT / "tests"

# Booking answers that end a client's request; anything else (no answer, 5xx) is retried.
FINAL_STATUSES = {200, 201, 400, 401, 403, 404, 409, 422}


# --- results -------------------------------------------------------------------------------------


@dataclass
class Report:
    """One fault run: its figures (printed as ``name: value``) and what did not reconcile."""

    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def check(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)

    def lines(self) -> list[str]:
        out = [f"[{self.name}]"]
        out += [f"{name}: {value}" for name, value in self.figures.items()]
        out += [f"problem: {p}" for p in self.problems]
        out.append(f"result: {'PASS' if self.ok else 'FAIL'}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


# --- the world: one hot slot and its visitors ----------------------------------------------------


@dataclass(frozen=True)
class Visitor:
    user_id: int
    person_id: int
    token: str


@dataclass
class World:
    merchant_id: int
    offering_id: int
    slot_id: int
    capacity: int
    visitors: list[Visitor]


def make_world(*, capacity: int, users: int, price_fen: int = 0, policy: dict[str, Any] | None = None) -> World:
    """A scenic spot with one slot of ``capacity`` seats, and ``users`` accounts with one real-name
    visitor and one API token each (created in bulk, like the rush benchmark)."""
    from yuyue.accounts.models import Person
    from yuyue.accounts.services import issue_tokens, users_for_phones
    from yuyue.catalog.models import Offering
    from yuyue.core import timeutil
    from yuyue.scheduling.models import Slot
    from yuyue.tenants.models import Merchant

    run = uuid.uuid4().hex[:8]
    merchant = Merchant.objects.create(name=f"故障演练 {run}", slug=f"faults-{run}")
    fields: dict[str, Any] = {"price_fen": price_fen}
    if policy:
        fields["policy_overrides"] = policy
    offering = Offering.objects.create(merchant=merchant, kind="scenic", title="国庆早场", **fields)
    start = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=2), dt.time(8))
    slot = Slot.objects.create(offering=offering, start=start, end=start + dt.timedelta(hours=4), capacity=capacity)

    base = random.randrange(10**8 - users)
    phones = [f"13{random.randrange(10)}{base + i:08d}" for i in range(users)]
    accounts = users_for_phones(phones)
    seed = random.randrange(1000)
    people = [rush_visitor(account, i, seed) for i, account in enumerate(accounts)]
    Person.objects.bulk_create(people, batch_size=500)
    # MySQL returns no ids from bulk_create: read them back (one person per account here).
    by_owner = dict(Person.objects.filter(owner__in=accounts, name__startswith="游客").values_list("owner_id", "pk"))
    tokens = issue_tokens(accounts)
    visitors = [Visitor(a.pk, by_owner[a.pk], t) for a, t in zip(accounts, tokens, strict=True)]
    return World(merchant.pk, offering.pk, slot.pk, capacity, visitors)


# --- reconciliation ------------------------------------------------------------------------------


@dataclass
class Answer:
    """What one client finally got for its booking request (after its retries with the same key)."""

    visitor: Visitor
    key: str
    code: str | None = None  # the booking, when the answer was 201/200
    refusal: str = ""  # the error code of a final refusal ("slot_full" …), or "gave_up"
    tries: list[str] = field(default_factory=list)  # every try: HTTP status or exception name
    finished: float = 0.0  # time.monotonic() of the final answer

    @property
    def retried(self) -> bool:
        return len(self.tries) > 1


def reconcile(world: World, answers: list[Answer], report: Report, *, replay: Callable[[Answer], str | None]) -> None:
    """Check the database against the answers; ``replay(answer)`` sends the request again with the
    same key (no fault any more) and returns the booking code it gets, or None."""
    from django.db.models import Sum

    from yuyue.booking.models import ACTIVE_STATUSES, Attendee, Booking, BookingEvent, IdempotencyKey
    from yuyue.ledger.models import LedgerEntry
    from yuyue.notify.models import OutboxItem
    from yuyue.scheduling.models import Slot

    slot = Slot.objects.get(pk=world.slot_id)
    bookings = list(Booking.objects.filter(slot_id=world.slot_id).values("pk", "code", "user_id", "status", "seats"))
    active = [b for b in bookings if b["status"] in ACTIVE_STATUSES]
    seats = Booking.objects.filter(slot_id=world.slot_id, status__in=ACTIVE_STATUSES).aggregate(n=Sum("seats"))["n"]
    answered = {a.code for a in answers if a.code}
    by_user = Counter(b["user_id"] for b in active)
    gave_up = [a for a in answers if a.refusal == "gave_up"]

    report.figures.update(
        attempts=len(answers),
        confirmed=len(active),
        slot_reserved=slot.reserved,
        capacity=world.capacity,
        retried_requests=sum(a.retried for a in answers),
        tries=sum(len(a.tries) for a in answers),
        try_kinds=dict(Counter(t for a in answers for t in a.tries)),
        gave_up=len(gave_up),
        refusals=dict(Counter(a.refusal for a in answers if a.refusal)),
    )
    report.check(slot.reserved == (seats or 0), f"slot.reserved {slot.reserved} != active seats {seats or 0}")
    report.check(slot.reserved <= world.capacity, f"oversold: {slot.reserved} of {world.capacity}")
    report.check(not [u for u, n in by_user.items() if n > 1], "a user holds two active bookings")
    if not gave_up and len(world.visitors) >= world.capacity:
        report.check(len(active) == world.capacity, f"confirmed {len(active)}, capacity {world.capacity}")
    report.check(not gave_up, f"{len(gave_up)} requests never got an answer")

    in_db = {b["code"] for b in bookings}
    report.check(answered <= in_db, f"answered but not in the database: {sorted(answered - in_db)[:5]}")
    unanswered = in_db - answered
    report.check(not unanswered, f"in the database but answered otherwise: {sorted(unanswered)[:5]}")

    # Whole or nothing: each booking has its attendee, its event, the event's ledger entry, its outbox row.
    ids = [b["pk"] for b in bookings]
    attendees = Counter(Attendee.objects.filter(booking_id__in=ids).values_list("booking_id", flat=True))
    events = dict(BookingEvent.objects.filter(booking_id__in=ids, action="book").values_list("booking_id", "pk"))
    event_count = Counter(
        BookingEvent.objects.filter(booking_id__in=ids, action="book").values_list("booking_id", flat=True)
    )
    sealed = set(LedgerEntry.objects.filter(event_id__in=list(events.values())).values_list("event_id", flat=True))
    outboxed = set(OutboxItem.objects.filter(payload__booking_id__in=ids).values_list("payload__booking_id", flat=True))
    keys = Counter(IdempotencyKey.objects.filter(booking_id__in=ids).values_list("booking_id", flat=True))
    broken = [
        pk
        for pk in ids
        if attendees[pk] != 1
        or event_count[pk] != 1
        or events.get(pk) not in sealed
        or pk not in outboxed
        or keys[pk] != 1
    ]
    report.check(not broken, f"{len(broken)} bookings not whole (attendee, event, ledger, outbox, key): {broken[:5]}")

    # Idempotency: the same key again returns the same booking, and never makes a second one.
    mismatched = [a.key for a in answers if a.code and replay(a) != a.code]
    report.check(not mismatched, f"{len(mismatched)} keys replayed to another answer")
    after = Booking.objects.filter(slot_id=world.slot_id).count()
    report.check(after == len(bookings), f"replays created {after - len(bookings)} bookings")


def engine_replay(world: World) -> Callable[[Answer], str | None]:
    """Replay a key through the engine itself (in this process)."""
    from yuyue.accounts.models import EndUser
    from yuyue.booking import services
    from yuyue.core.errors import DomainError

    def replay(answer: Answer) -> str | None:
        user = EndUser.objects.get(pk=answer.visitor.user_id)
        try:
            return services.book(
                user=user, slot_id=world.slot_id, person_ids=[answer.visitor.person_id], idempotency_key=answer.key
            ).code
        except DomainError:
            return None

    return replay


def http_replay(base_url: str, world: World) -> Callable[[Answer], str | None]:
    import httpx

    def replay(answer: Answer) -> str | None:
        again = post_booking(httpx.Client(timeout=10), base_url, world, answer.visitor, key=answer.key, deadline=30)
        return again.code

    return replay


# --- fault 1: the database connection killed mid-rush -------------------------------------------


def _server_connection() -> Any:
    """A connection of our own to the same database, outside Django (the killer's)."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "postgresql":
        import psycopg

        return psycopg.connect(
            host=db["HOST"] or "127.0.0.1",
            port=int(db["PORT"] or 5432),
            user=db["USER"] or None,
            password=db["PASSWORD"] or None,
            dbname=db["NAME"],
            autocommit=True,
        )
    import MySQLdb

    conn = MySQLdb.connect(
        host=db["HOST"] or "127.0.0.1",
        port=int(db["PORT"] or 3306),
        user=db["USER"],
        passwd=db["PASSWORD"] or "",
        db=db["NAME"],
    )
    conn.autocommit(True)
    return conn


def _own_backend_id() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()" if connection.vendor == "postgresql" else "SELECT CONNECTION_ID()")
        return int(cursor.fetchone()[0])


def kill_connections(conn: Any, vendor: str, spare: set[int], share: float = 1.0) -> int:
    """Kill a ``share`` of the other connections to this database (never ``spare``); returns how many."""
    cursor = conn.cursor()
    if vendor == "postgresql":
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        victims = [pid for (pid,) in cursor.fetchall() if pid not in spare and random.random() < share]
        for pid in victims:
            cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return len(victims)
    cursor.execute("SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()")
    victims = [int(pid) for (pid,) in cursor.fetchall() if int(pid) not in spare and random.random() < share]
    killed = 0
    for pid in victims:
        try:
            cursor.execute(f"KILL {pid}")  # nosec B608 - an integer from the server itself
            killed += 1
        except Exception:  # already gone
            pass
    return killed


def fault_db_killed(
    *,
    capacity: int = 30,
    users: int = 60,
    threads: int = 8,
    interval: float = 0.5,
    share: float = 0.5,
    retry_seconds: float = 60,
) -> Report:
    """Fault 1: book from ``threads`` threads through the engine while another thread kills a
    ``share`` of their database connections every ``interval`` s (on average); clients retry a
    failed request with its key for up to ``retry_seconds``."""
    from django.db import DatabaseError, InterfaceError, connection

    from yuyue.accounts.models import EndUser
    from yuyue.booking import services
    from yuyue.core.errors import DomainError

    report = Report("db_connection_killed")
    vendor = connection.vendor
    if vendor not in {"postgresql", "mysql"}:
        report.figures["skipped"] = f"needs PostgreSQL or MariaDB, not {vendor}"
        return report
    world = make_world(capacity=capacity, users=users)
    spare = {_own_backend_id()}  # this thread's connection (the test's) stays
    answers = [Answer(v, key=f"fault-db-{uuid.uuid4().hex}") for v in world.visitors]
    todo = list(answers)
    lock = threading.Lock()
    stop = threading.Event()
    kills = Counter[str]()

    def client() -> None:
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    answer = todo.pop()
                deadline = time.monotonic() + retry_seconds
                while True:
                    try:
                        user = EndUser.objects.get(pk=answer.visitor.user_id)
                        booking = services.book(
                            user=user,
                            slot_id=world.slot_id,
                            person_ids=[answer.visitor.person_id],
                            idempotency_key=answer.key,
                        )
                        answer.tries.append("ok")
                        answer.code = booking.code
                        break
                    except DomainError as exc:
                        answer.tries.append(exc.code)
                        answer.refusal = exc.code
                        break
                    except (DatabaseError, InterfaceError) as exc:
                        # The connection died under us: a new one, and the same request again.
                        answer.tries.append(type(exc).__name__)
                        connection.close()
                        if time.monotonic() > deadline:
                            answer.refusal = "gave_up"
                            break
                        time.sleep(random.uniform(0.005, 0.03))
        finally:
            connection.close()

    def killer() -> None:
        conn = _server_connection()
        try:
            while not stop.is_set():
                kills["rounds"] += 1
                kills["connections"] += kill_connections(conn, vendor, spare, share)
                # Look often until the first kill, so even a short rush is hit; then every ~interval.
                stop.wait(0.02 if not kills["connections"] else random.uniform(interval / 2, interval * 1.5))
        finally:
            conn.close()

    began = time.perf_counter()
    killing = threading.Thread(target=killer, daemon=True)
    killing.start()
    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=180)
    stop.set()
    killing.join(timeout=10)
    report.figures.update(
        database=vendor,
        threads=threads,
        kill_interval_s=interval,
        kill_share=share,
        seconds=round(time.perf_counter() - began, 2),
        connections_killed=kills["connections"],
        kill_rounds=kills["rounds"],
        errors_seen=sum(1 for a in answers for t in a.tries if "Error" in t),
    )
    report.check(not any(w.is_alive() for w in workers), "a client hung")
    report.check(kills["connections"] > 0, "no connection was killed: the fault did not happen")
    reconcile(world, answers, report, replay=engine_replay(world))
    return report


# --- processes: redis-server, yuyue serve, yuyue worker ------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, timeout: float, up: bool = True) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return True
        except OSError:
            if not up:
                return True
        time.sleep(0.05)
    return False


class RedisServer:
    """A redis-server of our own on ``port``: nothing saved, so a restart starts empty."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> str | None:
        return None if shutil.which("redis-server") else "redis-server is not installed"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _wait_for_port(self.port, 10):
            raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def database_url() -> str:
    """The database Django uses here (in tests, the test database), for another process."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    scheme = "postgres" if connection.vendor == "postgresql" else "mysql"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"{scheme}://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or ''}/{db['NAME']}"


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment of a yuyue process on the same database with the same keys (phones and ID
    numbers are encrypted with them, sandbox notifications signed with them)."""
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "yuyue.settings",
        "YUYUE_DATABASE_URL": database_url(),
        "YUYUE_SECRET_KEY": settings.SECRET_KEY,
        "YUYUE_DATA_KEYS": ",".join(settings.DATA_KEYS),
        "YUYUE_INDEX_KEY": settings.INDEX_KEY,
        "YUYUE_HOME": str(home),
        "YUYUE_STATIC_ROOT": str(home / "static"),
        "YUYUE_LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    for name in ("YUYUE_BROKER_URL", "YUYUE_REDIS_URL"):
        env.pop(name, None)
    env.update(extra)
    return env


class Server:
    """``yuyue serve`` on a port of its own, in its own process group so a crash takes all of it."""

    def __init__(self, home: Path, *, workers: int = 2, static_root: Path | None = None, **env: str) -> None:
        self.home = home
        self.port = free_port()
        self.workers = workers
        self.env = child_env(home, **env)
        if static_root is not None:  # collected once, not at every start
            self.env["YUYUE_STATIC_ROOT"] = str(static_root)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "serve.log"
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> float:
        began = time.monotonic()
        command = [sys.executable, "-m", "yuyue.cli", "serve", "--port", str(self.port), "--workers", str(self.workers)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, env=self.env, stdout=log, stderr=log, start_new_session=True)
        self.starts += 1
        import httpx

        while time.monotonic() - began < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"yuyue serve exited with {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/api/v1/offerings?limit=1", timeout=2).status_code < 500:
                    return time.monotonic() - began
            time.sleep(0.1)
        raise RuntimeError(f"yuyue serve did not answer within {timeout} s:\n{self.tail()}")

    def terminate(self, timeout: float = 40) -> None:
        """SIGTERM to `yuyue serve`: the server finishes the requests under way, then exits."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout)
        _wait_for_port(self.port, 10, up=False)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL to every process of the server at once: a crash, requests cut mid-transaction."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        _wait_for_port(self.port, 10, up=False)
        self.proc = None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def server_env(redis_url: str = "") -> dict[str, str]:
    """Limits high enough for a load that comes from one address, still counted (in Redis or the
    database), and the sandbox payment provider on."""
    env = {
        "YUYUE_RATE_BOOKING_USER": "1000/60",
        "YUYUE_RATE_BOOKING_IP": "1000000/60",
        "YUYUE_PAYMENT_SANDBOX": "1",
    }
    if redis_url:
        env["YUYUE_REDIS_URL"] = redis_url
    return env


# --- HTTP load with idempotent retries -----------------------------------------------------------


def post_booking(http: Any, base_url: str, world: World, visitor: Visitor, *, key: str, deadline: float) -> Answer:
    """POST /bookings until a final answer: a lost connection, a timeout or a 5xx is retried with
    the same Idempotency-Key, for at most ``deadline`` seconds."""
    import httpx

    answer = Answer(visitor, key)
    ends = time.monotonic() + deadline
    pause = 0.05
    while True:
        try:
            response = http.post(
                f"{base_url}/api/v1/bookings",
                json={"slot_id": world.slot_id, "people": [visitor.person_id]},
                headers={"Authorization": f"Bearer {visitor.token}", "Idempotency-Key": key},
            )
            answer.tries.append(str(response.status_code))
            answer.finished = time.monotonic()
            if response.status_code in (200, 201):
                answer.code = response.json()["code"]
                return answer
            if response.status_code in FINAL_STATUSES:
                answer.refusal = response.json().get("error", {}).get("code", str(response.status_code))
                return answer
        except httpx.HTTPError as exc:
            answer.tries.append(type(exc).__name__)
        if time.monotonic() > ends:
            answer.refusal = "gave_up"
            return answer
        time.sleep(random.uniform(pause / 2, pause))
        pause = min(pause * 2, 1.0)


def rush(
    base_url: str,
    world: World,
    *,
    concurrency: int,
    deadline: float = 90,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[list[Answer], float]:
    """Every visitor books once from ``concurrency`` threads; ``on_progress(answered)`` is called
    by the thread that gets each answer (a fault is injected from there)."""
    import httpx

    answers: list[Answer] = []
    todo = list(world.visitors)
    random.shuffle(todo)
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=httpx.Timeout(15, connect=2)) as http:
            while True:
                with lock:
                    if not todo:
                        return
                    visitor = todo.pop()
                answer = post_booking(http, base_url, world, visitor, key=f"rush-{uuid.uuid4().hex}", deadline=deadline)
                with lock:
                    answers.append(answer)
                    done = len(answers)
                if on_progress is not None:
                    on_progress(done)

    began = time.perf_counter()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=deadline + 120)
    return answers, time.perf_counter() - began


def _once(action: Callable[[], None]) -> Callable[[], None]:
    """``action`` run by the first caller only, the others return at once (they keep loading)."""
    lock = threading.Lock()
    state = {"done": False}

    def run() -> None:
        with lock:
            if state["done"]:
                return
            state["done"] = True
        action()

    return run


def _count_5xx(answers: list[Answer]) -> int:
    return sum(1 for a in answers for t in a.tries if t.isdigit() and int(t) >= 500)


# --- fault 2: Redis stopped and restarted mid-rush -----------------------------------------------


@contextlib.contextmanager
def redis_backed_server(home: Path, *, port: int = 0, workers: int = 2, static_root: Path | None = None) -> Any:
    """A redis-server of our own and ``yuyue serve`` using it (rate limits, rush gate, cache)."""
    with (
        RedisServer(port or free_port()) as redis_server,
        Server(home, workers=workers, static_root=static_root, **server_env(redis_server.url)) as server,
    ):
        yield server, redis_server


def fault_redis_restart(
    home: Path,
    *,
    capacity: int = 40,
    users: int = 80,
    concurrency: int = 8,
    down_seconds: float = 1.5,
    port: int = 0,
    served: tuple[Server, RedisServer] | None = None,
) -> Report:
    """Fault 2: a rush through the server; Redis is stopped when a quarter of the answers are in
    and started again (empty) ``down_seconds`` later. ``served``: a running redis_backed_server."""
    report = Report("redis_restarted")
    missing = RedisServer.available()
    if missing:
        report.figures["skipped"] = missing
        return report
    with contextlib.ExitStack() as stack:
        if served is None:
            served = stack.enter_context(redis_backed_server(home, port=port))
        server, redis_server = served
        world = make_world(capacity=capacity, users=users)
        events: list[str] = []
        down: list[float] = []

        def outage() -> None:
            redis_server.stop()
            events.append("stopped")
            down.append(time.monotonic())
            time.sleep(down_seconds)
            down.append(time.monotonic())
            redis_server.start()
            events.append("started")

        trigger = _once(outage)
        answers, seconds = rush(
            server.url, world, concurrency=concurrency, on_progress=lambda n: n >= users // 4 and trigger()
        )
        report.figures.update(
            seconds=round(seconds, 2),
            redis_outage=" then ".join(events) or "none",
            redis_down_seconds=down_seconds,
            answers_while_down=sum(1 for a in answers if len(down) == 2 and down[0] <= a.finished <= down[1]),
            errors_5xx=_count_5xx(answers),
        )
        report.check(events == ["stopped", "started"], "Redis was not stopped and started during the rush")
        report.check(
            report.figures["errors_5xx"] == 0, f"{report.figures['errors_5xx']} answers were 5xx\n{server.tail()}"
        )
        reconcile(world, answers, report, replay=http_replay(server.url, world))
        # After the outage the server counts in Redis again (rate-limit windows, the gate).
        import redis

        report.figures["redis_keys_after"] = redis.Redis.from_url(redis_server.url).dbsize()
        report.check(report.figures["redis_keys_after"] > 0, "the server did not use Redis again after its restart")
    return report


# --- fault 5: the server restarted under load ----------------------------------------------------


def fault_server_restart(
    home: Path,
    *,
    capacity: int = 40,
    users: int = 90,
    concurrency: int = 8,
    workers: int = 2,
    static_root: Path | None = None,
    server: Server | None = None,
) -> Report:
    """Fault 5: a rush through the server, which is stopped gracefully (SIGTERM) when a quarter
    of the answers are in and killed (SIGKILL, every process) at half; restarted each time.
    ``server``: a running one to use (it is left running, restarted twice)."""
    report = Report("server_restarted")
    world = make_world(capacity=capacity, users=users)
    stack = contextlib.ExitStack()
    if server is None:
        server = stack.enter_context(Server(home, workers=workers, static_root=static_root, **server_env()))
    starts = server.starts
    downtime: dict[str, float] = {}

    def restart(graceful: bool) -> Callable[[], None]:
        def run() -> None:
            began = time.monotonic()
            server.terminate() if graceful else server.kill()
            server.start()
            downtime["sigterm" if graceful else "sigkill"] = round(time.monotonic() - began, 2)

        return run

    graceful, crash = _once(restart(True)), _once(restart(False))

    def progress(answered: int) -> None:
        if answered >= users // 4:
            graceful()
        if answered >= users // 2:
            crash()

    with stack:
        # Clients wait out the restarts (a slow machine needs long for a start).
        answers, seconds = rush(server.url, world, concurrency=concurrency, on_progress=progress, deadline=180)
        report.figures.update(
            seconds=round(seconds, 2),
            restarts=server.starts - starts,
            downtime_s=downtime,
            errors_5xx=_count_5xx(answers),
            connection_errors=sum(1 for a in answers for t in a.tries if not t.isdigit()),
        )
        report.check(server.starts - starts == 2, f"the server restarted {server.starts - starts} times, not 2")
        reconcile(world, answers, report, replay=http_replay(server.url, world))
    return report


# --- fault 4: one payment notification replayed 50 times at once ---------------------------------


def fault_notify_replay(home: Path, *, copies: int = 50, server: Server | None = None) -> Report:
    """Fault 4: the sandbox's signed notification of one payment, ``copies`` times at once,
    through the server's callback URL. ``server``: a running one (it needs the sandbox on)."""
    import httpx

    from yuyue.booking import services as engine
    from yuyue.booking.models import Booking, BookingEvent, Status
    from yuyue.ledger.models import LedgerEntry
    from yuyue.payments import services as payments
    from yuyue.payments.models import NoticeOutcome, Payment, PaymentNotice
    from yuyue.payments.providers.sandbox import SandboxProvider

    report = Report("payment_notify_replayed")
    world = make_world(capacity=5, users=1, price_fen=8800, policy={"payment": "online", "hold_minutes": 15})
    from yuyue.accounts.models import EndUser

    visitor = world.visitors[0]
    user = EndUser.objects.get(pk=visitor.user_id)
    booking = engine.book(user=user, slot_id=world.slot_id, person_ids=[visitor.person_id])
    sandbox = SandboxProvider()
    payment = payments.start_payment(booking=booking, provider_name="sandbox").payment
    headers, body = sandbox.notification(sandbox.pay(payment.out_trade_no))

    with contextlib.ExitStack() as stack:
        if server is None:
            server = stack.enter_context(Server(home, **server_env()))
        barrier = threading.Barrier(copies)
        statuses: list[tuple[int, str]] = []

        def send() -> None:
            with httpx.Client(timeout=30) as http:
                barrier.wait(timeout=30)
                try:
                    r = http.post(f"{server.url}/api/v1/payments/sandbox/notify", content=body, headers=headers)
                    statuses.append((r.status_code, r.text.strip()))
                except httpx.HTTPError as exc:
                    statuses.append((0, type(exc).__name__))

        began = time.perf_counter()
        threads = [threading.Thread(target=send, daemon=True) for _ in range(copies)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=90)
        seconds = time.perf_counter() - began
        server_log = server.tail()

    booking = Booking.objects.get(pk=booking.pk)
    confirms = list(BookingEvent.objects.filter(booking=booking, action="confirm").values_list("pk", flat=True))
    outcomes = Counter(PaymentNotice.objects.filter(payment__booking=booking).values_list("outcome", flat=True))
    answers = Counter(statuses)
    report.figures.update(
        copies=copies,
        seconds=round(seconds, 2),
        answers=dict(answers),
        booking_status=booking.status,
        confirm_events=len(confirms),
        ledger_entries=LedgerEntry.objects.filter(event_id__in=confirms).count(),
        notices=dict(outcomes),
    )
    ok_answer = sandbox.answer(True)
    report.check(
        answers == {(ok_answer.status, ok_answer.body.decode().strip()): copies},
        f"not every copy was answered success: {dict(answers)}\n{server_log}",
    )
    report.check(
        booking.status == Status.CONFIRMED and booking.paid_fen == 8800, "the booking is not confirmed and paid"
    )
    report.check(len(confirms) == 1, f"{len(confirms)} confirmations")
    report.check(report.figures["ledger_entries"] == 1, "not exactly one ledger entry for the confirmation")
    report.check(
        outcomes == {NoticeOutcome.APPLIED: 1, NoticeOutcome.DUPLICATE: copies - 1},
        f"notice outcomes {dict(outcomes)}",
    )
    report.check(Payment.objects.filter(booking=booking, state="paid").count() == 1, "not exactly one paid payment")
    return report


# --- fault 3: a Celery worker killed with a batch of notifications in flight ---------------------


def fault_worker_killed(
    home: Path,
    *,
    bookings: int = 20,
    kill_after: int = 5,
    lease_seconds: float = 3,
    answer_seconds: float = 0.15,
    port: int = 0,
) -> Report:
    """Webhooks of ``bookings`` new bookings go to a recording HTTP server that takes
    ``answer_seconds`` per request; ``yuyue worker`` is killed (SIGKILL, whole process group) after
    ``kill_after`` arrived, a second worker starts and delivers the rest once the lease ends."""
    report = Report("worker_killed")
    missing = RedisServer.available()
    if missing:
        report.figures["skipped"] = missing
        return report
    sys.path.insert(0, str(TESTS))
    from fake_http import Answer as HttpAnswer
    from fake_http import fake_server

    from yuyue.notify.events import EVENT_KIND
    from yuyue.notify.models import InboxMessage, OutboxItem, OutboxStatus
    from yuyue.webhooks import services as webhooks

    arrived = threading.Event()

    def respond(request: Any) -> HttpAnswer:
        time.sleep(answer_seconds)  # a slow CRM: the batch is still going when the worker dies
        if sum(1 for r in server.received if r.path == "/hook") >= kill_after:
            arrived.set()
        return HttpAnswer(200, "{}")

    world = make_world(capacity=bookings, users=bookings)
    with fake_server(respond) as server, RedisServer(port or free_port()) as broker:
        webhooks.create_endpoint(
            merchant_id=world.merchant_id, url=f"{server.url}/hook", event_types=["booking.created"]
        )
        from yuyue.accounts.models import EndUser
        from yuyue.booking import services as engine

        made = [
            engine.book(user=EndUser.objects.get(pk=v.user_id), slot_id=world.slot_id, person_ids=[v.person_id]).pk
            for v in world.visitors
        ]
        rows = OutboxItem.objects.filter(kind=webhooks.KIND, merchant_id=world.merchant_id)
        expected = set(rows.values_list("dedupe_id", flat=True))
        env = child_env(home, YUYUE_BROKER_URL=broker.url, YUYUE_NOTIFY_LEASE_SECONDS=str(lease_seconds))

        def start_worker(name: str) -> subprocess.Popen[bytes]:
            log = (home / f"{name}.log").open("ab")
            command = [sys.executable, "-m", "yuyue.cli", "worker", "--concurrency", "1", "--loglevel", "WARNING"]
            return subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)

        early = len(server.received)  # nobody but the worker may deliver (a broker-less server would)
        began = time.monotonic()
        first = start_worker("worker1")
        try:
            report.check(arrived.wait(60), "the first worker delivered nothing")
            os.killpg(first.pid, signal.SIGKILL)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
        killed_at = time.monotonic()
        at_kill = len([r for r in server.received if r.path == "/hook"])
        stranded = rows.filter(status=OutboxStatus.SENDING).count()
        second = start_worker("worker2")
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                inboxed = InboxMessage.objects.filter(booking_id__in=made, event="confirmed").count()
                if not rows.exclude(status=OutboxStatus.DELIVERED).exists() and inboxed >= len(made):
                    break
                time.sleep(0.2)
            finished_at = time.monotonic()
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            try:
                second.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(second.pid, signal.SIGKILL)
                second.wait()

        received = Counter(r.headers.get("webhook-id", "") for r in server.received if r.path == "/hook")
    duplicates = {k: n for k, n in received.items() if n > 1}
    statuses = Counter(rows.values_list("status", flat=True))
    inbox = Counter(InboxMessage.objects.filter(booking_id__in=made).values_list("booking_id", "event"))
    report.figures.update(
        webhooks=len(expected),
        received_before_kill=at_kill,
        left_sending_by_killed_worker=stranded,
        lease_seconds=lease_seconds,
        recovered_after_s=round(finished_at - killed_at, 2),
        total_s=round(finished_at - began, 2),
        received=sum(received.values()),
        distinct_received=len(received),
        duplicate_deliveries=sum(n - 1 for n in duplicates.values()),
        outbox_statuses=dict(statuses),
        confirmation_rows=dict(
            Counter(
                OutboxItem.objects.filter(
                    kind=EVENT_KIND, payload__booking_id__in=made, payload__event="confirmed"
                ).values_list("status", flat=True)
            )
        ),
    )
    report.check(early == 0, f"{early} webhooks were delivered before the worker started, by another process")
    report.check(stranded > 0, "the worker was not killed with rows in flight")
    report.check(set(statuses) == {OutboxStatus.DELIVERED}, f"not every webhook row delivered: {dict(statuses)}")
    report.check(set(received) == expected, f"lost webhooks: {len(expected - set(received))}")
    # At least once: the one request in flight when the worker died may arrive twice, under the same
    # webhook-id (the receiver's dedup key); with --concurrency 1 there is at most one.
    report.check(sum(n - 1 for n in duplicates.values()) <= 1, f"more duplicates than requests in flight: {duplicates}")
    report.check(not [k for k, n in inbox.items() if n > 1], "an in-app message was written twice")
    confirmed = {booking for booking, event in inbox if event == "confirmed"}
    report.check(confirmed == set(made), f"{len(set(made) - confirmed)} confirmations missing in the in-app inbox")
    return report


# --- the script ----------------------------------------------------------------------------------

FAULTS = ("db", "redis", "worker", "notify", "restart")


def run_all(only: list[str], scale: float, home: Path) -> list[Report]:
    def n(base: int) -> int:
        return max(2, int(base * scale))

    reports = []
    for name in only:
        sub = home / name
        sub.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        if name == "db":
            report = fault_db_killed(capacity=n(200), users=n(400), threads=16, interval=0.5)
        elif name == "redis":
            report = fault_redis_restart(sub, capacity=n(300), users=n(600), concurrency=32, port=6397)
        elif name == "worker":
            report = fault_worker_killed(sub, bookings=n(60), kill_after=n(15), port=6398)
        elif name == "notify":
            report = fault_notify_replay(sub)
        else:
            report = fault_server_restart(sub, capacity=n(300), users=n(600), concurrency=32)
        report.figures["wall_s"] = round(time.perf_counter() - began, 1)
        print(report, flush=True)
        print(flush=True)
        reports.append(report)
    return reports


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(FAULTS), help=f"comma list of {', '.join(FAULTS)}")
    parser.add_argument("--scale", type=float, default=1, help="multiplies capacities and users (default 1)")
    args = parser.parse_args()
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in only if n not in FAULTS]
    if unknown:
        parser.error(f"unknown fault: {', '.join(unknown)}")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yuyue.settings")
    os.environ.setdefault("YUYUE_PAYMENT_SANDBOX", "1")  # the notify fault pays in the sandbox
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor}")
    print(f"cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="yuyue-faults-") as home:
        reports = run_all(only, args.scale, Path(home))
    failed = [r.name for r in reports if not r.ok]
    print(f"faults: {len(reports)}, failed: {len(failed)}{' (' + ', '.join(failed) + ')' if failed else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
