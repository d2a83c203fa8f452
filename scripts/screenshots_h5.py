"""Screenshots of the mobile H5 pages at 390×844 for the README, against a running demo server.

    YUYUE_HOME=<the server's> .venv/bin/python scripts/screenshots_h5.py --url http://127.0.0.1:8000

The demo user (phone 13800000001) is signed in with a server-side session made for it in the
server's database, so this must run with the server's settings (same YUYUE_HOME or
YUYUE_DATABASE_URL and secret key). ``shoot()`` is what scripts/screenshots.py calls.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PHONE = {"width": 390, "height": 844}
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _demo_session() -> tuple[str, str]:
    """(session key, code of an upcoming booking, confirmed if possible) for the demo user."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yuyue.settings")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop runs in this thread
    import django

    django.setup()
    from yuyue.accounts.services import get_or_create_user_by_phone
    from yuyue.booking.models import Booking, Status
    from yuyue.core import timeutil
    from yuyue.demo import DEMO_PHONE
    from yuyue.h5.auth import new_session_for

    user = get_or_create_user_by_phone(DEMO_PHONE)
    coming = Booking.objects.filter(user=user, slot__start__gt=timeutil.now()).order_by("slot__start")
    # A confirmed one shows the voucher; any upcoming one will do if there is none.
    booking = coming.filter(status=Status.CONFIRMED).first() or coming.first()
    return new_session_for(user), booking.code if booking else ""


def _show_a_day_with_open_slots(page: Any) -> None:
    """Pick the first day of the strip with a slot still open: in the evening today's may all be past."""
    page.locator(".strip a.day").first.wait_for()
    days = page.locator(".strip a.day:not(.empty)")
    for i in range(days.count()):
        if page.locator(".slot-open").count():
            return
        day_id = days.nth(i).get_attribute("id")
        days.nth(i).click()
        page.locator(f"#{day_id}[aria-current=date]").wait_for()
    page.locator(".slot-open").first.wait_for()


def shoot(browser: Any, base_url: str, out_dir: Path) -> list[Path]:
    """Save h5-*.png of the main pages (signed in as the demo user) into ``out_dir``; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    session_key, booking_code = _demo_session()
    base_url = base_url.rstrip("/")
    host = urlsplit(base_url).hostname or "127.0.0.1"
    context = browser.new_context(viewport=PHONE, locale="zh-CN", base_url=base_url, device_scale_factor=1)
    context.add_cookies([{"name": "sessionid", "value": session_key, "domain": host, "path": "/"}])
    page = context.new_page()
    saved: list[Path] = []

    def save(name: str) -> None:
        page.wait_for_load_state("networkidle")
        path = out_dir / f"h5-{name}.png"
        page.screenshot(path=str(path))
        saved.append(path)

    page.goto("/")
    save("home")
    # The yoga studio: a class with a coach, its date strip and the day's slots.
    page.goto("/?kind=course")
    page.locator(".offering-card a").first.click()
    _show_a_day_with_open_slots(page)
    page.locator("#slots").scroll_into_view_if_needed()
    save("offering")
    # The booking form of the scenic spot: real-name visitors picked from "my people".
    page.goto("/?kind=scenic")
    page.locator(".offering-card a").first.click()
    _show_a_day_with_open_slots(page)
    page.locator(".slot-open a.button").first.click()
    page.locator("#people-picker input[name=people]").first.check()
    save("book")
    if booking_code:
        page.goto(f"/b/{booking_code}/")
        if page.locator(".voucher svg").count():
            page.locator(".voucher svg").scroll_into_view_if_needed()
        save("booking")
    page.goto("/me/bookings/")
    save("my-bookings")
    page.goto("/me/cards/")
    save("cards")
    page.goto("/me/points/")
    save("points")
    # A scenic ticket for one visitor, paid in the sandbox cashier, three days ahead: the demo user's
    # own upcoming ticket is on one of the next two days, and the spot allows one per ID per day.
    page.goto("/?kind=scenic")
    page.locator(".offering-card a").first.click()
    page.goto(page.url.split("?")[0] + "?date=" + (dt.date.today() + dt.timedelta(days=3)).isoformat())
    page.locator(".slot-open a.button").first.click()
    page.locator("#people-picker input[name=people]").first.check()
    page.locator("button[value=book]").click()
    page.wait_for_url("**/b/**")
    save("pay")
    page.locator("button[name=provider]").first.click()
    page.wait_for_url("**/pay/sandbox/**")
    save("cashier")
    page.locator("button[value=pay]").click()
    page.wait_for_url("**/b/**")
    page.goto("/chat/")
    page.fill("#question", "我约了哪些")
    page.locator(".chat-input button[type=submit]").click()
    page.locator("#chat-log li").nth(2).wait_for()  # a string predicate would be eval, which the CSP forbids
    save("chat")

    elder = browser.new_context(viewport=PHONE, locale="zh-CN", base_url=base_url, device_scale_factor=1)
    elder.add_cookies(
        [
            {"name": "sessionid", "value": session_key, "domain": host, "path": "/"},
            {"name": "yuyue_elder", "value": "1", "domain": host, "path": "/"},
        ]
    )
    page = elder.new_page()
    page.goto("/?kind=scenic")
    save("elder")
    elder.close()

    english = browser.new_context(viewport=PHONE, locale="en-US", base_url=base_url, device_scale_factor=1)
    english.add_cookies(
        [
            {"name": "sessionid", "value": session_key, "domain": host, "path": "/"},
            {"name": "django_language", "value": "en", "domain": host, "path": "/"},
        ]
    )
    page = english.new_page()
    page.goto("/?kind=clinic")
    page.locator(".offering-card a").first.click()
    page.locator("#slots").wait_for()
    save("english")
    english.close()
    context.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", default="docs/screenshots")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        for path in shoot(browser, args.url, Path(args.out)):
            print(path)
        browser.close()


if __name__ == "__main__":
    main()
