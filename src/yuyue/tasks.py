"""Background work: one Celery app, and the same jobs as plain functions.

With a broker (YUYUE_BROKER_URL) `yuyue worker` runs these tasks and their beat schedule; without
one, `yuyue serve` calls `run_periodic()` from a thread of its own process every PERIOD_SECONDS.
Every job is idempotent and keeps its truth in the database, so running it twice or late is safe.
"""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import beat_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yuyue.settings")

log = logging.getLogger("yuyue.tasks")

PERIOD_SECONDS = 60
SLOT_DAYS = 30

app = Celery("yuyue")
app.config_from_object("django.conf:settings", namespace="CELERY")


def generate_slots() -> int:
    """Slots for the next SLOT_DAYS days of every schedule (existing slots are left alone)."""
    from yuyue.scheduling import services

    return services.generate_slots(days=SLOT_DAYS)


def complete_finished() -> int:
    """Bookings whose time is over move on (completed / no-show) as the engine decides."""
    from yuyue.booking import services

    return services.complete_finished()


JOBS = [generate_slots, complete_finished]


def run_periodic() -> dict[str, object]:
    """Run every periodic job once; a failing job is logged and does not stop the others."""
    results: dict[str, object] = {}
    for job in JOBS:
        try:
            result = job()
        except Exception as exc:
            log.exception("periodic job %s failed", job.__name__)
            results[job.__name__] = exc
            continue
        results[job.__name__] = result
        if result:
            log.info("periodic job %s: %s", job.__name__, result)
    return results


@app.task(name="yuyue.generate_slots", ignore_result=True)
def generate_slots_task() -> int:
    return generate_slots()


@app.task(name="yuyue.complete_finished", ignore_result=True)
def complete_finished_task() -> int:
    return complete_finished()


app.conf.beat_schedule = {
    "generate-slots": {"task": "yuyue.generate_slots", "schedule": float(PERIOD_SECONDS)},
    "complete-finished": {"task": "yuyue.complete_finished", "schedule": float(PERIOD_SECONDS)},
}


@beat_init.connect
def _run_once_at_start(sender: object = None, **kwargs: object) -> None:
    """Beat's interval schedule first fires a period after start; catch up straight away."""
    generate_slots_task.delay()
    complete_finished_task.delay()
