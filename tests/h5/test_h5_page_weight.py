"""Every H5 page stays light for a slow phone: ≤ 150 KB of JS+CSS, CSS in the head, scripts deferred, no CDN."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse
from factories import make_slot

from yuyue.booking import services as engine

pytestmark = pytest.mark.django_db
BUDGET = 150 * 1024

STYLESHEET = re.compile(r'<link\b[^>]*\brel="stylesheet"[^>]*\bhref="([^"]+)"', re.I)
SCRIPT = re.compile(r"<script\b([^>]*)>", re.I)


def _asset_size(url: str) -> int:
    assert url.startswith(settings.STATIC_URL), f"{url} is not served by this site"
    found = finders.find(url[len(settings.STATIC_URL) :])
    assert found, f"{url} does not exist"
    return Path(found).stat().st_size


def _weigh(page: str) -> int:
    head = page.split("</head>", 1)[0]
    total = 0
    for href in STYLESHEET.findall(page):
        assert href in head, "stylesheets belong in the head (first paint)"
        total += _asset_size(href)
    for attributes in SCRIPT.findall(page):
        src = re.search(r'\bsrc="([^"]+)"', attributes)
        assert src, "no inline scripts"
        assert re.search(r"\b(defer|async)\b", attributes), f"{src.group(1)} blocks the first paint"
        total += _asset_size(src.group(1))
    return total


@pytest.fixture
def pages(signed_in: Client, customer: Any, course_slot: Any, scenic_slot: Any, vehicle_slot: Any) -> list[str]:
    booking = engine.book(user=customer, slot_id=course_slot.pk)
    make_slot(offering=course_slot.offering, start=course_slot.start + dt.timedelta(hours=2))
    return [
        "/",
        "/?kind=course",
        "/?q=瑜伽",
        reverse("h5:offering", args=[course_slot.offering.pk]),
        reverse("h5:book", args=[course_slot.pk]),
        reverse("h5:book", args=[scenic_slot.pk]),
        reverse("h5:book", args=[vehicle_slot.pk]),
        reverse("h5:booking", args=[booking.code]),
        reverse("h5:cancel", args=[booking.code]),
        reverse("h5:reschedule", args=[booking.code]),
        "/me/bookings/",
        "/me/bookings/?tab=past",
        "/me/people/",
        "/signin/",
    ]


def test_no_page_loads_more_than_150_kb_of_js_and_css(signed_in: Client, pages: list[str]) -> None:
    for url in pages:
        response = (Client() if url == "/signin/" else signed_in).get(url)
        assert response.status_code == 200, url
        weight = _weigh(response.content.decode())
        assert 0 < weight <= BUDGET, f"{url}: {weight} bytes of JS+CSS"


def test_assets_are_local_and_the_fonts_are_the_systems(client: Client) -> None:
    page = client.get("/").content.decode()
    assert not re.search(r'(src|href)="(https?:)?//', page), "no CDN: intranet deployments must work"
    css = Path(finders.find("h5/h5.css")).read_text()
    assert "@font-face" not in css and "url(" not in css
