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
from django.db import transaction
from django.test import override_settings

from yuyue.catalog.models import Offering
from yuyue.tenants.models import Branch, Merchant


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes() -> Iterator[None]:
    with override_settings(
        PASSWORD_HASHERS=["factories.CheapArgon2PasswordHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    ):
        yield


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


def _touches_database(item: pytest.Item) -> bool:
    fixtures = set(getattr(item, "fixturenames", ()))
    return item.get_closest_marker("django_db") is not None or bool(
        fixtures & {"db", "transactional_db", "django_db_setup", "live_server", "demo_db"}
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from django.conf import settings

    # The modules that read the demo run one after the other, on one load of it (see demo_db).
    users = [item for item in items if "demo_db" in getattr(item, "fixturenames", ())]
    if users:
        first = items.index(users[0])
        others = [item for item in items if "demo_db" not in getattr(item, "fixturenames", ())]
        items[:] = [*others[:first], *users, *others[first:]]

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return
    # What does not depend on the database runs once, in the SQLite pass: browser journeys, tests
    # that never touch the database (pure functions, adapters, parsers), and `once` tests.
    browser = pytest.mark.skip(reason="browser journeys run once, in the SQLite pass")
    no_database = pytest.mark.skip(reason="touches no database: runs once, in the SQLite pass")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(browser)
        elif not _touches_database(item):
            item.add_marker(no_database)
        elif marker := item.get_closest_marker("once"):
            item.add_marker(pytest.mark.skip(reason=f"runs once, in the SQLite pass: {marker.args[0]}"))


# --- The demo, loaded once ---------------------------------------------------------------------
# Loading the demo costs 10-30 s a pass. The modules that read it (test_demo, the payments,
# memberships, statistics and ledger demo tests) ask for ``demo_db``: one load in a transaction,
# kept open while those modules run one after the other (pytest_collection_modifyitems puts them
# together) and rolled back before the next test, so no other test sees it. Each test still runs
# in a transaction of its own inside it, rolled back at its end.


class _OpenDemo:
    atomic: Any = None
    blocker: Any = None

    def close(self) -> None:
        if self.atomic is None:
            return
        with self.blocker.unblock():
            transaction.set_rollback(True)
            self.atomic.__exit__(None, None, None)
        self.atomic = None


_open_demo = _OpenDemo()


@pytest.fixture(scope="session")
def demo_db(django_db_setup: None, django_db_blocker: Any) -> Iterator[Any]:
    """What ``demo.load_demo(scale=factories.DEMO_SCALE)`` returned; the demo's rows are there for the test."""
    from yuyue import demo

    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        _open_demo.atomic, _open_demo.blocker = atomic, django_db_blocker
        try:
            loaded = demo.load_demo(scale=factories.DEMO_SCALE)
        except BaseException:
            _open_demo.close()
            raise
    yield loaded
    _open_demo.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield  # after the test's own transaction and fixtures are gone
    if _open_demo.atomic is not None and (nextitem is None or "demo_db" not in nextitem.fixturenames):
        _open_demo.close()


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
