"""generate_slots run by two processes at once (cron overlapping a manual run): no error, no double slots."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connections
from factories import make_resource, make_schedule

from yuyue.scheduling.models import Slot
from yuyue.scheduling.services import generate_slots

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def test_concurrent_runs_create_each_slot_once_and_count_it_once(merchant, make_offering):
    coach = make_resource(merchant=merchant)
    for hour in (8, 12, 16):
        make_schedule(
            offering=make_offering(),
            start_time=dt.time(hour),
            end_time=dt.time(hour + 3),
            slot_minutes=15,
            resources=[coach],
        )
    barrier = threading.Barrier(4)
    counts: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            counts.append(generate_slots(start=dt.date(2026, 3, 2), days=14))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(counts) == Slot.objects.count() == 3 * 12 * 14
    assert Slot.resources.through.objects.count() == 3 * 12 * 14
