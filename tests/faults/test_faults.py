"""Faults in the middle of a rush (issue 8): nothing lost, nothing counted twice.

The work is done by ``benchmarks/faults.py`` (its heavy runs print figures); these are the same
runs at a CI scale, on the test database of each pass, with real processes: ``yuyue serve`` and
``yuyue worker`` subprocesses, redis-servers of our own on ports 6391-6396, real HTTP (the worker
fault is in test_worker_fault.py). The server processes share the test database with this
process, so the tests commit for real (``transaction=True``); on SQLite they share the test
database file, which works across processes like the embedded default does. Killing database
connections needs a database server: that fault skips on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from faultkit import faults, passes, redis_port

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Static files collected by the first server start only."""
    return tmp_path_factory.mktemp("static")


@pytest.fixture(scope="module")
def served(
    django_db_setup: None, static_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, Any]]:
    """One `yuyue serve` (one worker, sandbox payments on) for every test here that needs a server,
    with a redis-server of its own when one is installed: a start costs seconds."""
    home = tmp_path_factory.mktemp("served")
    if faults.RedisServer.available():  # no redis-server: the server runs without Redis
        with faults.Server(home, workers=1, static_root=static_root, **faults.server_env()) as server:
            yield server, None
        return
    with faults.redis_backed_server(home, port=redis_port(0), workers=1, static_root=static_root) as pair:
        yield pair


@pytest.mark.concurrency
def test_database_connections_killed_mid_rush_lose_and_double_nothing() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no server connections to kill")
    passes(faults.fault_db_killed(capacity=12, users=24, threads=4, interval=0.4))


def test_redis_stopped_and_restarted_mid_rush_stays_exact(tmp_path: Path, served: tuple[Any, Any]) -> None:
    if served[1] is None:
        pytest.skip(faults.RedisServer.available())
    passes(faults.fault_redis_restart(tmp_path, capacity=25, users=50, concurrency=6, served=served))


def test_one_payment_notification_fifty_times_at_once_confirms_once(tmp_path: Path, served: tuple[Any, Any]) -> None:
    passes(faults.fault_notify_replay(tmp_path, copies=50, server=served[0]))


def test_server_stopped_and_killed_under_load_stays_exact(tmp_path: Path, served: tuple[Any, Any]) -> None:
    # Last in this module: it restarts the shared server twice.
    passes(faults.fault_server_restart(tmp_path, capacity=25, users=60, concurrency=6, server=served[0]))
