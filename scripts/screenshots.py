"""Screenshots for the README: the admin with demo data and the API docs.

Needs a running demo server (`make run`), Playwright for Python (`pip install playwright`) and
Debian's chromium:

    .venv/bin/python scripts/screenshots.py --url http://127.0.0.1:8000 --out docs/screenshots
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PAGES = [
    ("admin-bookings.png", "/admin/booking/booking/"),
    ("admin-slots.png", "/admin/scheduling/slot/?offering__merchant__id__exact=3"),
    ("admin-offering.png", "/admin/catalog/offering/"),
    ("api-docs.png", "/api/v1/docs"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--user", default="demo-course-owner")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1366, "height": 860}, locale="zh-CN")
        page.goto(f"{args.url}/admin/login/")
        page.fill("#id_username", args.user)
        page.fill("#id_password", "yuyue-demo")
        page.click("input[type=submit]")
        for name, path in PAGES:
            page.goto(args.url + path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(out / name))
            print(out / name)
        browser.close()


if __name__ == "__main__":
    main()
