"""The `yuyue` command: serve, worker, demo, slots, token, manage, keys, ledger, recommend, payments, privacy,
assistant.

User mistakes end with a one-line message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

log = logging.getLogger("yuyue.cli")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_DEFAULT_WORKERS = 9
DEFAULT_THREADS = 4
GRACEFUL_SECONDS = 20
BACKGROUND_NICENESS = 19  # the lowest scheduling priority (see _yield_cpu_to_requests)
TOKEN_BATCH = 1000


class UsageError(Exception):
    """A mistake of the person at the keyboard: shown as one line, exit status 2."""

    exit_code = 2


def _fail(message: str, code: int = 2) -> int:
    print(f"yuyue: {message}", file=sys.stderr)
    return code


def _setup_django() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "yuyue.settings"
    import django

    django.setup()


def default_workers() -> int:
    """One process per core (at least 2, capped); each one's threads wait on the database and Redis.

    Python runs one thread at a time per process, so processes are what use the cores; more of
    them than cores only add switching (measured under a rush on 2 cores: 2 workers served
    sold-out answers with a third less CPU each than the usual rule of 2 × cores + 1).
    """
    return max(2, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


# --- serve -------------------------------------------------------------------------------------


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _yield_cpu_to_requests() -> None:
    """Lower this thread's scheduling priority, so that background work never slows the answers.

    Under a rush on a small machine, delivering the confirmations of the bookings just made took a
    third of the server's CPU from the requests; at the lowest priority it runs on what they leave
    (each notification waits a little longer, none is lost: the outbox holds them). Linux only:
    there a thread has its own nice value.
    """
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)


def _periodic_loop(stop: threading.Event, interval: float) -> None:
    """Background work in the serve process itself, for installations without a broker."""
    from django.db import connections

    from yuyue import tasks

    _yield_cpu_to_requests()

    # Every job each `interval`; the outbox in between, so a confirmation does not wait a minute.
    last_full_run = float("-inf")
    while not stop.is_set():
        try:
            if time.monotonic() - last_full_run >= interval:
                last_full_run = time.monotonic()
                tasks.run_periodic()
            else:
                tasks.run_job("deliver_outbox")
        except Exception:  # run_periodic already guards each job; this is the last line
            log.exception("periodic work failed")
        finally:
            connections.close_all()
        stop.wait(min(interval, tasks.OUTBOX_PERIOD_SECONDS))


def server_command(
    app: str, host: str, port: int, workers: int, threads: int, *, access_log: bool = False
) -> list[str]:
    """The production HTTP server's command line for a WSGI ``app`` ("module:callable").

    Granian: HTTP is parsed and connections are kept in Rust, outside the interpreter lock, so the
    Python threads only run the application. Measured on 2 cores (``benchmarks/ceiling.py``) it
    spends a fifth of gunicorn's CPU per request and keeps answering at concurrency 500 where
    gunicorn's Python event loop queues. SIGTERM stops accepting and lets requests under way
    finish (up to the kill timeout); a worker that dies is started again.
    """
    command = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--no-ws",
        "--workers-kill-timeout",
        str(GRACEFUL_SECONDS),
        "--respawn-failed-workers",
        "--log-level",
        "info",
    ]
    if access_log:
        command.append("--access-log")
    return [*command, app]


def cmd_serve(args: argparse.Namespace) -> int:
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    from yuyue import tasks

    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be between 1 and 65535, not {args.port}")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.threads < 1:
        raise UsageError("--threads must be at least 1")
    _check_port_free(args.host, args.port)

    call_command("migrate", interactive=False, verbosity=1)
    call_command("collectstatic", interactive=False, verbosity=0)
    connections.close_all()  # this process only supervises from here on

    # The access log writes a line per request; YUYUE_ACCESS_LOG=off spares a rush thousands a second.
    command = server_command(
        "yuyue.wsgi:application", args.host, args.port, args.workers, args.threads, access_log=settings.ACCESS_LOG
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "yuyue.settings", "YUYUE_HOME": str(settings.WORK_DIR)}

    stop = threading.Event()
    if not settings.CELERY_BROKER_URL:
        print("yuyue: no YUYUE_BROKER_URL, so background work runs in this process", flush=True)
        threading.Thread(
            target=_periodic_loop, args=(stop, tasks.PERIOD_SECONDS), name="yuyue-periodic", daemon=True
        ).start()
    else:
        print("yuyue: background work goes to the broker; run `yuyue worker` beside this server", flush=True)

    proc = subprocess.Popen(command, env=env)
    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        stop.set()
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: the server finishes the requests under way

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            code = proc.wait()
        except KeyboardInterrupt:  # pragma: no cover - the handler normally takes SIGINT
            _stop(signal.SIGINT, None)
            code = proc.wait()
        if stopping:
            return 0
        return _fail(f"the HTTP server exited with status {code}", 1) if code else 0
    finally:
        stop.set()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(GRACEFUL_SECONDS + 5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- worker ------------------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    from django.conf import settings

    if not settings.CELERY_BROKER_URL:
        raise UsageError(
            "`yuyue worker` needs a message broker: set YUYUE_BROKER_URL (e.g. redis://127.0.0.1:6379/1). "
            "Without one, `yuyue serve` runs background work in-process."
        )
    command = [sys.executable, "-m", "celery", "-A", "yuyue.tasks", "worker", "--loglevel", args.loglevel]
    if not args.no_beat:  # the periodic scheduler must run exactly once per installation
        command += ["-B", "--schedule", str(settings.WORK_DIR / "celerybeat-schedule")]
    if args.concurrency:
        command += ["--concurrency", str(args.concurrency)]
    sys.stdout.flush()
    os.execv(sys.executable, command)
    return 0  # pragma: no cover


# --- demo --------------------------------------------------------------------------------------


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row)]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def cmd_demo(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    try:
        from yuyue import demo
    except ModuleNotFoundError as exc:
        if exc.name != "yuyue.demo":
            raise
        raise UsageError("this installation has no demo data (module yuyue.demo is missing)") from None

    result: Any = demo.load_demo()
    phone = getattr(demo, "DEMO_PHONE", None) or getattr(demo, "SAMPLE_PHONE", None)
    logins = result
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
        logins, phone = result  # (logins, sample phone)
    rows = [tuple(str(v) for v in row[:3]) for row in logins]
    if phone:  # the end user's phone is not a staff login: shown below the table instead
        rows = [row for row in rows if row[1] != phone]

    url = args.url.rstrip("/")
    print(f"Demo data is ready. Staff sign in to the merchant console at {url}/console/ with:")
    print()
    print(_table([("username", "password", "role"), *rows]))
    print()
    print(f"H5 booking app (open it phone-sized): {url}/")
    if phone:
        print(f"  sign in with the demo phone {phone}; the SMS code is printed in this terminal")
        print(f"  (an API token for it: yuyue token {phone})")
    print(f"API docs: {url}/api/v1/docs   Admin: {url}/admin/")
    return 0


# --- slots -------------------------------------------------------------------------------------


def cmd_slots_generate(args: argparse.Namespace) -> int:
    if args.days < 1:
        raise UsageError("--days must be at least 1")
    from yuyue.scheduling.services import generate_slots

    created = generate_slots(days=args.days)
    print(f"{created} slots created for the next {args.days} days")
    return 0


# --- token -------------------------------------------------------------------------------------


def _read_phones(values: list[str]) -> list[str]:
    phones: list[str] = []
    for value in values:
        if value == "-":
            phones += [line.strip() for line in sys.stdin if line.strip()]
        else:
            phones.append(value)
    return phones


def cmd_token(args: argparse.Namespace) -> int:
    from django.db import transaction

    from yuyue.accounts.services import issue_tokens, users_for_phones

    if args.staff is not None:
        if args.phones:
            raise UsageError("give either --staff USERNAME or phone numbers, not both")
        return _staff_token(args.staff)
    phones = _read_phones(args.phones)
    if not phones:
        raise UsageError("give at least one phone number (or - to read them from standard input)")

    from yuyue.core.errors import DomainError
    from yuyue.core.personal import normalize_phone

    normalized: list[str] = []
    bad: list[str] = []
    for phone in phones:
        try:
            normalized.append(normalize_phone(phone))
        except DomainError:
            bad.append(phone)
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise UsageError(f"not a valid mainland mobile number: {shown}; no tokens were issued")

    # Batches of TOKEN_BATCH phones, one transaction each: fast, and a busy server's writers
    # never wait long for the database. Tokens are printed only when every batch has committed.
    tokens: list[str] = []
    for start in range(0, len(normalized), TOKEN_BATCH):
        with transaction.atomic():
            tokens += issue_tokens(users_for_phones(normalized[start : start + TOKEN_BATCH]))
    sys.stdout.write("\n".join(tokens) + "\n")
    return 0


def _staff_token(username: str) -> int:
    from django.contrib.auth import get_user_model

    from yuyue.accounts.services import issue_token
    from yuyue.tenants.models import Staff

    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise UsageError(f"no user named {username!r}")
    if not user.is_active:
        raise UsageError(f"user {username!r} is not active")
    if not Staff.objects.filter(user=user, is_active=True).exists():
        raise UsageError(f"user {username!r} is not active staff of any merchant")
    print(issue_token(staff_user=user))
    return 0


# --- keys --------------------------------------------------------------------------------------


def cmd_keys_new(args: argparse.Namespace) -> int:
    from yuyue.core.crypto import generate_key

    print(generate_key())
    return 0


# --- ledger ------------------------------------------------------------------------------------


def _ledger_merchant(slug: str | None) -> Any:
    from yuyue.tenants.models import Merchant

    if slug is None:
        return None
    merchant = Merchant.objects.filter(slug=slug).first()
    if merchant is None:
        raise UsageError(f"no merchant with the slug {slug!r}")
    return merchant


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    from yuyue.ledger.services import verify

    report = verify(merchant=_ledger_merchant(args.merchant))
    for problem in report.problems:
        print(f"BAD {problem}", file=sys.stderr)
    summary = f"{report.merchants} merchants, {report.entries} entries, {report.checkpoints} checkpoints"
    if not report.ok:
        print(f"ledger verification failed ({summary})", file=sys.stderr)
        return 1
    print(f"ledger OK: {summary}")
    return 0


def cmd_ledger_checkpoint(args: argparse.Namespace) -> int:
    import datetime as dt

    from yuyue.ledger.services import make_checkpoints

    try:
        day = dt.date.fromisoformat(args.date) if args.date else None
    except ValueError:
        raise UsageError(f"--date must look like 2026-01-31, not {args.date!r}") from None
    try:
        made = make_checkpoints(day=day, merchant=_ledger_merchant(args.merchant))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for cp in made:
        print(f"{cp.date} merchant {cp.merchant_id}: {cp.entries} entries, Merkle root {cp.merkle_root}")
    print(f"{len(made)} checkpoints made")
    return 0


def cmd_ledger_rebuild(args: argparse.Namespace) -> int:
    from yuyue.ledger.services import rebuild

    added = rebuild(merchant=_ledger_merchant(args.merchant))
    print(f"{added} booking events sealed")
    return 0


# --- privacy -----------------------------------------------------------------------------------


def cmd_privacy_anonymise(args: argparse.Namespace) -> int:
    from django.conf import settings

    from yuyue.privacy.services import anonymise_finished

    count = anonymise_finished(dry_run=args.dry_run)
    days = settings.PERSONAL_DATA_RETENTION_DAYS
    verb = "would be anonymised" if args.dry_run else "anonymised"
    print(f"{count} bookings finished more than {days} days ago {verb}")
    return 0


# --- recommend ---------------------------------------------------------------------------------


def cmd_recommend_train(args: argparse.Namespace) -> int:
    from yuyue.insights.services import train

    snapshot = train()
    print(
        f"recommender trained on {snapshot.bookings} bookings of {snapshot.users} customers "
        f"and {snapshot.offerings} offerings (model #{snapshot.pk})"
    )
    return 0


# --- payments ----------------------------------------------------------------------------------


def cmd_payments_reconcile(args: argparse.Namespace) -> int:
    import datetime as dt

    from yuyue.core.errors import DomainError
    from yuyue.core.money import format_yuan
    from yuyue.payments.services import reconcile

    try:
        day = dt.date.fromisoformat(args.date)
    except ValueError:
        raise UsageError(f"--date must look like 2026-01-31, not {args.date!r}") from None
    try:
        report = reconcile(day=day, provider_name=args.provider)
    except DomainError as exc:
        raise UsageError(", ".join(str(v) for v in exc.fields.values()) or exc.message) from None
    for m in report.mismatches:
        print(f"MISMATCH {m.kind} {m.provider} {m.record} {m.number}: ours {m.ours}, provider {m.theirs}")
    print(
        f"{day} ({', '.join(report.providers) or 'no provider'}): {report.checked} provider lines, "
        f"{report.matched} matched, {len(report.mismatches)} mismatches; "
        f"net {format_yuan(report.local_fen)} here, {format_yuan(report.provider_fen)} at the provider"
    )
    return 0 if report.ok else 1


# --- assistant ---------------------------------------------------------------------------------


def cmd_assistant_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from yuyue.assistant import classifier

    questions = Path(args.questions) if args.questions else classifier.QUESTIONS_PATH
    output = Path(args.output) if args.output else classifier.MODEL_PATH
    try:
        model, count = classifier.train_from_files(questions, output)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"cannot train on {questions}: {exc}") from None
    print(
        f"trained on {count} questions, {len(model.weights)} features, temperature {model.temperature:g}; "
        f"written to {output}"
    )
    return 0


# --- manage ------------------------------------------------------------------------------------


def cmd_manage(argv: Sequence[str]) -> int:
    _setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["yuyue manage", *argv])
    return 0


# --- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yuyue",
        description="yuyue (预约): an open-source reservation platform. Settings come from YUYUE_* variables.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("serve", help="migrate, collect static files and run the production server")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    p.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help=f"HTTP server worker processes (default {default_workers()})",
    )
    p.add_argument(
        "--threads", type=int, default=DEFAULT_THREADS, help=f"threads per worker process (default {DEFAULT_THREADS})"
    )
    p.set_defaults(func=cmd_serve, django=True)

    p = sub.add_parser("worker", help="run a Celery worker with the periodic scheduler (needs YUYUE_BROKER_URL)")
    p.add_argument("--concurrency", type=int, default=0, help="worker processes (default: one per core)")
    p.add_argument("--loglevel", default="info", help="Celery log level (default info)")
    p.add_argument(
        "--no-beat",
        action="store_true",
        help="without the periodic scheduler: for every worker but one when several run",
    )
    p.set_defaults(func=cmd_worker, django=True)

    p = sub.add_parser("demo", help="migrate and load demo merchants for the six kinds; prints the logins")
    p.add_argument(
        "--url",
        default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
        help="where the server will be, for the printed links (default http://127.0.0.1:8000)",
    )
    p.set_defaults(func=cmd_demo, django=True)

    p = sub.add_parser("slots", help="slot maintenance")
    slots = p.add_subparsers(dest="slots_command", metavar="ACTION", required=True)
    g = slots.add_parser("generate", help="create the slots of every schedule for the coming days")
    g.add_argument("--days", type=int, default=30, help="how many days ahead (default 30)")
    g.set_defaults(func=cmd_slots_generate, django=True)

    p = sub.add_parser(
        "token",
        help="print API tokens for end users by phone (created if new), or for a staff account",
        description="Print one bearer token per phone number, in order; end users that do not exist yet are "
        "created. All numbers are checked first: one invalid number means no token is issued.",
    )
    p.add_argument("phones", nargs="*", metavar="PHONE", help="mainland mobile numbers; - reads them from stdin")
    p.add_argument("--staff", metavar="USERNAME", help="a token for this staff account instead")
    p.set_defaults(func=cmd_token, django=True)

    sub.add_parser("manage", help="run a Django management command: yuyue manage ARGS...", add_help=False)

    p = sub.add_parser("keys", help="field-encryption keys")
    keys = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    k = keys.add_parser("new", help="print a new key for YUYUE_DATA_KEYS / YUYUE_INDEX_KEY")
    k.set_defaults(func=cmd_keys_new, django=False)

    p = sub.add_parser("ledger", help="the tamper-evident ledger of booking events")
    ledger = p.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    v = ledger.add_parser("verify", help="check every chain and checkpoint; exit 1 naming the first bad entry")
    v.add_argument("--merchant", metavar="SLUG", help="only this merchant")
    v.set_defaults(func=cmd_ledger_verify, django=True)
    c = ledger.add_parser("checkpoint", help="make the daily checkpoints (Merkle roots) of a day")
    c.add_argument("--date", help="the day, YYYY-MM-DD (default: yesterday)")
    c.add_argument("--merchant", metavar="SLUG", help="only this merchant")
    c.set_defaults(func=cmd_ledger_checkpoint, django=True)
    r = ledger.add_parser("rebuild", help="seal booking events that are not in the ledger yet")
    r.add_argument("--merchant", metavar="SLUG", help="only this merchant")
    r.set_defaults(func=cmd_ledger_rebuild, django=True)

    p = sub.add_parser("payments", help="payments: reconciliation with the providers' records")
    payments = p.add_subparsers(dest="payments_command", metavar="ACTION", required=True)
    rc = payments.add_parser(
        "reconcile",
        help="compare a day's payments and refunds with the provider's statement; exit 1 on any mismatch",
    )
    rc.add_argument("--date", required=True, help="the day, YYYY-MM-DD (Asia/Shanghai)")
    rc.add_argument("--provider", help="only this provider (wechat, alipay, sandbox); default: every configured one")
    rc.set_defaults(func=cmd_payments_reconcile, django=True)

    p = sub.add_parser("privacy", help="personal data lifecycle (see docs/privacy.md)")
    privacy = p.add_subparsers(dest="privacy_command", metavar="ACTION", required=True)
    a = privacy.add_parser(
        "anonymise", help="wipe personal data of bookings finished longer ago than YUYUE_PERSONAL_DATA_RETENTION_DAYS"
    )
    a.add_argument("--dry-run", action="store_true", help="only count the bookings that are due")
    a.set_defaults(func=cmd_privacy_anonymise, django=True)

    p = sub.add_parser("recommend", help="the recommender behind GET /api/v1/recommendations")
    recommend = p.add_subparsers(dest="recommend_command", metavar="ACTION", required=True)
    t = recommend.add_parser("train", help="learn from the booking history now (the periodic job does it hourly)")
    t.set_defaults(func=cmd_recommend_train, django=True)

    p = sub.add_parser("assistant", help="the customer-service assistant")
    assistant = p.add_subparsers(dest="assistant_command", metavar="ACTION", required=True)
    t = assistant.add_parser("train", help="train the intent classifier on the packaged question set")
    t.add_argument("--questions", metavar="JSONL", help="labelled questions (default: the packaged set)")
    t.add_argument("--output", metavar="JSON", help="where to write the model (default: the packaged model.json)")
    t.set_defaults(func=cmd_assistant_train, django=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "manage":
        return cmd_manage(argv[1:])

    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2

    from django.db import DatabaseError

    try:
        if args.django:
            _setup_django()
        return func(args)
    except UsageError as exc:
        return _fail(str(exc), exc.exit_code)
    except DatabaseError as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _fail(f"database error: {first_line} (is the database up and migrated? `yuyue manage migrate`)", 1)
    except KeyboardInterrupt:
        return 130


def _entry() -> None:  # pragma: no cover
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    _entry()
