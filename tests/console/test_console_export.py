"""Exports: the .xlsx and the CSV hold exactly the filtered rows, masked unless the role may see them."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from console_world import sign_in
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from factories import make_person, make_slot, make_user
from openpyxl import load_workbook

from yuyue.accounts import services as accounts
from yuyue.booking import services as engine
from yuyue.booking.models import Booking
from yuyue.console import exports
from yuyue.console.access import desk_for
from yuyue.console.selectors import BookingFilter, filter_bookings
from yuyue.core import timeutil
from yuyue.tenants.models import Staff

pytestmark = pytest.mark.django_db

HEADERS = [
    "预约号",
    "项目",
    "门店",
    "开始时间",
    "结束时间",
    "资源",
    "预约人",
    "人数",
    "证件号",
    "手机号",
    "表单内容",
    "状态",
    "金额(元)",
    "已付(元)",
    "下单手机号",
    "代订员工",
    "创建时间",
    "核销时间",
    "取消时间",
    "取消原因",
]


def read_xlsx(content: bytes) -> list[list]:
    sheet = load_workbook(io.BytesIO(content), read_only=True).active
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def read_csv(content: bytes) -> list[list[str]]:
    assert content.startswith("\ufeff".encode())  # a BOM, so that Excel reads UTF-8
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def visits(shop_a):
    """Twelve more exhibition bookings over two days, some cancelled, one with a formula-like name."""
    day2 = make_slot(offering=shop_a.exhibition, start=shop_a.exhibition_slot.start + dt.timedelta(days=1))
    made = []
    for n in range(12):
        owner = make_user()
        name = "=HYPERLINK(1)" if n == 0 else f"观众{n}"
        person = make_person(owner=owner, name=name, phone=f"1371234{n:04d}")
        slot = shop_a.exhibition_slot if n % 2 else day2
        booking = engine.book(user=owner, slot_id=slot.pk, person_ids=[person.pk])
        if n % 3 == 0:
            engine.cancel(booking=booking, by=owner, reason="有事")
        elif n % 3 == 1:
            engine.confirm(booking=booking)
        made.append(booking)
    return made


def test_the_xlsx_holds_exactly_the_filtered_rows(shop_a, visits):
    owner = shop_a.staff["owner"]
    client = sign_in(Client(), owner, shop_a.merchant)
    day = timeutil.local_date(shop_a.exhibition_slot.start)
    params = {"offering": shop_a.exhibition.pk, "date_from": day.isoformat(), "date_to": day.isoformat()}
    response = client.get(reverse("console:bookings_export_xlsx"), params)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    rows = read_xlsx(body(response))

    expected = list(
        filter_bookings(desk_for(Staff.objects.get(user=owner)), BookingFilter.parse(params)).prefetch_related(
            "attendees"
        )
    )
    assert rows[0] == HEADERS
    assert [r[0] for r in rows[1:]] == [b.code for b in expected]
    assert len(expected) == 7  # six of the twelve, and the fixture's own visit
    by_code = {r[0]: dict(zip(HEADERS, r, strict=True)) for r in rows[1:]}
    for booking in expected:
        row = by_code[booking.code]
        assert row["项目"] == shop_a.exhibition.title
        assert row["门店"] == shop_a.branch.name
        assert row["开始时间"] == booking.slot.start.astimezone(timeutil.local_zone()).replace(tzinfo=None)
        assert row["状态"] == booking.get_status_display()
        assert row["金额(元)"] == booking.amount_fen / 100
        names = "、".join(a.name for a in booking.attendees.all())
        assert row["预约人"] == (f"'{names}" if names.startswith("=") else names)
        # Masked for the owner too; full IDs need the audited export (tests/privacy).
        assert row["证件号"] == "、".join(a.id_masked for a in booking.attendees.all())
        if booking.status == "cancelled":
            assert row["取消原因"] == "有事" and row["已付(元)"] == 0
        if booking.status == "confirmed":
            assert row["已付(元)"] == booking.amount_fen / 100


def test_a_formula_typed_as_a_name_stays_text(shop_a, visits):
    client = sign_in(Client(), shop_a.staff["owner"], shop_a.merchant)
    rows = read_xlsx(body(client.get(reverse("console:bookings_export_xlsx"))))
    assert "'=HYPERLINK(1)" in [r[6] for r in rows]
    assert not any(isinstance(v, str) and v.startswith("=") for row in rows for v in row)


def test_front_desk_exports_mask_id_numbers_and_phones(shop_a, visits):
    client = sign_in(Client(), shop_a.staff["staff"], shop_a.merchant)
    rows = read_xlsx(body(client.get(reverse("console:bookings_export_xlsx"), {"offering": shop_a.exhibition.pk})))
    data = [dict(zip(HEADERS, r, strict=True)) for r in rows[1:]]
    assert data and all("********" in row["证件号"] for row in data)
    assert all("****" in row["手机号"] for row in data)
    real = Booking.objects.get(code=data[0]["预约号"]).attendees.first()
    assert real.id_number not in str(data) and real.phone not in str(data)


def test_the_csv_has_the_same_rows_with_a_bom(shop_a, visits):
    client = sign_in(Client(), shop_a.staff["owner"], shop_a.merchant)
    params = {"status": "cancelled"}
    xlsx = read_xlsx(body(client.get(reverse("console:bookings_export_xlsx"), params)))
    response = client.get(reverse("console:bookings_export_csv"), params)
    assert response["Content-Type"].startswith("text/csv")
    rows = read_csv(body(response))
    assert rows[0] == HEADERS
    assert [r[0] for r in rows[1:]] == [r[0] for r in xlsx[1:]]
    assert len(rows) - 1 == Booking.objects.filter(merchant=shop_a.merchant, status="cancelled").count() == 4
    assert all(r[11] == "已取消" for r in rows[1:])


def test_the_merchant_api_exports_the_same_file(shop_a, visits, client):
    token = accounts.issue_token(staff_user=shop_a.staff["manager"])
    params = {"offering": shop_a.exhibition.pk, "q": "观众3"}
    response = client.get("/api/v1/merchant/bookings/export.xlsx", params, HTTP_AUTHORIZATION=f"Bearer {token}")
    rows = read_xlsx(body(response))
    listed = client.get("/api/v1/merchant/bookings", params, HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert listed["count"] == 1
    assert [r[0] for r in rows[1:]] == [b["code"] for b in listed["items"]]


def test_export_queries_do_not_grow_with_the_rows(shop_a, visits):
    desk = desk_for(Staff.objects.get(user=shop_a.staff["owner"]))
    qs = filter_bookings(desk, BookingFilter(offering=shop_a.exhibition.pk))

    def count_queries(limit: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            exports.write_xlsx(desk, qs.filter(pk__in=list(qs.values_list("pk", flat=True)[:limit])), io.BytesIO())
        return len(queries)

    assert count_queries(2) == count_queries(13)


def test_a_bad_filter_is_refused_not_widened(shop_a):
    client = sign_in(Client(), shop_a.staff["owner"], shop_a.merchant)
    response = client.get(reverse("console:bookings_export_xlsx"), {"date_from": "tomorrow"})
    assert response.status_code == 302  # back to the list, which shows the field error
    page = client.get(response["Location"])
    assert page.status_code == 400 and "2025-05-01" in page.content.decode()
    api = client.get(
        "/api/v1/merchant/bookings/export.xlsx",
        {"status": "happy"},
        HTTP_AUTHORIZATION=f"Bearer {accounts.issue_token(staff_user=shop_a.staff['owner'])}",
    )
    assert api.status_code == 422 and "status" in api.json()["error"]["fields"]


def test_only_staff_with_the_export_permission_export(shop_a):
    coach = sign_in(Client(), shop_a.staff["coach"], shop_a.merchant)
    assert coach.get(reverse("console:bookings_export_xlsx")).status_code == 403
    assert coach.get(reverse("console:bookings_export_csv")).status_code == 403


def test_small_chunks_give_the_same_rows_in_the_same_order(shop_a, visits):
    desk = desk_for(Staff.objects.get(user=shop_a.staff["owner"]))
    qs = filter_bookings(desk, BookingFilter())
    in_one = list(exports.rows(desk, qs, chunk_size=1000))
    in_threes = list(exports.rows(desk, qs, chunk_size=3))
    assert in_threes == in_one
    assert [r[0] for r in in_one] == list(qs.values_list("code", flat=True))


def test_every_export_is_in_the_audit_log(shop_a, client):
    from yuyue.console.models import AuditEntry

    desk = sign_in(Client(), shop_a.staff["staff"], shop_a.merchant)
    body(desk.get(reverse("console:bookings_export_csv"), {"status": "confirmed"}))
    token = accounts.issue_token(staff_user=shop_a.staff["owner"])
    body(client.get("/api/v1/merchant/bookings/export.xlsx", HTTP_AUTHORIZATION=f"Bearer {token}"))
    entries = list(AuditEntry.objects.filter(action="booking.export").order_by("id"))
    assert [(e.staff_user, e.detail["format"], e.detail["unmasked"]) for e in entries] == [
        (shop_a.staff["staff"], "csv", False),
        (shop_a.staff["owner"], "xlsx", True),
    ]
    assert entries[0].detail["filters"] == {"status": "confirmed"}
