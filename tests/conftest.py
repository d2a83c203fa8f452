"""Fixtures shared by every test package; the factories behind them are in ``factories.py``.

Test directories have no ``__init__.py``: pytest puts this directory on ``sys.path``, so test
modules import the factories with ``from factories import ...`` (test file names must be unique).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import factories
import pytest

from yuyue.catalog.models import Offering
from yuyue.tenants.models import Branch, Merchant


@pytest.fixture(autouse=True)
def _empty_hot_caches() -> None:
    """In-process caches of settings (core/hotcache.py) must not outlive a rolled-back test."""
    from yuyue.core import hotcache

    hotcache.clear_all()


@pytest.fixture
def merchant(db: None) -> Merchant:
    return factories.make_merchant()


@pytest.fixture
def branch(merchant: Merchant) -> Branch:
    return factories.make_branch(merchant=merchant)


@pytest.fixture
def make_offering(merchant: Merchant) -> Callable[..., Offering]:
    """``make_offering(kind="course", **overrides)``: an offering of the ``merchant`` fixture by default."""

    def make(kind: str = "course", **overrides: Any) -> Offering:
        if "branch" not in overrides:  # with a branch, the branch's merchant is the default
            overrides.setdefault("merchant", merchant)
        return factories.make_offering(kind=kind, **overrides)

    return make


# --- Browser tests -----------------------------------------------------------------------------
# Real Chromium (Debian's /usr/bin/chromium) driven by Playwright against pytest-django's live
# server. They test pages, not databases, so they run once, in the SQLite pass.

CHROMIUM = os.environ.get("YUYUE_CHROMIUM", "/usr/bin/chromium")
PHONE = {"width": 390, "height": 844}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return
    skip = pytest.mark.skip(reason="browser journeys run once, in the SQLite pass")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole session."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls in the test body
    # are still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """``new_page(width=390, height=844, locale="zh-CN")``: a page in a fresh browser context."""
    contexts = []

    def make(width: int = PHONE["width"], height: int = PHONE["height"], locale: str = "zh-CN", **options: Any) -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            locale=locale,
            base_url=live_server.url,
            **options,
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    """A phone-sized page (390×844, zh-CN) whose relative URLs go to the live server."""
    return new_page()
