"""Customers (counts, bans, notes), reviews (hide/show with ratings refreshed) and the audit log page."""

from __future__ import annotations

import datetime as dt

import pytest
from console_world import sign_in
from django.test import Client
from django.urls import reverse
from factories import make_user

from yuyue.accounts import services as accounts
from yuyue.accounts.models import Ban
from yuyue.booking import services as engine
from yuyue.booking.models import Status
from yuyue.catalog.models import Offering, Resource
from yuyue.console.models import AuditEntry, CustomerNote
from yuyue.core import timeutil
from yuyue.core.errors import DomainError

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(shop_a):
    return sign_in(Client(), shop_a.staff["staff"], shop_a.merchant)


def test_the_customer_list_counts_bookings_and_no_shows_at_this_merchant(shop_a, shop_b, desk):
    engine.mark_no_show(booking=shop_a.absent, staff=None)
    page = desk.get(reverse("console:customers")).content.decode()
    assert f"/console/customers/{shop_a.customer.pk}/" in page
    assert f"/console/customers/{shop_b.customer.pk}/" not in page
    from yuyue.console.access import desk_for
    from yuyue.console.selectors import customers
    from yuyue.tenants.models import Staff

    rows = {c.pk: c for c in customers(desk_for(Staff.objects.get(user=shop_a.staff["staff"])))}
    regular = rows[shop_a.customer.pk]
    assert regular.booking_count == 3 and regular.no_show_count == 0 and regular.is_banned
    assert rows[shop_a.absent.user_id].no_show_count == 1


def test_search_customers_by_phone(shop_a, desk):
    page = desk.get(reverse("console:customers"), {"q": shop_a.customer.phone}).content.decode()
    assert f"/console/customers/{shop_a.customer.pk}/" in page
    assert f"/console/customers/{shop_a.absent.user_id}/" not in page


def test_a_customer_of_another_merchant_is_not_found(shop_a, desk):
    stranger = make_user()
    assert desk.get(reverse("console:customer", args=[stranger.pk])).status_code == 404


def test_ban_and_lift_with_reasons_keep_the_history(shop_a, desk):
    customer = shop_a.absent.user
    until = (timeutil.today() + dt.timedelta(days=7)).isoformat()
    desk.post(reverse("console:customer_ban", args=[customer.pk]), {"until": until, "reason": "多次爽约"})
    ban = Ban.objects.get(user=customer, merchant=shop_a.merchant)
    assert ban.reason == "多次爽约" and ban.created_by == shop_a.staff["staff"]
    assert timeutil.local_date(ban.ends_at) == timeutil.today() + dt.timedelta(days=8)  # through the whole day
    # Banned people cannot book here, by phone either.
    with pytest.raises(DomainError) as refused:
        engine.book(user=customer, slot_id=shop_a.later_slot.pk)
    assert refused.value.code == "banned"
    # No reason, no lift.
    desk.post(reverse("console:customer_lift_ban", args=[customer.pk, ban.pk]), {"reason": ""})
    assert Ban.objects.get(pk=ban.pk).lifted_at is None
    desk.post(reverse("console:customer_lift_ban", args=[customer.pk, ban.pk]), {"reason": "已沟通"})
    ban.refresh_from_db()
    assert ban.lifted_at is not None and ban.lift_reason == "已沟通"
    assert Ban.objects.filter(user=customer).count() == 1  # lifted, not deleted
    assert engine.book(user=customer, slot_id=shop_a.later_slot.pk).status == Status.CONFIRMED
    actions = list(
        AuditEntry.objects.filter(object_id=str(customer.pk)).order_by("id").values_list("action", flat=True)
    )
    assert actions == ["customer.ban", "customer.lift_ban"]


def test_a_second_ban_while_one_is_in_force_is_refused(shop_a):
    with pytest.raises(DomainError) as refused:
        accounts.ban(
            user=shop_a.customer,
            merchant=shop_a.merchant,
            until=timeutil.now() + dt.timedelta(days=1),
            reason="again",
            by=None,
        )
    assert refused.value.code == "duplicate"


def test_staff_notes(shop_a, desk):
    desk.post(reverse("console:customer_note", args=[shop_a.customer.pk]), {"text": "喜欢靠窗的位置"})
    note = CustomerNote.objects.filter(merchant=shop_a.merchant, user=shop_a.customer).first()
    assert note.text == "喜欢靠窗的位置" and note.author == shop_a.staff["staff"]
    page = desk.get(reverse("console:customer", args=[shop_a.customer.pk])).content.decode()
    assert "喜欢靠窗的位置" in page
    assert AuditEntry.objects.filter(action="customer.note").exists()


def test_hiding_a_review_refreshes_the_ratings(shop_a):
    owner = sign_in(Client(), shop_a.staff["owner"], shop_a.merchant)
    assert Offering.objects.get(pk=shop_a.course.pk).rating == 4
    owner.post(reverse("console:review_visibility", args=[shop_a.review.pk]), {"hidden": "1"})
    assert Offering.objects.get(pk=shop_a.course.pk).rating is None
    assert Resource.objects.get(pk=shop_a.coach.pk).rating is None
    page = owner.get(reverse("console:reviews"), {"hidden": "1"}).content.decode()
    assert "不错" in page
    owner.post(reverse("console:review_visibility", args=[shop_a.review.pk]), {"hidden": "0"})
    assert Offering.objects.get(pk=shop_a.course.pk).rating == 4
    entries = AuditEntry.objects.filter(object_id=str(shop_a.review.pk)).order_by("id")
    assert list(entries.values_list("action", flat=True)) == [
        "review.hide",
        "review.show",
    ]


def test_the_owner_reads_the_audit_log_filtered_by_staff_action_and_date(shop_a):
    desk = sign_in(Client(), shop_a.staff["staff"], shop_a.merchant)
    desk.post(reverse("console:booking_cancel", args=[shop_a.booking.code]), {"reason": "审计测试"})
    owner = sign_in(Client(), shop_a.staff["owner"], shop_a.merchant)
    page = owner.get(reverse("console:audit"), {"staff": shop_a.staff["staff"].pk}).content.decode()
    assert "审计测试" in page and shop_a.booking.code in page
    page = owner.get(reverse("console:audit"), {"action": "customer.ban"}).content.decode()
    assert "审计测试" not in page
    today = timeutil.today().isoformat()
    page = owner.get(reverse("console:audit"), {"date_from": today, "date_to": today}).content.decode()
    assert "审计测试" in page
    yesterday = (timeutil.today() - dt.timedelta(days=1)).isoformat()
    page = owner.get(reverse("console:audit"), {"date_to": yesterday}).content.decode()
    assert "审计测试" not in page
    assert owner.get(reverse("console:audit"), {"date_from": "soon"}).status_code == 400
    # Managers run the shop but do not read the log.
    manager = sign_in(Client(), shop_a.staff["manager"], shop_a.merchant)
    assert manager.get(reverse("console:audit")).status_code == 403


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_two_staff_banning_one_customer_at_once_make_one_ban():
    import threading
    from collections import Counter

    from console_world import build_shop
    from django.db import connection

    shop = build_shop("并发禁约")
    customer = shop.absent.user
    until = timeutil.now() + dt.timedelta(days=7)
    clients = 6
    barrier = threading.Barrier(clients)
    outcomes: list[str] = []
    lock = threading.Lock()

    def staff_bans(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            accounts.ban(user=customer, merchant=shop.merchant, until=until, reason=f"第{n}位", by=None)
            outcome = "ok"
        except DomainError as exc:
            outcome = exc.code
        except Exception as exc:
            outcome = f"crash:{exc!r}"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=staff_bans, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert Counter(outcomes) == {"ok": 1, "duplicate": clients - 1}, outcomes
    assert Ban.objects.filter(user=customer, merchant=shop.merchant).count() == 1
