"""Scale-out: two `yuyue serve` processes and two Celery workers on one PostgreSQL database.

A crowd books one small slot through both servers at once (requests split round-robin, like nginx
in front of several app servers). The database must end exactly full: capacity confirmed, nothing
oversold, no one twice, no 5xx; and the workers must deliver every booking's notification once.
The same machinery as benchmarks/rush.py (imported from it), at test size.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
from django.conf import settings
from django.db import connection
from redisurl import redis_url

pytestmark = [
    pytest.mark.skipif(
        not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="scale-out runs on PostgreSQL: several app servers on one database server",
    ),
    pytest.mark.django_db(transaction=True),
    pytest.mark.concurrency,
]

ROOT = Path(__file__).resolve().parents[2]
CAPACITY = 40
USERS = 200
REDIS_URL = os.environ.get("YUYUE_TEST_REDIS_URL") or redis_url(14)
BROKER_URL = os.environ.get("YUYUE_TEST_BROKER_URL", REDIS_URL)


def load_rush() -> ModuleType:
    spec = importlib.util.spec_from_file_location("yuyue_rush_benchmark", ROOT / "benchmarks" / "rush.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def redis_or_skip(url: str) -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {url}: {exc}")


def forget_gates(url: str) -> None:
    """Booking-gate keys a previous run left for this test database (slot ids start again)."""
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"yuyue:gate:{connection.settings_dict['NAME']}:*"):
        client.delete(key)
    client.close()


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_rush_split_across_two_servers_stays_exact(tmp_path: Path) -> None:
    redis_or_skip(REDIS_URL)
    if BROKER_URL.startswith("redis"):
        redis_or_skip(BROKER_URL)
    rush = load_rush()
    forget_gates(REDIS_URL)

    # The servers and workers see what this test commits (transaction=True): same database, same keys.
    scenario = rush.create_scenario(CAPACITY, USERS, batch=USERS)
    env = {
        **os.environ,
        "YUYUE_DATABASE_URL": database_url(),
        "YUYUE_SECRET_KEY": settings.SECRET_KEY,
        "YUYUE_REDIS_URL": REDIS_URL,
        "YUYUE_BROKER_URL": BROKER_URL,
        "YUYUE_RATE_BOOKING_IP": rush.IP_LIMIT_FOR_RUN,  # the whole crowd comes from 127.0.0.1
        "YUYUE_WAITING_ROOM": "",
        "YUYUE_NOTIFY_QUIET_HOURS": "",
        "YUYUE_LOG_LEVEL": "WARNING",
        "YUYUE_COUNT_QUERIES": str(tmp_path / "queries"),
        "PYTHONPATH": str(ROOT / "src"),
    }
    cluster = rush.Cluster(tmp_path, env)
    began = time.monotonic()
    try:
        cluster.start_servers(2, workers=1)
        cluster.start_workers(2)
        cluster.wait_ready(timeout=120)
        started = time.monotonic()
        load = rush.fire(cluster, scenario, concurrency=USERS, mixed=False, query_dir=tmp_path / "queries")
        check = rush.check_database(scenario)
        report = rush.summarize(load, check, capacity=CAPACITY, users=USERS, mixed=False)
        fired = time.monotonic()
        notifications = rush.wait_for_notifications(scenario.merchant_id, timeout=60)
        print(
            f"servers ready {started - began:.1f}s, rush {fired - started:.1f}s, "
            f"notifications {time.monotonic() - fired:.1f}s"
        )
    finally:
        cluster.stop()
        connection.close()

    # Both servers took their half of the crowd (their access logs say so).
    for server in cluster.servers:
        assert server.log.read_text().count("POST /api/v1/bookings") >= USERS // 2 - 1, server.name
    assert report["problems"] == [], report
    assert (check.confirmed, check.oversold, check.duplicates, report["errors_5xx"]) == (CAPACITY, 0, 0, 0)
    assert report["attempts"] == USERS and report["http_successes"] == CAPACITY
    assert report["errors_other"] == 0, report["errors_other_by_status"]
    # Every booking wrote one confirmation to the outbox; the workers delivered each exactly once.
    assert notifications["delivered"] == CAPACITY, notifications
    assert notifications["pending"] + notifications["sending"] + notifications["failed"] == 0, notifications
    assert notifications["retried"] == 0, notifications
