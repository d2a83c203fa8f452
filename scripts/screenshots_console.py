"""Screenshots of the merchant console for docs/merchant-guide.md (1280×800, Simplified Chinese).

Needs a running demo (`yuyue demo` then `yuyue serve`), Playwright for Python and Debian's chromium:

    .venv/bin/python scripts/screenshots_console.py --url http://127.0.0.1:8000 --out docs/screenshots

It signs in through the console's own sign-in page as the yoga studio's owner and only looks:
the close-a-day page is shot at its preview step, before anything would be cancelled.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
USERNAME = "demo-course-owner"  # the yoga studio (course kind) of yuyue.demo
PASSWORD = "yuyue-demo"
SIZE = {"width": 1280, "height": 800}
ZONE = ZoneInfo("Asia/Shanghai")  # the demo merchants' day


def shoot(browser: Any, base_url: str, out_dir: Path) -> list[Path]:
    """Sign in as the demo owner and save console-*.png of the main console pages; returns the files."""
    base = base_url.rstrip("/")
    out_dir.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=SIZE, locale="zh-CN", base_url=base)
    context.set_default_timeout(20_000)
    page = context.new_page()
    saved: list[Path] = []

    def save(name: str) -> None:
        page.wait_for_load_state("networkidle")
        path = out_dir / f"console-{name}.png"
        page.screenshot(path=str(path))
        saved.append(path)

    def first_href(selector: str) -> str | None:
        link = page.locator(selector).first
        return link.get_attribute("href") if link.count() else None

    try:
        page.goto("/console/login/")
        page.fill("#id_username", USERNAME)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")

        today = dt.datetime.now(ZONE).date()
        page.goto("/console/bookings/")
        save("bookings")
        if href := first_href("[data-testid=booking-list] tbody a"):
            page.goto(href)
            save("booking-detail")
        week_ago, in_a_week = today - dt.timedelta(days=7), today + dt.timedelta(days=7)
        page.goto(f"/console/bookings/?date_from={week_ago}&date_to={in_a_week}&status=confirmed")
        export = page.locator("[data-testid=export-xlsx]")
        if export.count():
            export.first.hover()
        save("export")

        page.goto(f"/console/calendar/?date={today}")
        save("calendar")
        page.goto(f"/console/calendar/?view=day&date={today + dt.timedelta(days=1)}")
        save("calendar-day")
        if href := first_href("[data-testid=calendar] [data-testid=slot]"):
            page.goto(href)
            save("slot")
        page.goto("/console/schedules/")
        save("schedules")
        if href := first_href("[data-testid=schedule-row] a.button"):
            page.goto(href)
            save("schedule-editor")
        page.goto(f"/console/closed-days/new/?date={today + dt.timedelta(days=2)}")
        page.fill("#id_reason", "台风红色预警，暂停营业")
        page.click("[data-testid=close-day-form] button[type=submit]")
        page.wait_for_selector("[data-testid=close-day-preview]")
        save("close-day")  # the preview: nothing is closed
        page.goto("/console/offerings/")
        save("offerings")
        if href := first_href("[data-testid=offering-list] a.button"):
            page.goto(href)
            save("offering-editor")
            page.evaluate("document.querySelector('[data-testid=policy]').scrollIntoView()")
            save("offering-policy")
        page.goto("/console/resources/")
        save("resources")
        page.goto("/console/checkin/")
        save("checkin")
        page.goto("/console/customers/")
        save("customers")
        page.goto("/console/stats/")
        page.wait_for_selector("[data-chart=heatmap] canvas")
        save("stats")
        page.evaluate("document.querySelector('.stats-grid').scrollIntoView()")
        save("stats-charts")
        page.goto("/console/payments/")
        save("payments")
        page.goto("/console/cards/")
        save("cards")
        page.goto("/console/service/")
        if href := page.locator("main table a").first.get_attribute("href"):
            page.goto(href)
        save("service")
    finally:
        context.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", default="docs/screenshots")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            for path in shoot(browser, args.url, Path(args.out)):
                print(path)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
