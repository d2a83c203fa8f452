"""The merchant API's booking list: the console's filter, paging, and masking by role."""

from __future__ import annotations

import pytest

from yuyue.accounts import services as accounts
from yuyue.booking.models import Booking

pytestmark = pytest.mark.django_db


def get(client, user, path="/api/v1/merchant/bookings", **params):
    token = accounts.issue_token(staff_user=user)
    return client.get(path, params, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_the_list_has_items_and_count_newest_first(shop_a, client):
    body = get(client, shop_a.staff["manager"]).json()
    codes = list(Booking.objects.filter(merchant=shop_a.merchant).order_by("-id").values_list("code", flat=True))
    assert body["count"] == len(codes) == 5
    assert [b["code"] for b in body["items"]] == codes
    visit = next(b for b in body["items"] if b["code"] == shop_a.visit.code)
    assert visit["offering"] == {"id": shop_a.exhibition.pk, "name": shop_a.exhibition.title}
    assert visit["branch"]["name"] == shop_a.branch.name
    assert visit["status"] == "confirmed" and visit["amount_fen"] == 6000  # two visitors at 30 yuan
    assert len(visit["attendees"]) == 2


def test_filters_and_paging(shop_a, client):
    user = shop_a.staff["owner"]
    by_offering = get(client, user, offering=shop_a.course.pk).json()
    assert {b["code"] for b in by_offering["items"]} == {
        shop_a.booking.code,
        shop_a.past_booking.code,
        shop_a.absent.code,
    }
    by_status = get(client, user, status="pending_approval").json()
    assert [b["code"] for b in by_status["items"]] == [shop_a.pending.code]
    first = get(client, user, limit=2).json()
    second = get(client, user, limit=2, offset=2).json()
    assert first["count"] == second["count"] == 5
    assert len(first["items"]) == len(second["items"]) == 2
    assert not {b["code"] for b in first["items"]} & {b["code"] for b in second["items"]}
    assert get(client, user, date_from="2025-13-01").status_code == 422


def test_front_desk_gets_masked_ids_and_phones_the_owner_does_not(shop_a, client):
    attendee = next(a for a in shop_a.visit.attendees.all() if a.phone == "13912345678")

    def visit_of(user):
        body = get(client, user, q=shop_a.visit.code).json()
        assert body["count"] == 1
        return body["items"][0]

    masked = visit_of(shop_a.staff["staff"])
    full = visit_of(shop_a.staff["owner"])
    masked_attendee = next(a for a in masked["attendees"] if a["name"] == attendee.name)
    full_attendee = next(a for a in full["attendees"] if a["name"] == attendee.name)
    assert masked_attendee["id_number"] == attendee.id_masked and masked_attendee["phone"] == "139****5678"
    # Full ID numbers only through the console's audited action (tests/privacy); phones in full.
    assert full_attendee["id_number"] == attendee.id_masked and full_attendee["phone"] == "13912345678"
    assert masked["account_phone"] == shop_a.customer.phone_masked
    assert full["account_phone"] == shop_a.customer.phone


def test_a_coach_lists_only_their_own_classes(shop_a, client):
    body = get(client, shop_a.staff["coach"]).json()
    assert {b["code"] for b in body["items"]} == {shop_a.booking.code, shop_a.past_booking.code, shop_a.absent.code}
