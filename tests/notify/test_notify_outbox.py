"""The outbox: same transaction as the change, keys, retries with backoff, dead rows, leases."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from factories import make_merchant

from yuyue.core import timeutil
from yuyue.notify import outbox
from yuyue.notify.outbox import OutboxItem, OutboxStatus

pytestmark = pytest.mark.django_db

CALLS: list[tuple[str, int]] = []
FAILURES: dict[str, int] = {}


@outbox.handler("test.flaky")
def _flaky(item: OutboxItem) -> None:
    CALLS.append((item.dedupe_id, item.attempts))
    remaining = FAILURES.get(item.payload["name"], 0)
    if remaining:
        FAILURES[item.payload["name"]] = remaining - 1
        raise ConnectionError("receiver down")


@outbox.handler("test.permanent")
def _permanent(item: OutboxItem) -> None:
    raise outbox.Permanent("no address")


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    FAILURES.clear()


def test_rolled_back_change_leaves_no_row() -> None:
    merchant = make_merchant()
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.enqueue("test.flaky", {"name": "a"}, merchant_id=merchant.pk)
        raise RuntimeError("the change failed")
    assert OutboxItem.objects.count() == 0
    with transaction.atomic():
        outbox.enqueue("test.flaky", {"name": "a"}, merchant_id=merchant.pk)
    assert OutboxItem.objects.count() == 1


def test_same_key_twice_is_a_no_op_and_keeps_the_caller_transaction_usable() -> None:
    with transaction.atomic():
        first = outbox.enqueue("test.flaky", {"name": "a"}, merchant_id=None, key="k1")
        again = outbox.enqueue("test.flaky", {"name": "b"}, merchant_id=None, key="k1")
        other = outbox.enqueue("test.flaky", {"name": "c"}, merchant_id=None, key="k2")
    assert again.pk == first.pk and again.payload == {"name": "a"}
    assert other.pk != first.pk
    assert OutboxItem.objects.count() == 2


def test_not_due_before_its_time() -> None:
    now = timeutil.now()
    outbox.enqueue("test.flaky", {"name": "later"}, merchant_id=None, due_at=now + dt.timedelta(hours=1))
    assert outbox.deliver_due(now=now) == 0
    assert outbox.deliver_due(now=now + dt.timedelta(hours=1)) == 1
    assert OutboxItem.objects.get().status == OutboxStatus.DELIVERED


def test_retries_back_off_exponentially_then_deliver(settings) -> None:
    settings.NOTIFY_OUTBOX_BACKOFF_SECONDS = 10
    settings.NOTIFY_OUTBOX_MAX_ATTEMPTS = 5
    FAILURES["x"] = 3
    item = outbox.enqueue("test.flaky", {"name": "x"}, merchant_id=None)
    now = timeutil.now()
    delays = []
    for _ in range(3):
        assert outbox.deliver_due(now=now) == 0
        item.refresh_from_db()
        assert item.status == OutboxStatus.FAILED and "receiver down" in item.last_error
        delays.append((item.next_attempt_at - now).total_seconds())
        assert outbox.deliver_due(now=now) == 0  # not due again yet
        now = item.next_attempt_at
    # base·2^(n-1) with jitter in its upper half: 5-10 s, 10-20 s, 20-40 s
    assert 5 <= delays[0] <= 10 and 10 <= delays[1] <= 20 and 20 <= delays[2] <= 40
    assert outbox.deliver_due(now=now) == 1
    item.refresh_from_db()
    assert item.status == OutboxStatus.DELIVERED and item.attempts == 4 and item.delivered_at
    # The consumer saw one dedupe id on every try.
    assert {dedupe for dedupe, _n in CALLS} == {item.dedupe_id} and [n for _d, n in CALLS] == [1, 2, 3, 4]


def test_dead_after_the_last_try_and_redeliver(settings) -> None:
    settings.NOTIFY_OUTBOX_MAX_ATTEMPTS = 3
    FAILURES["y"] = 100
    merchant = make_merchant()
    item = outbox.enqueue("test.flaky", {"name": "y"}, merchant_id=merchant.pk)
    now = timeutil.now()
    for _ in range(3):
        outbox.deliver_due(now=now)
        item.refresh_from_db()
        now = item.next_attempt_at
    assert item.status == OutboxStatus.DEAD and item.attempts == 3
    assert outbox.deliver_due(now=now + dt.timedelta(days=1)) == 0  # dead rows stay dead
    assert outbox.stats(merchant.pk)[OutboxStatus.DEAD] == 1
    FAILURES["y"] = 0
    assert outbox.redeliver(item.pk, merchant_id=merchant.pk + 1) is False  # another merchant's row
    assert outbox.redeliver(item.pk, merchant_id=merchant.pk) is True
    assert outbox.deliver_due() == 1
    item.refresh_from_db()
    assert item.status == OutboxStatus.DELIVERED and item.attempts == 1


def test_permanent_failure_is_dead_at_once_and_unknown_kind_too() -> None:
    a = outbox.enqueue("test.permanent", {}, merchant_id=None)
    b = outbox.enqueue("test.nobody-handles-this", {}, merchant_id=None)
    outbox.deliver_due()
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, a.attempts, a.last_error) == (OutboxStatus.DEAD, 1, "Permanent: no address")
    assert b.status == OutboxStatus.DEAD and "no handler" in b.last_error


def test_a_claim_left_by_a_dead_worker_is_due_again_after_the_lease(settings) -> None:
    settings.NOTIFY_OUTBOX_LEASE_SECONDS = 60
    item = outbox.enqueue("test.flaky", {"name": "z"}, merchant_id=None)
    now = timeutil.now()
    claimed = outbox.claim(now=now)  # this worker "dies" before delivering
    assert [c.pk for c in claimed] == [item.pk]
    assert outbox.claim(now=now + dt.timedelta(seconds=59)) == []  # still leased
    assert outbox.deliver_due(now=now + dt.timedelta(seconds=61)) == 1
    item.refresh_from_db()
    assert item.status == OutboxStatus.DELIVERED and item.attempts == 2
    # The late first worker cannot overwrite what the second recorded.
    assert outbox.deliver(claimed[0]) == OutboxStatus.DELIVERED
    assert OutboxItem.objects.get(pk=item.pk).attempts == 2
    assert len(CALLS) == 2  # at least once: both ran, the consumer de-duplicates by dedupe id


def test_deliver_all_due_drains_in_batches() -> None:
    for n in range(7):
        outbox.enqueue("test.flaky", {"name": f"n{n}"}, merchant_id=None)
    assert outbox.deliver_all_due(batch=3) == 7
    assert set(OutboxItem.objects.values_list("status", flat=True)) == {OutboxStatus.DELIVERED}
