"""Workers: concurrent claimers deliver each row once, a real Celery worker against Redis
delivers, and a worker killed mid-batch (SIGKILL) loses nothing."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection
from factories import make_slot, make_user
from redisurl import redis_url

from yuyue.booking import services
from yuyue.core import timeutil
from yuyue.notify import outbox
from yuyue.notify.events import EVENT_KIND
from yuyue.notify.models import InboxMessage, OutboxItem, OutboxStatus

pytestmark = [pytest.mark.django_db(transaction=True)]

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
REDIS_URL = os.environ.get("YUYUE_TEST_REDIS_URL") or redis_url(14)

SEEN: list[tuple[str, int]] = []
_seen_lock = threading.Lock()


@outbox.handler("test.race")
def _record(item: OutboxItem) -> None:
    with _seen_lock:
        SEEN.append((item.dedupe_id, threading.get_ident()))
    time.sleep(0.002)


def database_url() -> str:
    """The test database, for another process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    scheme = "postgres" if connection.vendor == "postgresql" else "mysql"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"{scheme}://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or ''}/{db['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    from django.conf import settings

    # Same database and same keys (personal data such as phones is encrypted with them).
    env = {
        **os.environ,
        "YUYUE_DATABASE_URL": database_url(),
        "YUYUE_SECRET_KEY": settings.SECRET_KEY,
        "PYTHONPATH": str(SRC),
    }
    env.pop("YUYUE_BROKER_URL", None)
    return {**env, **extra}


def book_many(count: int) -> list[int]:
    start = timeutil.now() + dt.timedelta(days=3)
    slot = make_slot(start=start, capacity=count)
    return [services.book(user=make_user(), slot_id=slot.pk).pk for _ in range(count)]


@pytest.mark.concurrency
def test_concurrent_workers_deliver_each_row_once_per_claim() -> None:
    SEEN.clear()
    for n in range(120):
        outbox.enqueue("test.race", {"n": n}, merchant_id=None)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        try:
            barrier.wait(timeout=30)
            while outbox.deliver_due(limit=7):
                pass
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    counts = Counter(dedupe for dedupe, _thread in SEEN)
    assert len(counts) == 120 and set(counts.values()) == {1}, "every row delivered exactly once"
    assert set(OutboxItem.objects.values_list("status", "attempts")) == {(OutboxStatus.DELIVERED, 1)}
    print(f"{connection.vendor}: 120 rows, 4 workers, threads used: {len({t for _d, t in SEEN})}")


def test_worker_killed_mid_batch_loses_no_notification() -> None:
    bookings = book_many(12)
    assert OutboxItem.objects.filter(kind=EVENT_KIND, payload__event="confirmed").count() == 12
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "notify_slow_worker.py"), "0.3", "50"],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    done = 0
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if line.startswith("done"):
            done += 1
        if done == 4 or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL and done == 4
    stuck = OutboxItem.objects.filter(kind=EVENT_KIND, status=OutboxStatus.SENDING).count()
    assert stuck >= 7, "the killed worker left its claimed rows in 'sending'"
    assert InboxMessage.objects.count() < 12
    # Before the lease ends nobody takes them; after it, another worker delivers them all.
    early = outbox.claim(now=timeutil.now() + dt.timedelta(seconds=10))
    assert not [item for item in early if item.kind == EVENT_KIND]  # only the text messages it fanned out
    for item in early:
        outbox.deliver(item)
    outbox.deliver_all_due(now=timeutil.now() + outbox.lease() + dt.timedelta(seconds=1))
    events = OutboxItem.objects.filter(kind=EVENT_KIND, payload__event="confirmed")
    assert set(events.values_list("status", flat=True)) == {OutboxStatus.DELIVERED}
    per_booking = Counter(InboxMessage.objects.filter(event="confirmed").values_list("booking_id", flat=True))
    assert per_booking == dict.fromkeys(bookings, 1), "every confirmation in the inbox, none twice"


def _redis_answers(url: str = REDIS_URL) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception as exc:
        return f"Redis at {url} does not answer ({exc})"
    return None


def test_real_celery_worker_against_redis_delivers(tmp_path: Path) -> None:
    reason = _redis_answers()
    if reason:
        pytest.skip(reason)
    from celery import Celery

    queue = f"yuyue-test-{uuid.uuid4().hex[:8]}"
    bookings = book_many(5)
    env = child_env(YUYUE_BROKER_URL=REDIS_URL, YUYUE_HOME=str(tmp_path))
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "yuyue.tasks",
            "worker",
            "-Q",
            queue,
            "-c",
            "1",
            "-P",
            "solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        client = Celery(broker=REDIS_URL)
        started = time.monotonic()
        client.send_task("yuyue.run_job", args=("deliver_outbox",), queue=queue)
        while time.monotonic() - started < 20:
            if InboxMessage.objects.filter(event="confirmed").count() == len(bookings):
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        assert worker.poll() is None, "the worker stopped:\n" + log.read_text()
        assert InboxMessage.objects.filter(event="confirmed").count() == len(bookings), log.read_text()
        assert (
            not OutboxItem.objects.filter(kind=EVENT_KIND, payload__event="confirmed")
            .exclude(status=OutboxStatus.DELIVERED)
            .exists()
        )
        print(f"Celery worker delivered {len(bookings)} confirmations in {elapsed:.1f} s")
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    assert "yuyue.run_job" in log.read_text()


@pytest.mark.concurrency
def test_racing_senders_never_spend_one_consent_twice() -> None:
    from yuyue.notify.channels import use_consent
    from yuyue.notify.services import record_consents

    user = make_user()
    record_consents(user=user, template_ids=["TPL", "TPL"])
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def send(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            results.append(use_consent(user.pk, "TPL", f"msg_{n}") is not None)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [False] * 4 + [True] * 2
    used = list(user.subscribe_consents.values_list("used_by", flat=True))
    assert len(set(used)) == 2 and all(u.startswith("msg_") for u in used), "two messages, one consent each"


def test_yuyue_worker_and_its_beat_deliver_without_being_asked(tmp_path: Path) -> None:
    """`yuyue worker` (Celery worker with the beat schedule built in) drains the outbox on its own."""
    url = os.environ.get("YUYUE_TEST_REDIS_BEAT_URL") or redis_url(13)
    reason = _redis_answers(url)
    if reason:
        pytest.skip(reason)
    from celery import Celery

    Celery(broker=url).control.purge()  # nothing left over from an earlier run
    bookings = book_many(3)
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "yuyue.cli", "worker", "--concurrency", "1"],
        env=child_env(YUYUE_BROKER_URL=url, YUYUE_HOME=str(tmp_path)),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        while time.monotonic() - started < 40:
            if InboxMessage.objects.filter(event="confirmed").count() == len(bookings):
                break
            time.sleep(0.3)
        elapsed = time.monotonic() - started
        assert InboxMessage.objects.filter(event="confirmed").count() == len(bookings), log.read_text()[-4000:]
        print(f"yuyue worker (beat every 5 s) delivered {len(bookings)} confirmations {elapsed:.1f} s after start")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
