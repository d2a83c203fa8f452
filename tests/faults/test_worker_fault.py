"""A Celery worker killed (SIGKILL) with a batch of webhooks in flight: none lost, at most the one
request in flight delivered twice, under the same webhook-id.

A module of its own: no `yuyue serve` may be running meanwhile (without a broker a server
drains the outbox itself, every few seconds, and would deliver the batch instead of the worker).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from faultkit import faults, passes, redis_port

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_worker_killed_with_webhooks_in_flight_loses_none(tmp_path: Path) -> None:
    passes(faults.fault_worker_killed(tmp_path, bookings=12, kill_after=3, lease_seconds=2, port=redis_port(1)))
