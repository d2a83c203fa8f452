"""What this machine can answer at all: the floor under the rush's latency figures.

    python benchmarks/ceiling.py                       # 10,000 requests at concurrency 100 and 500
    python benchmarks/ceiling.py --requests 20000 --concurrency 100

The rush (``rush.py``) measures yuyue; this measures what is underneath it, with the same load
generator (``rush.Connection``, one keep-alive connection per client, on the same cores):

- ``bare``: a WSGI application that returns a fixed 409 and does nothing else, served with the
  server command and worker layout of ``yuyue serve`` (``yuyue.cli.server_command``). No Python
  application can answer faster behind that server.
- ``framework``: ``yuyue serve`` itself answering ``POST /api/v1/bookings`` without a token (401):
  the whole middleware stack and the API framework, no database and no Redis.

For each it prints ``<name>_<concurrency>_rps``, ``_p50_ms``, ``_p95_ms``, ``_p99_ms`` and
``_cpu_ms_per_request`` (server processes, from /proc). With a queue of C clients, latency is about
C / throughput: these figures bound what any request path of the real application can reach.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rush  # the load generator's connection, percentiles and process helpers

ANSWER = b'{"error": {"code": "slot_full", "message": "sold out"}}'


def bare_application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The fastest possible answer: read the body, return a constant."""
    environ["wsgi.input"].read()
    start_response("409 Conflict", [("Content-Type", "application/json"), ("Content-Length", str(len(ANSWER)))])
    return [ANSWER]


async def _fire(url: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    connections = [rush.Connection(url) for _ in range(concurrency)]
    await asyncio.gather(*(c.request("GET", "/", "") for c in connections))  # connect before the start
    body = json.dumps({"slot_id": 1, "people": [1]}).encode()
    headers = f"Idempotency-Key: {uuid.uuid4().hex}\r\n"
    left = requests
    latencies: list[float] = []

    async def client(conn: rush.Connection) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            began = time.perf_counter()
            for attempt in range(rush.TRANSPORT_RETRIES + 1):
                try:  # a keep-alive connection the server closed as it was reused: reconnect
                    await conn.request("POST", "/api/v1/bookings", headers, body)
                    break
                except rush.TRANSPORT_ERRORS:
                    if attempt == rush.TRANSPORT_RETRIES:
                        raise
            latencies.append((time.perf_counter() - began) * 1000)
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(c) for c in connections))
    return time.perf_counter() - start, latencies


def measure(name: str, url: str, pid: int, requests: int, concurrency: int) -> dict[str, Any]:
    asyncio.run(_fire(url, min(requests, 1000), concurrency))  # warm-up: imports, caches, connections
    cpu_before = rush.tree_cpu_seconds(pid)
    wall, latencies = asyncio.run(_fire(url, requests, concurrency))
    cpu = rush.tree_cpu_seconds(pid) - cpu_before
    prefix = f"{name}_{concurrency}"
    return {
        f"{prefix}_rps": round(requests / wall, 1),
        f"{prefix}_p50_ms": rush.pct(latencies, 0.50),
        f"{prefix}_p95_ms": rush.pct(latencies, 0.95),
        f"{prefix}_p99_ms": rush.pct(latencies, 0.99),
        f"{prefix}_cpu_ms_per_request": round(cpu * 1000 / requests, 3),
    }


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + rush.READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{rush.tail(log)}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError(f"the server did not start:\n{rush.tail(log)}")


def start(command: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, action="append", help="repeatable (default: 100 and 500)")
    parser.add_argument("--workers", type=int, default=0, help="server processes (default: as `yuyue serve`)")
    parser.add_argument("--threads", type=int, default=0, help="threads per process (default: as `yuyue serve`)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from yuyue.cli import DEFAULT_THREADS, default_workers, server_command

    workers, threads = args.workers or default_workers(), args.threads or DEFAULT_THREADS
    levels = args.concurrency or [100, 500]
    root = Path(tempfile.mkdtemp(prefix="yuyue-ceiling-"))
    env = {
        **os.environ,
        "YUYUE_HOME": str(root),
        "YUYUE_DATABASE_URL": f"sqlite:///{root / 'ceiling.sqlite3'}",
        "YUYUE_REDIS_URL": "",
        "YUYUE_BROKER_URL": "",
        "YUYUE_SECRET_KEY": uuid.uuid4().hex * 2,
        "YUYUE_LOG_LEVEL": "WARNING",
        "YUYUE_ACCESS_LOG": "off",
        "DJANGO_SETTINGS_MODULE": "yuyue.settings",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")]),
    }
    values: dict[str, Any] = {"cores": rush.cores(), "server_workers": workers, "server_threads": threads}
    values["server"] = Path(server_command("x:y", "127.0.0.1", 1, workers, threads)[2]).name
    values["requests"] = args.requests
    try:

        def bare(port: int) -> list[str]:
            return server_command("ceiling:bare_application", "127.0.0.1", port, workers, threads)

        def framework(port: int) -> list[str]:
            serve = [sys.executable, "-m", "yuyue.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
            return [*serve, "--workers", str(workers), "--threads", str(threads)]

        for name, command_for in (("bare", bare), ("framework", framework)):
            # A port picked just before the start: the load's own connections take ephemeral ports.
            [port] = rush.free_ports(1)
            command = command_for(port)
            log = root / f"{name}.log"
            proc = start(command, env, log, root)
            try:
                url = f"http://127.0.0.1:{port}"
                wait_ready(url + "/", proc, log)
                for level in levels:
                    values.update(measure(name, url, proc.pid, args.requests, level))
            finally:
                stop(proc)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for name, value in values.items():
        print(f"{name}: {rush.fmt(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
