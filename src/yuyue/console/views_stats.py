"""Console statistics: the dashboard page and the CSV behind each of its charts.

The numbers come from ``insights.stats`` (the same functions as ``GET /api/v1/merchant/stats``);
this module only shapes them for ECharts. The page carries them in a JSON script tag that
``console/stats.js`` draws from, so the page has no inline script.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET

from yuyue.console import exports
from yuyue.console.access import Desk, console_view, scope_branches
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.core.money import format_yuan
from yuyue.insights import stats
from yuyue.scheduling.models import SlotStatus
from yuyue.tenants.models import Branch


def _desk(request: HttpRequest) -> Desk:
    return request.desk  # type: ignore[attr-defined,no-any-return]


def _percent(value: float | None) -> float | None:
    return round(value * 100, 1) if value is not None else None


def _yuan(fen: int) -> float:
    return round(fen / 100, 2)


def _fill_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "labels": [r["name"] for r in rows],
        "series": [{"name": _("Fill rate (%)"), "data": [_percent(r["fill_rate"]) for r in rows]}],
    }


def charts(data: dict[str, Any]) -> dict[str, Any]:
    """What ``stats.js`` draws: per chart, its labels and named series (names translated here)."""
    weekly = data["weekly"]
    weeks = [w["week_start"].strftime("%m-%d") for w in weekly]
    found: dict[str, Any] = {
        "heatmap": {
            "hours": [f"{h:02d}" for h in range(24)],
            "weekdays": data["heatmap"]["weekdays"],
            "cells": [[c["hour"], c["weekday"] - 1, c["seats"]] for c in data["heatmap"]["cells"]],
            "name": _("Seats booked"),
        },
        "weekly": {
            "labels": weeks,
            "series": [
                {"name": _("Bookings"), "data": [w["bookings"] for w in weekly]},
                {"name": _("Cancelled"), "data": [w["cancelled"] for w in weekly]},
                {"name": _("No-shows"), "data": [w["no_show"] for w in weekly]},
            ],
        },
        "rates": {
            "labels": weeks,
            "series": [
                {
                    "name": _("Cancellation rate (%)"),
                    "data": [_percent(w["cancellation_rate"]) for w in weekly],
                },
                {"name": _("No-show rate (%)"), "data": [_percent(w["no_show_rate"]) for w in weekly]},
            ],
        },
        "fill_by_offering": _fill_chart(data["fill_by_offering"]),
        "fill_by_branch": _fill_chart(data["fill_by_branch"]),
        "fill_by_resource": _fill_chart(data["fill_by_resource"]),
        "top_offerings": {
            "labels": [r["name"] for r in data["top_offerings"]],
            "series": [{"name": _("Bookings"), "data": [r["bookings"] for r in data["top_offerings"]]}],
        },
        "ratings": {
            "labels": [r["name"] for r in data["ratings"]],
            "series": [{"name": pgettext("stats", "Average rating"), "data": [r["average"] for r in data["ratings"]]}],
        },
    }
    if data["revenue"] is not None:
        money = data["revenue"]["weekly"]
        found["revenue"] = {
            "labels": [w["week_start"].strftime("%m-%d") for w in money],
            "series": [
                {"name": _("Booked value (yuan)"), "data": [_yuan(w["booked_fen"]) for w in money]},
                {"name": _("Paid online (yuan)"), "data": [_yuan(w["paid_fen"]) for w in money]},
                {"name": _("Refunds (yuan)"), "data": [_yuan(w["refund_fen"]) for w in money]},
            ],
        }
    return found


def _percent_text(value: float | None) -> str:
    return f"{value * 100:.1f} %" if value is not None else "—"


def cards(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures above the charts; money only when the desk may see it."""
    s = data["summary"]
    found = [
        {"id": "bookings", "label": _("Bookings"), "value": s["bookings"], "note": ""},
        {
            "id": "fill",
            "label": _("Fill rate"),
            "value": _percent_text(s["fill_rate"]),
            "note": f"{s['reserved']} / {s['capacity']}",
        },
        {
            "id": "cancel",
            "label": _("Cancellation rate"),
            "value": _percent_text(s["cancellation_rate"]),
            "note": _("%(n)d cancelled") % {"n": s["cancelled"]},
        },
        {
            "id": "no-show",
            "label": _("No-show rate"),
            "value": _percent_text(s["no_show_rate"]),
            "note": _("%(n)d no-shows") % {"n": s["no_show"]},
        },
    ]
    if data["revenue"] is not None:
        r = data["revenue"]
        found += [
            {"id": "booked", "label": _("Booked value"), "value": format_yuan(r["booked_fen"]), "note": ""},
            {"id": "paid", "label": _("Paid online"), "value": format_yuan(r["paid_fen"]), "note": ""},
            {
                "id": "refunds",
                "label": _("Refunds"),
                "value": format_yuan(r["refund_fen"]),
                "note": _("net %(amount)s") % {"amount": format_yuan(r["net_fen"])},
            },
        ]
    return found


def slot_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    statuses = dict(SlotStatus.choices)
    return [
        {**r, "fill": _percent(r["fill_rate"]), "status_label": statuses.get(r["status"], r["status"])}
        for r in data["fill_by_slot"]
    ]


def _with_percent(data: dict[str, Any]) -> dict[str, Any]:
    live = data["live"]
    for row in [*live["by_offering"], *live["by_branch"], live["total"]]:
        row["percent"] = _percent(row["share"])
    return data


def _quick_ranges(today: dt.date) -> list[tuple[str, str]]:
    ranges = [(_("Last 7 days"), 7), (_("Last 30 days"), 30), (_("Last 90 days"), 90), (_("Last 12 months"), 365)]
    return [
        (label, urlencode({"date_from": str(today - dt.timedelta(days=days - 1)), "date_to": str(today)}))
        for label, days in ranges
    ]


@console_view("stats.view")
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    desk = _desk(request)
    error: DomainError | None = None
    try:
        period = stats.Period.parse(desk, request.GET)
    except DomainError as exc:
        error, period = exc, stats.Period.parse(desk, {})  # a bad filter shows the default period, said so
    scope = stats.Scope(desk, period)
    data = stats.dashboard(scope)
    params = period.as_params()
    return render(
        request,
        "console/stats.html",
        {
            "data": _with_percent(data),
            "cards": cards(data),
            "slot_rows": slot_rows(data),
            "charts": charts(data),
            "period": period,
            "error": error,
            "query": urlencode(params),
            "revenue_visible": scope.revenue_visible,
            "branches": list(scope_branches(desk, Branch.objects.all()).order_by("name")),
            "quick_ranges": _quick_ranges(timeutil.today()),
        },
        status=400 if error else 200,
    )


@console_view("stats.view")
@require_GET
def export_csv(request: HttpRequest) -> HttpResponse:
    """``?block=<name>`` and the page's filters: the numbers behind one chart, UTF-8 with a BOM."""
    desk = _desk(request)
    name = (request.GET.get("block") or "").strip()
    try:
        period = stats.Period.parse(desk, request.GET)
        headers, rows = stats.table(stats.Scope(desk, period), name)
    except DomainError as exc:
        if exc.code == "not_found":
            raise Http404 from None
        if exc.code == "forbidden":
            return render(request, "console/forbidden.html", {"desk": desk}, status=403)
        details = " ".join(str(v) for v in exc.fields.values())
        return HttpResponse(f"{exc.message} {details}".strip(), status=400, content_type="text/plain; charset=utf-8")
    buffer = io.StringIO()
    buffer.write("\ufeff")  # so that Excel reads the Chinese as UTF-8
    writer = csv.writer(buffer)
    # Offering and branch names are typed by staff: a leading "=" must not become a formula in Excel.
    writer.writerow([exports.spreadsheet_safe(v) for v in headers])
    writer.writerows([exports.spreadsheet_safe(v) for v in row] for row in rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    filename = f"stats-{name}-{period.date_from:%Y%m%d}-{period.date_to:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


urlpatterns = [
    path("stats/", dashboard, name="stats"),
    path("stats/export.csv", export_csv, name="stats_csv"),
]
