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

The last line is `N passed, M failed` over all runs; a run that failed without a failing test
(no tests collected, a crash, a required database missing) counts as one failure there. The exit
status is 0 only if every attempted run passed.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
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


def run_pytest(run: Run, pytest_args: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix=f"yuyue-test-{run.key}-") as home:
        env = dict(os.environ)
        env["YUYUE_HOME"] = home
        env.pop("YUYUE_DATABASE_URL", None)
        if run.url:
            env["YUYUE_DATABASE_URL"] = run.url
        env.setdefault("PYTHONUNBUFFERED", "1")
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *pytest_args]
        print(f"\n===== {run.label}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        assert proc.stdout is not None
        last = ""
        for line in proc.stdout:
            sys.stdout.write(line)
            if line.strip():
                last = line.strip()
        code = proc.wait()
        run.seconds = time.monotonic() - started
    for number, word in COUNT_RE.findall(last):
        run.counts[word] = run.counts.get(word, 0) + int(number)
    run.result = "passed" if code == 0 else "FAILED"
    reason = {0: "", 1: "", 2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}.get(
        code, f"exit {code}"
    )
    if reason:
        run.note = f"{reason}; {run.note}" if run.note else reason


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
        run_pytest(run, pytest_args)

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
