"""The dashboard in a real Chromium: ECharts draws every chart on a canvas, with no console errors."""

from __future__ import annotations

import pytest
from stats_world import PASSWORD, build_studio

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def canvas_texts(page, chart: str) -> list[str]:
    """The texts ECharts draws on a chart's canvas (labels, legend, and a tooltip when shown)."""
    return page.evaluate(
        """chart => echarts.getInstanceByDom(document.querySelector(`[data-chart=${chart}]`))
            .getZr().storage.getDisplayList().map(e => (e.style && e.style.text) || "").filter(Boolean)""",
        chart,
    )


def test_dashboard_draws_its_charts_without_errors(new_page):
    studio = build_studio()
    page = new_page(width=1280, height=900)
    problems: list[str] = []

    def on_console(message) -> None:
        # The browser's own favicon request is the site's business, not this page's.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            problems.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto("/console/login/")
    page.fill("#id_username", studio.staff["owner"].username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/bookings/")
    page.get_by_role("link", name="数据统计").click()
    page.wait_for_url("**/console/stats/")

    page.fill("#s_date_from", "2025-03-03")
    page.fill("#s_date_to", "2025-03-16")
    page.get_by_test_id("stats-filters").get_by_role("button", name="显示").click()
    page.wait_for_url("**date_from=2025-03-03**")
    for chart in ("heatmap", "weekly", "rates", "revenue", "top_offerings", "fill_by_offering", "ratings"):
        canvas = page.locator(f"[data-chart={chart}] canvas")
        canvas.first.wait_for(state="visible")
        box = canvas.first.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100, chart
    assert page.get_by_test_id("stat-bookings").inner_text().endswith("13")

    # Hovering a chart shows its tooltip, drawn on the canvas: ECharts' HTML tooltips carry style
    # attributes that the strict CSP blocks (each refusal is a console error, caught below).
    for chart in ("weekly", "revenue"):
        area = page.locator(f"[data-chart={chart}]")
        area.scroll_into_view_if_needed()
        before = canvas_texts(page, chart)
        box = area.locator("canvas").first.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(300)
        assert len(canvas_texts(page, chart)) > len(before), f"no tooltip on {chart}"

    with page.expect_download() as download:
        page.get_by_test_id("csv-heatmap").click()
    assert download.value.suggested_filename == "stats-heatmap-20250303-20250316.csv"
    with open(download.value.path(), encoding="utf-8-sig") as saved:
        assert saved.readline().strip() == "星期,时段,人数"
    assert problems == []
