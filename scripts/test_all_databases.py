#!/usr/bin/env python3
"""Run the test suite once per database: SQLite, then PostgreSQL and MariaDB when they answer.

    python scripts/test_all_databases.py [pytest args...]

Every run gets a fresh temporary YUYUE_HOME (secret key, SQLite files). The server databases come
from YUYUE_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test) and
YUYUE_TEST_MARIADB_URL (default mysql://root@127.0.0.1:3306/test); pytest-django creates and drops
a `test_<name>` database beside the one named. A server that does not answer is skipped with a
`SKIPPED <database>: <reason>` line, unless YUYUE_TEST_REQUIRE (comma list of `postgres`,
`mariadb`) names it, which makes that a failure. YUYUE_TEST_DATABASES (comma list, default all)
chooses which runs to attempt.

YUYUE_TEST_JOBS (default 2) runs that many passes at once, longest first (PostgreSQL, MariaDB, then
SQLite as soon as one of them ends): pytest keeps about one core busy, so two passes at once use a
two-core machine fully. Each pass has its own test database, and a redis-server of its own on a
free port of 127.0.0.1 (nothing saved to disk, stopped when the pass ends), whose address the tests
read from YUYUE_TEST_REDIS (tests/redisurl.py): rate-limit windows keyed by account ids, which
restart in every test database, and the keys and queues tests flush never meet the other pass's.
Each pass writes to a log of its own, printed whole when the pass ends. 1 runs them one after the
other, printing as they go, on the shared Redis at 127.0.0.1:6379 (or YUYUE_TEST_REDIS if set);
so does a machine without redis-server, saying so in one line.

The last line is `N passed, M failed` over all runs; a run that failed without a failing test
(no tests collected, a crash, a required database missing) counts as one failure there. The exit
status is 0 only if every attempted run passed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dj_database_url

ROOT = Path(__file__).resolve().parent.parent
ALIASES = {
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
    "postgres": "postgres",
    "postgresql": "postgres",
    "pg": "postgres",
    "mariadb": "mariadb",
    "mysql": "mariadb",
}
COUNT_RE = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)\b")


@dataclass
class Run:
    key: str
    label: str
    url: str | None  # None: SQLite in YUYUE_HOME
    probe: Callable[[str], str | None] | None = None
    result: str = "not run"
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""

    @property
    def failed_tests(self) -> int:
        return self.counts.get("failed", 0) + self.counts.get("error", 0) + self.counts.get("errors", 0)


def _tcp(host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=2):
            pass
    except OSError as exc:
        raise RuntimeError(f"nothing answers on {host}:{port} ({exc.strerror or exc})") from None


def _parts(url: str, default_port: int) -> dict:
    cfg = dj_database_url.parse(url)
    host = cfg.get("HOST") or "127.0.0.1"
    port = int(cfg.get("PORT") or default_port)
    return {
        "host": host,
        "port": port,
        "user": cfg.get("USER") or "",
        "password": cfg.get("PASSWORD") or "",
        "name": cfg.get("NAME") or "",
    }


def probe_postgres(url: str) -> str | None:
    p = _parts(url, 5432)
    if not p["host"].startswith("/"):
        _tcp(p["host"], p["port"])
    try:
        import psycopg
    except ImportError:
        raise RuntimeError("psycopg is not installed") from None
    try:
        with psycopg.connect(
            host=p["host"],
            port=p["port"],
            user=p["user"] or None,
            password=p["password"] or None,
            dbname=p["name"] or None,
            connect_timeout=5,
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise RuntimeError(_first_line(exc)) from None
    return None


def probe_mariadb(url: str) -> str | None:
    p = _parts(url, 3306)
    if not p["host"].startswith("/"):
        _tcp(p["host"], p["port"])
    try:
        import MySQLdb
    except ImportError:
        raise RuntimeError(
            "mysqlclient is not installed (needs libmariadb-dev and pkg-config, then pip install -e '.[mysql]')"
        ) from None
    kwargs = {"user": p["user"], "passwd": p["password"], "db": p["name"], "connect_timeout": 5}
    if p["host"].startswith("/"):
        kwargs["unix_socket"] = p["host"]
    else:
        kwargs.update(host=p["host"], port=p["port"])
    try:
        conn = MySQLdb.connect(**kwargs)
    except MySQLdb.Error as exc:
        raise RuntimeError(_first_line(exc)) from None
    try:
        cur = conn.cursor()
        cur.execute("SELECT CONVERT_TZ('2020-01-01 00:00:00', 'UTC', 'Asia/Shanghai') IS NOT NULL")
        has_zones = bool(cur.fetchone()[0])
    finally:
        conn.close()
    if not has_zones:
        return (
            "the server has no time zone tables, so date lookups in the database fail; load them with "
            "`mariadb-tzinfo-to-sql /usr/share/zoneinfo | mariadb -u root mysql`"
        )
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _names(var: str) -> set[str]:
    names = set()
    for raw in os.environ.get(var, "").split(","):
        raw = raw.strip().lower()
        if not raw:
            continue
        if raw not in ALIASES:
            sys.exit(f"{var}: unknown database {raw!r} (use sqlite, postgres, mariadb)")
        names.add(ALIASES[raw])
    return names


_print_lock = threading.Lock()


def say(text: str) -> None:
    with _print_lock:
        print(text, flush=True)


# redis-servers started for passes, stopped when their pass ends or, at the latest, when this script does.
_servers: set[subprocess.Popen] = set()
_servers_lock = threading.Lock()
_pytests: set[subprocess.Popen] = set()  # the passes' pytest processes, while they run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(home: str) -> tuple[subprocess.Popen, int]:
    """A private redis-server on a free port of 127.0.0.1: nothing saved to disk, gone with the pass."""
    binary = shutil.which("redis-server") or "redis-server"
    for _attempt in range(3):
        port = _free_port()
        # Its own process group: a ctrl-C reaches pytest first, and the server is stopped after it.
        options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", home]
        proc = subprocess.Popen(
            [binary, *options, "--logfile", str(Path(home) / "redis.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        with _servers_lock:
            _servers.add(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            if _redis_answers(port):
                return proc, port
            time.sleep(0.05)
        stop_redis(proc)  # the port was taken meanwhile, or the server did not come up: another try
    raise RuntimeError(f"redis-server did not start (see its log in {home})")


def stop_redis(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with _servers_lock:
        _servers.discard(proc)


def stop_all_redis() -> None:
    with _servers_lock:
        left = list(_servers)
    for proc in left:
        stop_redis(proc)


def run_pytest(run: Run, pytest_args: list[str], *, stream: bool = True, own_redis: bool = False) -> None:
    """One pass. ``stream``: print pytest's output as it comes; otherwise keep it in a file and print
    it whole at the end (passes running side by side must not interleave their lines). ``own_redis``:
    start a redis-server for this pass alone and give its address to the tests (YUYUE_TEST_REDIS)."""
    with tempfile.TemporaryDirectory(prefix=f"yuyue-test-{run.key}-") as home:
        env = dict(os.environ)
        env["YUYUE_HOME"] = home
        env.pop("YUYUE_DATABASE_URL", None)
        if run.url:
            env["YUYUE_DATABASE_URL"] = run.url
        env.setdefault("PYTHONUNBUFFERED", "1")
        server = None
        try:
            if own_redis:
                try:
                    server, port = start_redis(home)
                except (OSError, RuntimeError) as exc:
                    run.result, run.note = "FAILED", f"no Redis of its own: {exc}"
                    say(f"\nFAILED {run.label}: {run.note}")
                    return
                env["YUYUE_TEST_REDIS"] = f"redis://127.0.0.1:{port}"
            _pytest(run, pytest_args, env, home, stream)
        finally:
            if server is not None:
                stop_redis(server)


def _pytest(run: Run, pytest_args: list[str], env: dict[str, str], home: str, stream: bool) -> None:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *pytest_args]
    header = f"\n===== {run.label}: {' '.join(command[1:])}"
    if stream:
        say(header)
    else:
        where = f" on its own Redis at {env['YUYUE_TEST_REDIS']}" if "YUYUE_TEST_REDIS" in env else ""
        say(f"\n===== {run.label}: started{where} (its output follows when it ends)")
    started = time.monotonic()
    log_path = Path(home) / "pytest.log"
    with log_path.open("w+", encoding="utf-8") as log:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        _pytests.add(proc)
        assert proc.stdout is not None
        last = ""
        try:
            for line in proc.stdout:
                if stream:
                    sys.stdout.write(line)
                else:
                    log.write(line)
                if line.strip():
                    last = line.strip()
            code = proc.wait()
        finally:
            _pytests.discard(proc)
        run.seconds = time.monotonic() - started
        if not stream:
            log.seek(0)
            with _print_lock:
                print(header)
                for line in log:
                    sys.stdout.write(line)
                print(f"===== {run.label}: ended after {run.seconds:.1f} s", flush=True)
    for number, word in COUNT_RE.findall(last):
        run.counts[word] = run.counts.get(word, 0) + int(number)
    run.result = "passed" if code == 0 else "FAILED"
    reason = {0: "", 1: "", 2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}.get(
        code, f"exit {code}"
    )
    if reason:
        run.note = f"{reason}; {run.note}" if run.note else reason


def run_all(runs: list[Run], pytest_args: list[str], jobs: int) -> None:
    """Run ``runs`` in this order, at most ``jobs`` at a time."""
    if jobs <= 1 or len(runs) <= 1:
        for run in runs:
            run_pytest(run, pytest_args)
        return
    # Side by side, every pass has a redis-server of its own: the tests' Redis keys (rate-limit
    # windows keyed by account ids that restart in every test database, gates, queues they flush)
    # would otherwise meet those of the other pass.
    queue = list(runs)
    lock = threading.Lock()
    ended: list[threading.Event] = []  # one per lane started

    def lane(done: threading.Event) -> None:
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    run = queue.pop(0)
                run_pytest(run, pytest_args, stream=False, own_redis=True)
        finally:
            done.set()

    def wait_for_lanes() -> None:
        # Not Thread.join: a join cut short by ctrl-C may later return while the thread still runs.
        while not all(event.wait(0.2) for event in ended):
            pass

    def terminated(signum: int, frame: object) -> None:
        for proc in list(_pytests):  # a ctrl-C reaches them by itself; a SIGTERM does not
            proc.send_signal(signal.SIGINT)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        for n in range(min(jobs, len(runs))):
            ended.append(threading.Event())
            threading.Thread(target=lane, args=(ended[-1],), name=f"lane-{n}").start()
            time.sleep(2)  # the passes' Django start-ups need not compete
        wait_for_lanes()
    except KeyboardInterrupt:
        with lock:
            queue.clear()
        wait_for_lanes()  # the running passes end interrupted, and stop their redis-servers
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_all_redis()


def main(pytest_args: list[str]) -> int:
    required = _names("YUYUE_TEST_REQUIRE")
    chosen = _names("YUYUE_TEST_DATABASES") or {"sqlite", "postgres", "mariadb"}
    runs = [
        Run("sqlite", "SQLite", None),
        Run(
            "postgres",
            "PostgreSQL",
            os.environ.get("YUYUE_TEST_POSTGRES_URL") or "postgres://postgres@127.0.0.1:5432/test",
            probe_postgres,
        ),
        Run(
            "mariadb",
            "MariaDB",
            os.environ.get("YUYUE_TEST_MARIADB_URL") or "mysql://root@127.0.0.1:3306/test",
            probe_mariadb,
        ),
    ]
    ready: list[Run] = []
    for run in runs:
        if run.key not in chosen:
            run.result = "not chosen"
            if run.key in required:
                run.result, run.note = "FAILED", "required but not in YUYUE_TEST_DATABASES"
            continue
        if run.probe is not None and run.url is not None:
            try:
                warning = run.probe(run.url)
            except RuntimeError as exc:
                if run.key in required:
                    print(f"FAILED {run.label}: required (YUYUE_TEST_REQUIRE) but unreachable: {exc}", flush=True)
                    run.result, run.note = "FAILED", f"unreachable: {exc}"
                else:
                    print(f"SKIPPED {run.label}: {exc}", flush=True)
                    run.result, run.note = "SKIPPED", str(exc)
                continue
            if warning:
                print(f"WARNING {run.label}: {warning}", flush=True)
                run.note = warning.split(";")[0]
        ready.append(run)

    try:
        jobs = int(os.environ.get("YUYUE_TEST_JOBS", "2"))
    except ValueError:
        sys.exit("YUYUE_TEST_JOBS: a number of passes to run at once")
    if jobs > 1 and len(ready) > 1 and not shutil.which("redis-server"):
        print("no redis-server installed: the passes run one after the other, on the shared Redis", flush=True)
        jobs = 1
    # Longest first, so the last pass to start is a short one (SQLite runs no concurrency tests).
    order = {"postgres": 0, "mariadb": 1, "sqlite": 2} if jobs > 1 else {"sqlite": 0, "postgres": 1, "mariadb": 2}
    run_all(sorted(ready, key=lambda run: order[run.key]), pytest_args, jobs)

    header = ("database", "result", "passed", "failed", "skipped", "seconds", "note")
    rows = [
        (
            run.label,
            run.result,
            str(run.counts.get("passed", 0)),
            str(run.failed_tests),
            str(run.counts.get("skipped", 0)),
            f"{run.seconds:.1f}",
            run.note,
        )
        for run in runs
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    print("===== summary")
    for r in [header, *rows]:
        print(
            "  ".join(
                cell.ljust(widths[i]) if i < 2 or i == 6 else cell.rjust(widths[i]) for i, cell in enumerate(r)
            ).rstrip()
        )

    passed = sum(run.counts.get("passed", 0) for run in runs)
    failed = sum(max(run.failed_tests, 1 if run.result == "FAILED" else 0) for run in runs)
    print(f"{passed} passed, {failed} failed")
    return 1 if any(run.result == "FAILED" for run in runs) else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
