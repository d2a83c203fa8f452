"""Parallel deductions against one balance: it never goes below zero and always equals its entries.

Each client is a thread with its own connection, all released at once, with real commits. On
PostgreSQL and MariaDB (READ COMMITTED) this proves the conditional UPDATE; SQLite queues writers.
"""

from __future__ import annotations

import pytest
from django.db.models import Sum
from factories import make_merchant, make_user
from racing import race, values

from yuyue.accounts.models import EndUser, PointsEntry
from yuyue.accounts.services import change_points, points_at

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

CLIENTS = 12


def test_parallel_deductions_never_take_a_balance_below_zero():
    user, studio = make_user(), make_merchant()
    change_points(user=user, merchant=studio, delta=50, reason="完成课程")
    entries = values(
        race(*[lambda: change_points(user=user, merchant=studio, delta=-7, reason="迟取消") for _ in range(CLIENTS)])
    )
    taken = sorted(-e.delta for e in entries)
    assert sum(taken) == 50  # 7 × 7 = 49, then the one that found 1 left took 1, the rest took 0
    assert taken == [0] * (CLIENTS - 8) + [1] + [7] * 7
    assert points_at(user=user, merchant_id=studio.pk) == 0
    total = PointsEntry.objects.filter(user=user, merchant=studio).aggregate(s=Sum("delta"))["s"]
    assert total == 0
    assert sorted(e.balance_after for e in entries if e.delta) == [0, 1, 8, 15, 22, 29, 36, 43]
    assert EndUser.objects.get(pk=user.pk).points_balance == 0


def test_parallel_additions_and_deductions_add_up():
    user, studio = make_user(), make_merchant()
    change_points(user=user, merchant=studio, delta=20, reason="完成课程")
    work = [
        (lambda: change_points(user=user, merchant=studio, delta=10, reason="完成课程"))
        if i % 2
        else (lambda: change_points(user=user, merchant=studio, delta=-3, reason="爽约"))
        for i in range(CLIENTS)
    ]
    race(*work)
    balance = points_at(user=user, merchant_id=studio.pk)
    assert balance >= 0
    assert balance == PointsEntry.objects.filter(user=user, merchant=studio).aggregate(s=Sum("delta"))["s"]
    assert balance == 20 + 10 * (CLIENTS // 2) - 3 * (CLIENTS // 2)  # enough points: nothing was capped
