"""Screenshots for the README and the merchant guide, taken from a running demo server.

Needs a demo server (`make run`, or `yuyue demo` then `yuyue serve`), Playwright for Python and
Debian's chromium. Run it with the server's settings (same YUYUE_HOME or YUYUE_DATABASE_URL and
secret key): the H5 pages are shot as the demo end user, whose session is made in that database.

    YUYUE_HOME=<the server's> .venv/bin/python scripts/screenshots.py --url http://127.0.0.1:8000

It saves docs/screenshots/h5-*.png (390×844), console-*.png (1280×800), admin-*.png and
api-docs.png. `--only h5,console,admin` takes some of them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import screenshots_console
import screenshots_h5
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ADMIN_PAGES = [
    ("admin-bookings.png", "/admin/booking/booking/"),
    ("admin-slots.png", "/admin/scheduling/slot/?offering__merchant__id__exact=3"),
    ("admin-offering.png", "/admin/catalog/offering/"),
    ("api-docs.png", "/api/v1/docs"),
]


def shoot_admin(browser: Any, base_url: str, out_dir: Path, user: str = "demo-course-owner") -> list[Path]:
    page = browser.new_page(viewport={"width": 1366, "height": 860}, locale="zh-CN")
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", "yuyue-demo")
    page.click("input[type=submit]")
    saved = []
    for name, path in ADMIN_PAGES:
        page.goto(base_url + path)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(out_dir / name))
        saved.append(out_dir / name)
    page.close()
    return saved


SETS = {"h5": screenshots_h5.shoot, "console": screenshots_console.shoot, "admin": shoot_admin}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--only", default=",".join(SETS), help="comma list of: " + ", ".join(SETS))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = args.url.rstrip("/")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        for name in args.only.split(","):
            for path in SETS[name.strip()](browser, base, out):
                print(path)
        browser.close()


if __name__ == "__main__":
    main()
