"""The statistics through their front doors: ``GET /api/v1/merchant/stats`` (staff token) and the
console page with its CSV downloads. The numbers themselves are proved in test_stats_numbers.py;
here: the same numbers arrive, scoping and roles hold, bad input is a clear 4xx."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse
from stats_world import PERIOD, Studio, sign_in

from yuyue.accounts import services as accounts

pytestmark = pytest.mark.django_db


def api_get(studio: Studio, role: str | None, **params: str):
    headers = {}
    if role is not None:
        headers["Authorization"] = f"Bearer {accounts.issue_token(staff_user=studio.staff[role])}"
    return Client().get("/api/v1/merchant/stats", {**PERIOD, **params}, headers=headers)


# --- API ------------------------------------------------------------------------------------


def test_api_answers_every_block_in_one_json(studio):
    response = api_get(studio, "owner", day="2025-03-08")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "period",
        "summary",
        "heatmap",
        "weekly",
        "fill_by_offering",
        "fill_by_branch",
        "fill_by_resource",
        "fill_by_slot",
        "top_offerings",
        "ratings",
        "revenue",
        "live",
    }
    assert body["period"] == {"date_from": "2025-03-03", "date_to": "2025-03-16", "day": "2025-03-08", "branch": None}
    assert (body["summary"]["bookings"], body["summary"]["cancellation_rate"]) == (13, 0.3077)
    assert body["heatmap"]["cells"][0] == {"weekday": 1, "hour": 7, "seats": 2}
    assert [w["week_start"] for w in body["weekly"]] == ["2025-03-03", "2025-03-10"]
    assert body["revenue"]["refund_fen"] == 24000 and body["revenue"]["net_fen"] == 32000
    assert body["fill_by_slot"][0]["start"] == "2025-03-08T10:00:00+08:00"  # local time, with its offset
    assert body["top_offerings"][1] == {
        "id": studio.yoga.pk,
        "name": "晨间瑜伽",
        "bookings": 4,
        "seats": 4,
        "amount_fen": 32000,
    }
    assert set(body["live"]) == {"date", "total", "by_offering", "by_branch"}


def test_api_front_desk_and_coach_see_no_money(studio):
    desk = api_get(studio, "staff").json()
    assert desk["revenue"] is None and {r["amount_fen"] for r in desk["top_offerings"]} == {None}
    assert desk["summary"]["bookings"] == 13
    coach = api_get(studio, "coach").json()
    assert coach["revenue"] is None
    assert coach["summary"]["bookings"] == 7  # only 李教练's yoga classes
    assert [r["name"] for r in coach["ratings"]] == ["李教练"]


def test_api_branch_filter_and_branch_limited_staff(studio):
    xuhui = api_get(studio, "owner", branch=str(studio.xuhui.pk)).json()
    assert xuhui["period"]["branch"] == {"id": studio.xuhui.pk, "name": "徐汇店"}
    assert xuhui["summary"]["bookings"] == 6
    assert [r["name"] for r in api_get(studio, "jingan_desk").json()["fill_by_branch"]] == ["静安店"]
    refused = api_get(studio, "jingan_desk", branch=str(studio.xuhui.pk))
    assert refused.status_code == 422 and "branch" in refused.json()["error"]["fields"]


def test_api_never_shows_another_merchants_numbers(studio):
    body = api_get(studio, "owner").json()
    assert "乙馆导览" not in str(body) and "乙总馆" not in str(body)
    refused = api_get(studio, "owner", branch=str(studio.other_branch.pk))
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid"
    token = accounts.issue_token(staff_user=studio.staff["owner"])
    named = Client().get(
        "/api/v1/merchant/stats",
        PERIOD,
        headers={"Authorization": f"Bearer {token}", "X-Merchant": studio.other.slug},
    )
    assert named.status_code == 403 and named.json()["error"]["code"] == "forbidden"
    theirs = api_get(studio, "other_owner").json()
    assert theirs["summary"]["bookings"] == 3 and "晨间瑜伽" not in str(theirs)


def test_api_needs_a_staff_token(studio):
    assert api_get(studio, None).status_code == 401
    customer = accounts.issue_token(user=accounts.get_or_create_user_by_phone("13900001234"))
    for token in ("nonsense", customer):
        response = Client().get("/api/v1/merchant/stats", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date_from": "2025-02-30"}, "date_from"),
        ({"date_to": "03/16/2025"}, "date_to"),
        ({"date_from": "2025-03-16", "date_to": "2025-03-01"}, "date_to"),
        ({"date_from": "2020-01-01", "date_to": "2025-03-16"}, "date_from"),
        ({"branch": "-1"}, "branch"),
        ({"branch": "99999999999999999999999"}, "branch"),
        ({"day": "tomorrow"}, "day"),
    ],
)
def test_api_bad_filters_are_a_translated_422(studio, params, field):
    response = api_get(studio, "owner", **params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"]
    assert error["message"] == "请检查标红的字段。"  # translated, like every API error
    assert all(message for message in error["fields"].values())


# --- Console --------------------------------------------------------------------------------


def console(studio: Studio, role: str) -> Client:
    return sign_in(Client(), studio.staff[role], studio.merchant)


def test_console_page_shows_the_dashboard(studio):
    response = console(studio, "owner").get(reverse("console:stats"), {**PERIOD, "day": "2025-03-08"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "数据统计" in page and 'id="stats-data"' in page and "echarts-5.6.0.min.js" in page
    assert "<script>" not in page.replace('<script type="application/json"', "")  # data only, no inline script
    for chart in ("heatmap", "weekly", "rates", "revenue", "top_offerings", "fill_by_offering", "ratings"):
        assert f'data-chart="{chart}"' in page, chart
    assert "¥320.00" in page and "¥240.00" in page  # booked value and refunds
    assert "30.8 %" in page  # cancellation rate 4 / 13
    assert "下载数据" in page
    assert response.context["charts"]["heatmap"]["cells"][0] == [7, 0, 2]  # 07:00, Monday
    assert "普拉提" in page and "乙馆导览" not in page


def test_console_front_desk_page_has_no_money(studio):
    page = console(studio, "staff").get(reverse("console:stats"), PERIOD).content.decode()
    assert 'data-chart="revenue"' not in page and "¥320.00" not in page and "block=revenue" not in page
    assert "数据统计" in page


def test_console_nav_links_to_the_dashboard_for_every_role(studio):
    for role in ("owner", "staff", "coach"):
        page = console(studio, role).get(reverse("console:bookings")).content.decode()
        assert reverse("console:stats") in page, role


def test_console_bad_filter_says_so(studio):
    response = console(studio, "owner").get(reverse("console:stats"), {"date_from": "2025-99-01"})
    assert response.status_code == 400
    assert "请按 2025-05-01 的格式填写日期。" in response.content.decode()


def read_csv(response) -> list[list[str]]:
    body = response.content
    assert body.startswith("\ufeff".encode()), "a BOM first, for Excel"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_csv_download_of_a_block(studio):
    client = console(studio, "owner")
    response = client.get(reverse("console:stats_csv"), {**PERIOD, "block": "weekly"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="stats-weekly-20250303-20250316.csv"'
    assert read_csv(response) == [
        ["周（周一）", "预约数", "取消数", "爽约数", "到场数", "取消率（%）", "爽约率（%）"],
        ["2025-03-03", "11", "4", "2", "4", "36.4", "33.3"],
        ["2025-03-10", "2", "0", "0", "2", "0.0", "0.0"],
    ]
    xuhui = client.get(reverse("console:stats_csv"), {**PERIOD, "block": "fill_by_branch", "branch": studio.xuhui.pk})
    assert read_csv(xuhui)[1:] == [["徐汇店", "2", "12", "5", "41.7"]]
    money = read_csv(client.get(reverse("console:stats_csv"), {**PERIOD, "block": "revenue"}))
    assert money[0] == ["周（周一）", "预约金额（元）", "线上实收（元）", "退款（元）", "净收入（元）"]
    assert money[-1] == ["合计", "320.00", "560.00", "240.00", "320.00"]


def test_every_chart_link_downloads(studio):
    client = console(studio, "owner")
    page = client.get(reverse("console:stats"), PERIOD).content.decode()
    blocks = {part.split("&")[0] for part in page.split("export.csv?block=")[1:]}
    assert blocks == {
        "heatmap",
        "weekly",
        "revenue",
        "top_offerings",
        "fill_by_offering",
        "fill_by_branch",
        "fill_by_resource",
        "ratings",
        "live",
        "fill_by_slot",
    }
    for block in blocks:
        response = client.get(reverse("console:stats_csv"), {**PERIOD, "block": block})
        assert response.status_code == 200 and len(read_csv(response)) >= 1, block


def test_csv_refusals(studio):
    desk = console(studio, "staff")
    assert desk.get(reverse("console:stats_csv"), {**PERIOD, "block": "revenue"}).status_code == 403
    assert desk.get(reverse("console:stats_csv"), {**PERIOD, "block": "no-such-block"}).status_code == 404
    bad = desk.get(reverse("console:stats_csv"), {"block": "weekly", "date_to": "nope"})
    assert bad.status_code == 400 and "2025-05-01" in bad.content.decode()
    anonymous = Client().get(reverse("console:stats_csv"), {"block": "weekly"})
    assert anonymous.status_code == 302 and "/console/login/" in anonymous["Location"]
