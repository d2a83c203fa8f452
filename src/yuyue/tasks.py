"""Background work: one Celery app, and the same jobs as plain functions.

With a broker (YUYUE_BROKER_URL) `yuyue worker` runs them on its beat schedule; without one,
`yuyue serve` calls `run_periodic()` from a thread of its own process every PERIOD_SECONDS.
Every job is idempotent and keeps its truth in the database, so running it twice or late is safe.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

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


def release_expired_holds() -> int:
    """Unpaid bookings past their hold time expire and give their seats back (waitlist first);
    a hold with a payment under way is resolved with the provider first (payments/services.py)."""
    from yuyue.payments import services

    return services.release_expired_holds()


def complete_finished() -> int:
    """Checked-in bookings whose time is over become completed."""
    from yuyue.booking import services

    return services.complete_finished()


def deliver_outbox() -> int:
    """Notifications and webhooks that are due (see notify/outbox.py); returns how many were delivered."""
    from yuyue.notify import outbox

    return outbox.deliver_all_due()


def check_min_attendance() -> int:
    """Classes below their minimum attendance at their check time are cancelled and refunded."""
    from yuyue.booking import services

    return services.check_min_attendance()


def train_recommendations() -> int:
    """Retrain the recommender when its model is over an hour old (the job itself runs every minute)."""
    from yuyue.insights import services

    return services.train_if_stale()


def ledger_checkpoint() -> int:
    """Yesterday's ledger checkpoints (Merkle roots), once per merchant and day."""
    from yuyue.ledger import services

    return services.checkpoint_periodic()


def anonymise_personal_data() -> int:
    """Personal data of bookings finished more than YUYUE_PERSONAL_DATA_RETENTION_DAYS ago is wiped."""
    from yuyue.privacy import services

    return services.anonymise_finished()


JOBS: dict[str, Callable[[], int]] = {
    job.__name__: job
    for job in (
        generate_slots,
        release_expired_holds,
        complete_finished,
        deliver_outbox,
        ledger_checkpoint,
        check_min_attendance,
        train_recommendations,
        anonymise_personal_data,
    )
}


def run_periodic() -> dict[str, object]:
    """Run every periodic job once; a failing job is logged and does not stop the others."""
    results: dict[str, object] = {}
    for name in JOBS:
        try:
            results[name] = run_job(name)
        except Exception as exc:
            log.exception("periodic job %s failed", name)
            results[name] = exc
    return results


@app.task(name="yuyue.run_job", ignore_result=True)
def run_job(name: str) -> int:
    result = JOBS[name]()
    if result:
        log.info("periodic job %s: %s", name, result)
    return result


app.conf.beat_schedule = {
    name: {"task": "yuyue.run_job", "schedule": float(PERIOD_SECONDS), "args": (name,)} for name in JOBS
}


@beat_init.connect
def _run_once_at_start(sender: object = None, **kwargs: object) -> None:
    """Beat's interval schedule first fires a period after start; catch up straight away."""
    for name in JOBS:
        run_job.delay(name)


# The outbox is drained more often than the other jobs: a confirmation should not wait a minute.
OUTBOX_PERIOD_SECONDS = 5
app.conf.beat_schedule["deliver_outbox"]["schedule"] = float(OUTBOX_PERIOD_SECONDS)


@app.task(name="yuyue.deliver_outbox", ignore_result=True)
def deliver_outbox_task(limit: int = 100) -> int:
    """One batch of due outbox rows (beat runs the whole drain through run_job)."""
    from yuyue.notify import outbox

    return outbox.deliver_due(limit=limit)
