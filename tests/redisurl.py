"""The Redis the tests use: YUYUE_TEST_REDIS (e.g. ``redis://127.0.0.1:6390``), else the one on 6379.

scripts/test_all_databases.py gives each pass running beside another a redis-server of its own
there, so rate-limit windows, gates and queues of one pass never meet another's."""

from __future__ import annotations

import os

SHARED = "redis://127.0.0.1:6379"


def redis_base() -> str:
    return (os.environ.get("YUYUE_TEST_REDIS") or SHARED).rstrip("/")


def redis_url(db: int) -> str:
    """The address of Redis database ``db`` on the tests' Redis server."""
    return f"{redis_base()}/{db}"
