"""The strict Content-Security-Policy in a real browser: key H5 and console pages load and work
(htmx swaps, the countdown, the calendar bars, confirm dialogs, the charts) with zero violations.

Every page gets a listener for ``securitypolicyviolation`` before any of its own scripts run; a
blocked inline script, inline style, ``eval`` or on…= handler would be recorded there.
"""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from console_world import PASSWORD
from django.contrib.sessions.backends.db import SessionStore
from factories import make_person, make_slot, make_user

from yuyue.booking import services as engine
from yuyue.core import timeutil
from yuyue.h5.auth import SESSION_KEY

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(
    e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sourceFile || "") + ":" + e.lineNumber
  );
});
"""


def watched(new_page, **size):
    page = new_page(**size)
    page.set_default_timeout(30_000)  # a busy CI machine
    page.add_init_script(RECORD_VIOLATIONS)
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text) if "Content Security Policy" in m.text else None)
    page.csp_console = messages
    return page


def wait_until(page, expression: str, seconds: float = 30) -> None:
    """Poll ``expression`` from outside the page (Playwright's wait_for_function evaluates a string
    inside it, which this very CSP forbids as eval)."""
    deadline = time.monotonic() + seconds
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(100)


def violations(page) -> list[str]:
    return list(page.evaluate("window.__csp || []")) + page.csp_console


def sign_in_h5(page, live_server, user) -> None:
    session = SessionStore()
    session[SESSION_KEY] = user.pk
    session.create()
    page.context.add_cookies([{"name": "sessionid", "value": session.session_key, "url": live_server.url}])


def test_h5_pages_work_without_a_single_violation(new_page, live_server, shop_a):
    guest = make_user()
    visitor = make_person(owner=guest)
    unpaid = engine.book(user=guest, slot_id=shop_a.exhibition_slot.pk, person_ids=[visitor.pk])
    assert unpaid.status == "pending_payment"
    page = watched(new_page)
    sign_in_h5(page, live_server, guest)
    seen = []
    for url in ("/", f"/o/{shop_a.course.pk}/", "/me/bookings/", "/me/people/"):
        page.goto(url)
        seen += [f"{url}: {v}" for v in violations(page)]
    # The unpaid booking's countdown is driven by the static script: it ticks as m:ss.
    page.goto(f"/b/{unpaid.code}/")
    countdown = page.get_by_test_id("hold-countdown")
    wait_until(page, "document.querySelector('[data-testid=hold-countdown]').textContent.includes(':')")
    assert re.fullmatch(r"\d+:\d\d", countdown.inner_text().strip())
    # htmx still swaps: the search box on the home page replaces the results without a reload.
    page.goto("/")
    page.fill("#q", shop_a.course.title)
    page.wait_for_url("**q=**")
    # The chat: htmx posts the question, appends the answer, and the static script empties the box.
    page.goto("/chat/")
    page.fill("#question", "怎么取消预约")
    page.locator("form.chat-input button[type=submit]").click()
    wait_until(page, "document.querySelectorAll('#chat-log li').length >= 3")
    assert page.input_value("#question") == ""
    seen += [f"chat: {v}" for v in violations(page)]
    assert not seen, "\n".join(seen)


def test_console_pages_work_without_a_single_violation(new_page, live_server, shop_a):
    page = watched(new_page, width=1280, height=800)
    page.goto("/console/login/")
    page.fill("#id_username", shop_a.staff["owner"].username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/bookings/")
    seen = [f"login: {v}" for v in violations(page)]
    pages = ["/console/bookings/", f"/console/bookings/{shop_a.booking.code}/", "/console/stats/", "/console/checkin/"]
    for url in pages:
        page.goto(url)
        seen += [f"{url}: {v}" for v in violations(page)]
    # The charts are drawn (ECharts from a static file, data from json_script).
    page.goto("/console/stats/")
    page.wait_for_selector("canvas")
    seen += [f"stats: {v}" for v in violations(page)]

    # The calendar's fill bars get their width from data-fill through the static script.
    start = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=1), dt.time(15, 0))
    slot = make_slot(offering=shop_a.course, start=start, capacity=4)
    engine.book(user=make_user(), slot_id=slot.pk)
    page.goto("/console/calendar/")
    wait_until(page, "Array.from(document.querySelectorAll('[data-fill]')).some(e => e.style.width === '25%')")
    seen += [f"calendar: {v}" for v in violations(page)]

    # Close-a-day shows the branch choice only for the branch scope (data-scopes, static script).
    page.goto("/console/closed-days/new/")
    branch_box = page.locator("[data-scope=branch]")
    page.locator("input[name=scope][value=branch]").check()
    assert branch_box.is_visible()
    page.locator("input[name=scope][value=offering]").check()
    assert not branch_box.is_visible()
    seen += [f"close day: {v}" for v in violations(page)]

    # A confirm dialog (data-confirm) that is dismissed stops the closing of a slot.
    page.goto(f"/console/slots/{slot.pk}/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_test_id("close-slot-form").locator("button[type=submit]").click()
    assert page.url.endswith(f"/console/slots/{slot.pk}/")
    slot.refresh_from_db()
    assert slot.status != "closed"

    # Phone booking: choosing an offering submits the filter form (data-autosubmit).
    page.goto("/console/bookings/new/")
    page.select_option("#n_offering", str(shop_a.course.pk))
    page.wait_for_url(f"**offering={shop_a.course.pk}**")
    seen += [f"phone booking: {v}" for v in violations(page)]
    assert not seen, "\n".join(seen)
