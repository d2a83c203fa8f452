"""Staff see full ID numbers only through "显示证件号" (POST, owner/manager), and each one is logged."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from django.urls import reverse
from factories import console_sign_in
from openpyxl import load_workbook
from privacy_world import book_at, build_spot, tomorrow

from yuyue.privacy.models import IdReveal

pytestmark = pytest.mark.django_db


@pytest.fixture
def spot():
    return build_spot()


@pytest.fixture
def visit(spot):
    return book_at(spot, tomorrow())


def desk(spot, role: str) -> Client:
    return console_sign_in(Client(HTTP_ACCEPT_LANGUAGE="zh-hans"), spot.staff[role], spot.merchant)


def reveal(client: Client, code: str, purpose: str = "check_identity"):
    return client.post(reverse("console:reveal_ids", args=[code]), {"purpose": purpose, "note": "入口核验"})


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_owner_and_manager_see_full_ids_and_each_decryption_is_one_row(spot, visit, role):
    page = desk(spot, role).get(reverse("console:booking", args=[visit.code])).content.decode()
    numbers = [p.id_number for p in spot.visitors]
    assert not any(n in page for n in numbers) and "显示证件号" in page
    shown = reveal(desk(spot, role), visit.code, "authority")
    assert shown.status_code == 200 and all(n in shown.content.decode() for n in numbers)
    rows = list(IdReveal.objects.order_by("id"))
    assert len(rows) == len(numbers)
    assert {r.attendee.id_number for r in rows} == set(numbers)
    assert {(r.staff_user, r.merchant, r.booking, r.purpose, r.ip, r.note) for r in rows} == {
        (spot.staff[role], spot.merchant, visit, "authority", "127.0.0.1", "入口核验")
    }


def test_front_desk_is_refused_and_nothing_is_decrypted(spot, visit):
    refused = reveal(desk(spot, "staff"), visit.code)
    assert refused.status_code == 403 and not IdReveal.objects.exists()
    assert spot.visitors[0].id_number not in refused.content.decode()


def test_another_merchants_owner_gets_404(spot, visit):
    other = build_spot("别家景区")
    assert reveal(desk(other, "owner"), visit.code).status_code == 404
    assert not IdReveal.objects.exists()


def test_a_purpose_is_required_and_a_get_shows_nothing(spot, visit):
    owner = desk(spot, "owner")
    no_purpose = reveal(owner, visit.code, purpose="")
    assert no_purpose.status_code == 302 and not IdReveal.objects.exists()
    assert owner.get(reverse("console:reveal_ids", args=[visit.code])).status_code == 405


def test_form_answers_with_an_id_are_masked_until_revealed(spot):
    booking = book_at(spot, tomorrow(), offering=spot.activity)
    owner = desk(spot, "owner")
    number = booking.answers["id_card"]
    assert number not in owner.get(reverse("console:booking", args=[booking.code])).content.decode()
    assert number in reveal(owner, booking.code).content.decode()
    assert IdReveal.objects.get().what == "answer"


def test_the_log_lists_every_view_for_the_owner_only(spot, visit):
    reveal(desk(spot, "manager"), visit.code)
    page = desk(spot, "owner").get(reverse("console:id_reveals"))
    assert page.status_code == 200 and visit.code in page.content.decode()
    assert spot.staff["manager"].username in page.content.decode()
    assert desk(spot, "manager").get(reverse("console:id_reveals")).status_code == 403


def id_column(response) -> list[str]:
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    rows = list(sheet.iter_rows(values_only=True))
    column = rows[0].index("证件号")
    return [r[column] for r in rows[1:]]


def test_exports_are_masked_and_full_only_for_the_owner_with_an_audit_row(spot, visit):
    owner = desk(spot, "owner")
    numbers = "、".join(p.id_number for p in spot.visitors)
    assert id_column(owner.get(reverse("console:bookings_export_xlsx"))) == [
        "、".join(p.id_masked for p in spot.visitors)
    ]
    assert not IdReveal.objects.exists()
    full = owner.post(reverse("console:export_full_ids"), {"purpose": "authority"})
    assert full.status_code == 200 and id_column(full) == [numbers]
    row = IdReveal.objects.get()
    assert (row.what, row.count, row.staff_user, row.purpose) == ("export", 2, spot.staff["owner"], "authority")
    assert desk(spot, "manager").post(reverse("console:export_full_ids"), {"purpose": "authority"}).status_code == 403
    assert owner.post(reverse("console:export_full_ids"), {"purpose": ""}).status_code == 302
    assert IdReveal.objects.count() == 1


def test_the_check_in_page_masks_ids_and_offers_the_audited_action(spot, visit):
    page = desk(spot, "owner").post(reverse("console:checkin"), {"code": visit.code}).content.decode()
    assert spot.visitors[0].id_masked in page and spot.visitors[0].id_number not in page
    assert reverse("console:reveal_ids", args=[visit.code]) in page
