"""CSRF: every POST form carries the token, and every page URL refuses a POST without one.

The URLs are enumerated from the root URL resolver (everything but the JSON API, which takes
bearer tokens and no cookies, and Django's admin), so a new page is covered without a new line here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from console_world import Shop, sign_in
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from factories import make_person
from h5_session import sign_in_client
from test_console_permissions import all_cases

import yuyue

pytestmark = pytest.mark.django_db

TEMPLATES = sorted(Path(yuyue.__file__).resolve().parent.rglob("templates/**/*.html"))
FORM = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)


def page_urls() -> list[tuple[str, Any]]:
    """(route, pattern) of every page: walk the resolver, skipping the API and the admin."""
    found: list[tuple[str, Any]] = []

    def walk(patterns: list[Any], prefix: str, namespace: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if route.startswith(("api/", "admin/")):
                continue
            if isinstance(p, URLResolver):
                ns = ":".join(x for x in (namespace, p.namespace) if x)
                walk(p.url_patterns, route, ns)
            elif isinstance(p, URLPattern) and p.name:
                found.append((f"{namespace}:{p.name}" if namespace else p.name, p))

    walk(get_resolver().url_patterns, "", "")
    return found


def kwargs_for(pattern: URLPattern, shop: Shop) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, converter in pattern.pattern.converters.items():
        if name == "code":
            out[name] = shop.booking.code
        elif type(converter).__name__ == "IntConverter":
            out[name] = 1
        elif "date" in type(converter).__name__.lower() or name == "day":
            out[name] = "2030-01-01"
        else:
            out[name] = "x"
    return out


def test_every_post_form_in_the_templates_has_the_token():
    assert len(TEMPLATES) > 40
    missing = []
    for path in TEMPLATES:
        for form in FORM.findall(path.read_text()):
            opening = form[: form.index(">") + 1].lower()
            if 'method="post"' in opening and "{% csrf_token %}" not in form:
                missing.append(f"{path.name}: {opening[:120]}")
    assert not missing, "POST forms without {% csrf_token %}:\n" + "\n".join(missing)


def _forms_without_token(html: str) -> list[str]:
    bad = []
    for form in FORM.findall(html):
        opening = form[: form.index(">") + 1]
        if re.search(r'method=["\']?post', opening, re.I) and 'name="csrfmiddlewaretoken"' not in form:
            bad.append(opening[:160])
    return bad


def test_every_rendered_console_page_puts_the_token_in_its_post_forms(shop_a):
    client = sign_in(Client(), shop_a.staff["owner"], shop_a.merchant)
    failures = []
    pages = 0
    for case in all_cases(shop_a):
        if case.method != "GET":
            continue
        response = case.send(client)
        if response.status_code == 200 and "text/html" in response["Content-Type"]:
            pages += 1
            failures += [f"{case.url}: {f}" for f in _forms_without_token(response.content.decode())]
    assert pages > 20
    assert not failures, "\n".join(failures)


def test_every_rendered_h5_page_puts_the_token_in_its_post_forms(shop_a):
    user = shop_a.customer
    client = sign_in_client(Client(), user)
    person = make_person(owner=user)
    visit = shop_a.visit
    urls = [
        reverse("h5:home"),
        reverse("h5:offering", args=[shop_a.course.pk]),
        reverse("h5:book", args=[shop_a.later_slot.pk]),
        reverse("h5:book", args=[shop_a.exhibition_slot.pk]),
        reverse("h5:my_bookings"),
        reverse("h5:people"),
        reverse("h5:booking", args=[shop_a.booking.code]),
        reverse("h5:booking", args=[visit.code]),
        reverse("h5:booking", args=[shop_a.past_booking.code]),
        reverse("h5:reschedule", args=[shop_a.booking.code]),
        reverse("h5:inbox"),
        reverse("h5:notification_settings"),
        reverse("assistant:chat"),
    ]
    failures = []
    for url in [*urls, reverse("h5:signin"), reverse("console:login")]:
        response = (client if url in urls else Client()).get(url)
        assert response.status_code == 200, (url, response.status_code)
        failures += [f"{url}: {f}" for f in _forms_without_token(response.content.decode())]
    assert person.pk and not failures, "\n".join(failures)


def test_a_post_without_the_token_is_refused_by_every_page(shop_a):
    """A browser signed in to both the console and the H5: a forged cross-site POST to any page is refused."""
    client = Client(enforce_csrf_checks=True)
    sign_in(client, shop_a.staff["owner"], shop_a.merchant)
    sign_in_client(client, shop_a.customer)
    client.get(reverse("h5:home"))  # the CSRF cookie is set; the forged form cannot read it
    routes = page_urls()
    assert len(routes) > 80
    accepted = []
    for name, pattern in routes:
        try:
            url = reverse(name, kwargs=kwargs_for(pattern, shop_a))
        except Exception as exc:  # a converter this test does not know: say so, do not skip silently
            raise AssertionError(f"cannot build a URL for {name}: {exc}") from exc
        response = client.post(url, {"reason": "forged", "confirm": "yes"})
        if response.status_code not in (403, 405):
            accepted.append(f"{name} {url}: {response.status_code}")
    assert not accepted, "POST without a CSRF token was not refused:\n" + "\n".join(accepted)


def test_the_same_post_with_the_token_gets_through(shop_a):
    """The refusals above are CSRF's, not something else: with the token the sign-out works."""
    client = Client(enforce_csrf_checks=True)
    sign_in_client(client, shop_a.customer)
    page = client.get(reverse("h5:my_bookings"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token
    assert client.post(reverse("h5:signout")).status_code == 403
    response = client.post(reverse("h5:signout"), {"csrfmiddlewaretoken": token.group(1)})
    assert response.status_code == 302
