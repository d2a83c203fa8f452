"""The API's authorisation matrix: every endpoint of ``/api/v1`` against every kind of caller.

The endpoints are read from the OpenAPI document, so a new endpoint without a row in ``MATRIX``
fails ``test_every_api_endpoint_is_in_the_matrix`` until someone says who may call it. A row is:

* ``PUBLIC`` — anyone (catalogue, sign-in, health, the assistant's general questions);
* ``USER`` — an end user's bearer token, and only that user's own objects;
* ``("staff", permission)`` — a staff token whose role has ``permission``, within its merchant;
* ``OPTIONAL_USER`` — anyone, personalised with a token (recommendations);
* ``PROVIDER`` — payment providers, proven by their signature, never by a token.

Every forbidden cell must be refused (401/403/404), never answered with another's data and never
with a 5xx. The console pages have their matrix in ``tests/console/test_console_permissions.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from console_world import Shop, make_staff
from django.test import Client
from factories import make_person, make_slot, make_user
from test_console_permissions import fingerprint, text_of

from yuyue.accounts import services as accounts
from yuyue.accounts.models import Person
from yuyue.api import api
from yuyue.booking import services as engine
from yuyue.booking.models import Booking
from yuyue.console.access import ROLE_PERMISSIONS
from yuyue.core import timeutil

pytestmark = pytest.mark.django_db

PUBLIC = "public"
USER = "user"
OPTIONAL_USER = "optional user"
PROVIDER = "provider"

MATRIX: dict[tuple[str, str], Any] = {
    ("GET", "/health"): PUBLIC,
    ("POST", "/auth/otp"): PUBLIC,
    ("POST", "/auth/login"): PUBLIC,
    ("POST", "/auth/wechat"): PUBLIC,
    ("POST", "/auth/alipay"): PUBLIC,
    ("POST", "/auth/logout"): USER,
    ("GET", "/me"): USER,
    ("GET", "/me/people"): USER,
    ("POST", "/me/people"): USER,
    ("DELETE", "/me/people/{person_id}"): USER,
    ("GET", "/offerings"): PUBLIC,
    ("GET", "/offerings/{offering_id}"): PUBLIC,
    ("GET", "/offerings/{offering_id}/slots"): PUBLIC,
    ("POST", "/bookings"): USER,
    ("GET", "/bookings"): USER,
    ("GET", "/bookings/{code}"): USER,
    ("GET", "/bookings/{code}/cancel-preview"): USER,
    ("POST", "/bookings/{code}/cancel"): USER,
    ("POST", "/bookings/{code}/reschedule"): USER,
    ("GET", "/bookings/{code}/voucher.svg"): USER,
    ("GET", "/bookings/{code}/calendar.ics"): USER,
    ("POST", "/slots/{slot_id}/waitlist"): USER,
    ("DELETE", "/me/waitlist/{entry_id}"): USER,
    ("POST", "/bookings/{code}/review"): USER,
    ("GET", "/merchant/bookings"): ("staff", "bookings.view"),
    ("GET", "/merchant/bookings/export.xlsx"): ("staff", "bookings.export"),
    ("GET", "/merchant/bookings/export.csv"): ("staff", "bookings.export"),
    ("POST", "/merchant/checkins"): ("staff", "checkin"),
    ("GET", "/merchant/stats"): ("staff", "stats.view"),
    ("GET", "/me/inbox"): USER,
    ("POST", "/me/inbox/read"): USER,
    ("POST", "/me/subscriptions"): USER,
    ("GET", "/me/notification-settings"): USER,
    ("PUT", "/me/notification-settings"): USER,
    ("GET", "/recommendations"): OPTIONAL_USER,
    ("GET", "/me/points"): USER,
    ("GET", "/me/cards"): USER,
    ("POST", "/bookings/{code}/pay"): USER,
    ("GET", "/bookings/{code}/payments"): USER,
    ("POST", "/payments/{provider}/notify"): PROVIDER,
    ("POST", "/assistant/ask"): PUBLIC,
    ("POST", "/assistant/actions"): USER,
    ("GET", "/assistant/conversation"): USER,
    # Personal data (PIPL): one's own data, account and ID numbers only.
    ("GET", "/me/data"): USER,
    ("DELETE", "/me"): USER,
    ("DELETE", "/me/people/{person_id}/id-number"): USER,
    ("GET", "/privacy/consent-texts"): PUBLIC,
}


def openapi_operations() -> set[tuple[str, str]]:
    paths = api.get_openapi_schema()["paths"]
    prefix = "/api/v1"
    return {(method.upper(), path.removeprefix(prefix)) for path, ops in paths.items() for method in ops}


def rule_for(method: str, path: str) -> Any:
    """The matrix row, or (for endpoints added after this file) what the document says about auth."""
    return MATRIX.get((method, path))


class World:
    """User A and user B (the two shops' customers), each owning bookings, people and a waitlist entry."""

    def __init__(self, shop_a: Shop, shop_b: Shop) -> None:
        self.a, self.b = shop_a, shop_b
        self.user_a, self.user_b = shop_a.customer, shop_b.customer
        self.token_a = accounts.issue_token(user=self.user_a)
        self.entry = {shop.merchant.pk: self._waitlist_entry(shop) for shop in (shop_a, shop_b)}

    @staticmethod
    def _waitlist_entry(shop: Shop) -> Any:
        start = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=3), dt.time(9, 0))
        full = make_slot(offering=shop.course, start=start, capacity=1)
        engine.book(user=make_user(), slot_id=full.pk)
        return engine.join_waitlist(user=shop.customer, slot_id=full.pk)

    def ids(self, shop: Shop) -> dict[str, Any]:
        """Path parameters naming ``shop``'s customer's objects."""
        person = Person.objects.filter(owner=shop.customer).order_by("pk").first()
        assert person is not None
        return {
            "code": shop.booking.code,
            "person_id": person.pk,
            "entry_id": self.entry[shop.merchant.pk].pk,
            "offering_id": shop.course.pk,
            "slot_id": self.entry[shop.merchant.pk].slot_id,
            "provider": "sandbox",
        }

    def markers_of_b(self) -> list[str]:
        """What only a response leaking user B's private data would contain."""
        codes = list(Booking.objects.filter(user=self.user_b).values_list("code", flat=True))
        names = list(Person.objects.filter(owner=self.user_b).values_list("name", flat=True))
        return [*codes, *names]


def body_for(method: str, path: str, ids: dict[str, Any]) -> dict[str, Any]:
    """A well-formed body naming the objects in ``ids`` (so a refusal is about rights, not syntax)."""
    bodies: dict[str, dict[str, Any]] = {
        "/bookings": {"slot_id": ids["slot_id"], "people": [ids["person_id"]]},
        "/bookings/{code}/cancel": {"reason": "matrix"},
        "/bookings/{code}/reschedule": {"slot_id": ids["slot_id"]},
        "/slots/{slot_id}/waitlist": {"people": [ids["person_id"]]},
        "/bookings/{code}/review": {"rating": 1, "text": "matrix"},
        "/bookings/{code}/pay": {"provider": "sandbox", "channel": "cashier"},
        "/me/people": {"name": "矩阵", "relation": "other"},
        "/me/subscriptions": {"template_ids": ["t1"]},
        "/assistant/actions": {"type": "cancel", "booking": ids["code"]},
        "/assistant/ask": {"question": "我约了哪些"},
    }
    return bodies.get(path, {}) if method in {"POST", "PUT"} else {}


def call(method: str, path: str, ids: dict[str, Any], token: str | None = None, **query: Any) -> Any:
    url = "/api/v1" + re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = Client()
    if method == "GET":
        return client.get(url, query, headers=headers)
    if method == "DELETE":
        return client.delete(url, headers=headers)
    send = client.post if method == "POST" else client.put
    return send(url, body_for(method, path, ids), content_type="application/json", headers=headers)


def cells(kind: Any) -> list[tuple[str, str]]:
    return sorted(op for op in openapi_operations() if rule_for(*op) == kind or (kind == "staff" and _staff(op)))


def _staff(op: tuple[str, str]) -> bool:
    rule = rule_for(*op)
    return isinstance(rule, tuple) and rule[0] == "staff"


# --- The tests --------------------------------------------------------------------------------


def test_every_api_endpoint_is_in_the_matrix():
    operations = openapi_operations()
    missing = sorted(operations - set(MATRIX))
    assert not missing, f"API endpoints without an authorisation-matrix row: {missing}"
    stale = sorted(set(MATRIX) - operations)
    assert not stale, f"matrix rows for endpoints that no longer exist: {stale}"
    for op, rule in MATRIX.items():
        if isinstance(rule, tuple):
            assert rule[1] in {p for perms in ROLE_PERMISSIONS.values() for p in perms}, op


def test_the_documented_security_agrees_with_the_matrix():
    """What the OpenAPI document tells client writers matches what the matrix tests."""
    paths = api.get_openapi_schema()["paths"]
    for path, ops in paths.items():
        for method, op in ops.items():
            rule = rule_for(method.upper(), path.removeprefix("/api/v1"))
            secured = bool(op.get("security"))
            assert secured == (rule not in (PUBLIC, PROVIDER)), (method, path, rule, op.get("security"))


def test_anonymous_callers_and_forged_tokens_get_401_on_every_protected_endpoint(shop_a, shop_b):
    world = World(shop_a, shop_b)
    failures = []
    protected = [op for op in openapi_operations() if rule_for(*op) == USER or _staff(op)]
    assert len(protected) >= 30
    for method, path in protected:
        for token in (None, "forged-token", world.token_a[:-2] + "xx"):
            response = call(method, path, world.ids(shop_a), token)
            if response.status_code != 401 or response.json()["error"]["code"] != "unauthorized":
                failures.append(f"{method} {path} token={token!r}: {response.status_code}")
    assert not failures, "\n".join(failures)


def test_an_expired_or_revoked_token_is_refused_everywhere(shop_a, shop_b, monkeypatch):
    world = World(shop_a, shop_b)
    expiring = accounts.issue_token(user=world.user_a, ttl=dt.timedelta(days=1))
    revoked = accounts.issue_token(user=world.user_a)
    accounts.revoke_token(revoked)
    staff_expiring = accounts.issue_token(staff_user=shop_a.staff["owner"], ttl=dt.timedelta(days=1))
    assert call("GET", "/me", {}, expiring).status_code == 200
    assert call("GET", "/merchant/bookings", {}, staff_expiring).status_code == 200
    later = timeutil.now() + dt.timedelta(days=1, seconds=1)
    monkeypatch.setattr(timeutil, "now", lambda: later)
    failures = []
    for method, path in [op for op in openapi_operations() if rule_for(*op) == USER or _staff(op)]:
        token = staff_expiring if _staff((method, path)) else expiring
        for raw in (token, revoked):
            status = call(method, path, world.ids(shop_a), raw).status_code
            if status != 401:
                failures.append(f"{method} {path}: {status}")
    assert not failures, "\n".join(failures)


def test_user_a_cannot_read_or_change_user_bs_objects(shop_a, shop_b):
    """A's token with B's booking code, person, waitlist entry in the path or the body: refused."""
    world = World(shop_a, shop_b)
    ids_b = world.ids(shop_b)
    hidden = world.markers_of_b()
    before = fingerprint(shop_b)
    people_before = sorted(Person.objects.filter(owner=world.user_b).values_list("pk", flat=True))
    failures = []
    for method, path in cells(USER):
        if not re.search(r"\{(code|person_id|entry_id)\}", path) and (method, path) not in {
            ("POST", "/bookings"),
            ("POST", "/assistant/actions"),
        }:
            continue
        ids = dict(ids_b)
        if path == "/bookings":  # A books a slot A may book, with B's person
            ids["slot_id"] = shop_a.later_slot.pk
        response = call(method, path, ids, world.token_a)
        text = text_of(response)
        if response.status_code >= 500:
            failures.append(f"{method} {path}: {response.status_code}")
        elif response.status_code not in (403, 404, 422) and not (
            path == "/assistant/actions" and response.status_code == 200 and not response.json()["booking"]
        ):
            failures.append(f"{method} {path}: {response.status_code} {text[:200]}")
        leaked = [m for m in hidden if m in text.replace(ids_b["code"] + "/", "")]
        if leaked and response.status_code < 400:
            failures.append(f"{method} {path} shows B's {leaked}")
    # Queueing for a full real-name slot of A's shop with B's person (count-based offerings ignore people).
    full = make_slot(offering=shop_a.exhibition, start=shop_a.later_slot.start + dt.timedelta(hours=3), capacity=1)
    other = make_user()
    engine.book(user=other, slot_id=full.pk, person_ids=[make_person(owner=other).pk])
    response = call("POST", "/slots/{slot_id}/waitlist", {**ids_b, "slot_id": full.pk}, world.token_a)
    if response.status_code not in (403, 404, 422):
        failures.append(f"waitlist with B's person: {response.status_code}")
    assert not failures, "\n".join(failures)
    assert fingerprint(shop_b) == before, "B's bookings or merchant data changed"
    assert sorted(Person.objects.filter(owner=world.user_b).values_list("pk", flat=True)) == people_before
    assert engine.waitlist_position(world.entry[shop_b.merchant.pk]) >= 1  # still queued


def test_lists_of_user_a_never_contain_user_bs_data(shop_a, shop_b):
    world = World(shop_a, shop_b)
    hidden = world.markers_of_b()
    lists = [op for op in cells(USER) + cells(OPTIONAL_USER) if op[0] == "GET" and "{" not in op[1]]
    assert ("GET", "/bookings") in lists and ("GET", "/me/people") in lists
    for method, path in lists:
        response = call(method, path, {}, world.token_a)
        assert response.status_code == 200, (path, response.status_code)
        assert not [m for m in hidden if m in text_of(response)], path
    asked = call("POST", "/assistant/ask", world.ids(shop_a), world.token_a)
    assert asked.status_code == 200 and not [m for m in hidden if m in text_of(asked)]


def test_staff_tokens_do_not_open_customer_endpoints(shop_a, shop_b):
    world = World(shop_a, shop_b)
    token = accounts.issue_token(staff_user=shop_a.staff["owner"])
    for method, path in cells(USER):
        status = call(method, path, world.ids(shop_a), token).status_code
        assert status in (401, 403), (method, path, status)


def test_customer_tokens_do_not_open_merchant_endpoints(shop_a, shop_b):
    world = World(shop_a, shop_b)
    for method, path in cells("staff"):
        assert call(method, path, world.ids(shop_a), world.token_a).status_code == 401, path


def merchant_call(method: str, path: str, token: str, shop: Shop) -> Any:
    """A merchant endpoint naming ``shop``'s objects in every filter (or, for check-in, its voucher)."""
    if method == "POST":
        body = {"voucher": engine.voucher_for(shop.booking)}
        return Client().post(
            "/api/v1" + path, body, content_type="application/json", headers={"Authorization": f"Bearer {token}"}
        )
    query = {"offering": shop.course.pk, "branch": shop.branch.pk, "q": shop.booking.code}
    return Client().get("/api/v1" + path, query, headers={"Authorization": f"Bearer {token}"})


def test_staff_of_merchant_a_never_see_or_touch_merchant_b(shop_a, shop_b):
    before = fingerprint(shop_b)
    hidden = [*Booking.objects.filter(merchant=shop_b.merchant).values_list("code", flat=True), shop_b.merchant.name]
    failures = []
    for role in ("owner", "manager", "staff", "coach"):
        token = accounts.issue_token(staff_user=shop_a.staff[role])
        for method, path in cells("staff"):
            response = merchant_call(method, path, token, shop_b)
            if response.status_code >= 500:
                failures.append(f"{role} {method} {path}: {response.status_code}")
            elif response.status_code < 400 and [m for m in hidden if m in text_of(response).replace("q=", "")]:
                failures.append(f"{role} {method} {path} shows B's data")
    assert not failures, "\n".join(failures)
    assert fingerprint(shop_b) == before


@pytest.mark.parametrize("role", ["manager", "staff", "coach", "doctor", "driver"])
def test_every_merchant_endpoint_refuses_a_role_without_its_permission(shop_a, role):
    token = accounts.issue_token(staff_user=shop_a.staff[role])
    before = fingerprint(shop_a)
    for method, path in cells("staff"):
        permission = MATRIX[(method, path)][1]
        status = merchant_call(method, path, token, shop_a).status_code
        if permission in ROLE_PERMISSIONS[role]:
            assert status < 500 and status != 403, (role, method, path, status)
        else:
            assert status == 403, (role, method, path, status)
    if "checkin" not in ROLE_PERMISSIONS[role]:
        assert fingerprint(shop_a) == before


def test_a_deactivated_staff_member_loses_api_access(shop_a):
    user = make_staff(shop_a.merchant, "manager")
    token = accounts.issue_token(staff_user=user)
    assert call("GET", "/merchant/bookings", {}, token).status_code == 200
    user.staff_roles.update(is_active=False)
    assert call("GET", "/merchant/bookings", {}, token).status_code in (401, 403)


def test_public_endpoints_answer_anyone_without_5xx(shop_a, shop_b):
    world = World(shop_a, shop_b)
    for method, path in cells(PUBLIC) + cells(OPTIONAL_USER):
        response = call(method, path, world.ids(shop_a))
        assert response.status_code < 500 and response.status_code != 401, (method, path, response.status_code)


def test_payment_notifications_are_proven_by_signature_not_by_a_token(shop_a, shop_b):
    """A forged callback (no or a wrong signature) is refused even with a valid token."""
    world = World(shop_a, shop_b)
    for _method, path in cells(PROVIDER):
        for token in (None, world.token_a):
            for provider in ("sandbox", "wechat", "alipay"):
                ids = {**world.ids(shop_a), "provider": provider}
                url = "/api/v1" + path.replace("{provider}", provider)
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                forged = f'{{"out_trade_no": "P-{shop_a.booking.code}", "amount_fen": 1, "status": "paid"}}'
                response = Client().post(url, forged, content_type="application/json", headers=headers)
                assert response.status_code in (400, 401, 403, 404), (provider, response.status_code, ids)
    assert Booking.objects.get(pk=shop_a.booking.pk).status == shop_a.booking.status
