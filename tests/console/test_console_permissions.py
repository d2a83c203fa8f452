"""The permission matrix: staff of merchant A can neither read nor change anything of merchant B,
through any console URL or merchant API endpoint; a role without a permission gets 403.

The console URL patterns are enumerated from ``yuyue.console.urls``, so a new page without a row
here fails ``test_every_console_url_is_in_the_matrix``. The set-up pages (schedules, slots,
calendar, resources, offerings) bring their own rows: ``setup_url_cases(shop)`` in
``tests/console_setup/urls_under_test.py`` returns ``[(url_name, kwargs, method,
required_permission)]`` for the objects of a ``conftest.Shop`` (it may create more objects of
``shop.merchant``, e.g. a schedule or a closed date). The same function is called with merchant
B's shop for the cross-merchant checks and with merchant A's shop for the role checks.
"""

from __future__ import annotations

import importlib.util
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from console_world import Shop, make_staff, sign_in
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse
from openpyxl import load_workbook

from yuyue.accounts import services as accounts
from yuyue.accounts.models import Ban, PointsBalance
from yuyue.booking import services as engine
from yuyue.booking.models import Attendee, Booking, BookingEvent, Review
from yuyue.catalog.models import Offering, Resource
from yuyue.console import urls as console_urls
from yuyue.console.access import PERMISSIONS, ROLE_PERMISSIONS
from yuyue.console.models import AuditEntry, CustomerNote
from yuyue.memberships.models import Card, CardProduct
from yuyue.scheduling.models import ClosedDate, Schedule, Slot
from yuyue.tenants.models import Branch, Staff

pytestmark = pytest.mark.django_db

# Pages that are not a merchant's data: signing in and out, choosing a merchant, one's own security.
ACCOUNT_PAGES = {"login", "login_totp", "choose_merchant", "logout", "home", "security"}


@dataclass(frozen=True)
class Case:
    name: str
    kwargs: dict[str, Any]
    method: str
    permission: str
    data: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        url = reverse(f"console:{self.name}", kwargs=self.kwargs)
        if self.query:
            url += "?" + "&".join(f"{k}={v}" for k, v in self.query.items())
        return url

    def send(self, client: Client) -> Any:
        if self.method == "GET":
            return client.get(self.url)
        return client.post(self.url, self.data)


def desk_cases(s: Shop) -> list[Case]:
    code = {"code": s.booking.code}
    return [
        Case("bookings", {}, "GET", "bookings.view"),
        Case("bookings", {}, "GET", "bookings.view", query={"offering": s.course.pk, "branch": s.branch.pk}),
        Case("bookings", {}, "GET", "bookings.view", query={"q": s.booking.code}),
        Case("booking", code, "GET", "bookings.view"),
        Case("booking_new", {}, "GET", "bookings.change", query={"offering": s.course.pk}),
        Case(
            "booking_new",
            {},
            "POST",
            "bookings.change",
            data={"offering": s.course.pk, "slot_id": s.later_slot.pk, "phone": "13700001111"},
        ),
        Case("bookings_export_xlsx", {}, "GET", "bookings.export"),
        Case("bookings_export_csv", {}, "GET", "bookings.export", query={"offering": s.course.pk}),
        Case("booking_cancel", code, "POST", "bookings.change", data={"reason": "test"}),
        Case("booking_no_show", {"code": s.absent.code}, "POST", "bookings.change"),
        Case("booking_move", code, "POST", "bookings.change", data={"slot_id": s.later_slot.pk}),
        Case("booking_approve", {"code": s.pending.code}, "POST", "bookings.change"),
        Case("booking_reject", {"code": s.pending.code}, "POST", "bookings.change", data={"reason": "test"}),
        Case("checkin", {}, "GET", "checkin"),
        Case("checkin", {}, "POST", "checkin", data={"code": s.booking.code}),
        Case("checkin", {}, "POST", "checkin", data={"code": engine.voucher_for(s.visit)}),
        Case("customers", {}, "GET", "customers.view"),
        Case("customer", {"user_id": s.customer.pk}, "GET", "customers.view"),
        Case("customer_note", {"user_id": s.customer.pk}, "POST", "customers.change", data={"text": "x"}),
        Case(
            "customer_ban",
            {"user_id": s.customer.pk},
            "POST",
            "customers.change",
            data={"until": "2099-01-01", "reason": "x"},
        ),
        Case(
            "customer_lift_ban",
            {"user_id": s.customer.pk, "ban_id": s.ban.pk},
            "POST",
            "customers.change",
            {"reason": "x"},
        ),
        Case("reviews", {}, "GET", "reviews.change"),
        Case("review_visibility", {"review_id": s.review.pk}, "POST", "reviews.change", data={"hidden": "1"}),
        Case("audit", {}, "GET", "audit.view"),
        *ledger_and_webhook_cases(s),
        *notification_cases(s),
        *payment_cases(s),
        *stats_cases(s),
        *membership_cases(s),
        *assistant_cases(s),
        *privacy_cases(s),
    ]


def privacy_cases(s: Shop) -> list[Case]:
    """Full ID numbers: the audited reveal on a booking, the owner's full-ID export and the audit log."""
    purpose = {"purpose": "check_identity"}
    return [
        Case("reveal_ids", {"code": s.booking.code}, "POST", "personal.full", data=purpose),
        Case("export_full_ids", {}, "POST", "bookings.export", data=purpose),
        Case("id_reveals", {}, "GET", "audit.view"),
    ]


def membership_cases(s: Shop) -> list[Case]:
    """Membership cards (会员卡) and points: the product pages, 发卡 and adjusting points on a customer."""
    from yuyue.memberships.services import ProductSpec, save_product

    product = save_product(merchant=s.merchant, spec=ProductSpec(name="矩阵次卡", credits=10, valid_days=90))
    customer = {"user_id": s.customer.pk}
    edited = {"name": "矩阵次卡", "credits": "8", "valid_days": "60", "price_yuan": "800"}
    return [
        Case("card_products", {}, "GET", "catalog.view"),
        Case("card_product_new", {}, "GET", "memberships.change"),
        Case("card_product_new", {}, "POST", "memberships.change", data={**edited, "name": "新卡"}),
        Case("card_product", {"product_id": product.pk}, "GET", "memberships.change"),
        Case("card_product", {"product_id": product.pk}, "POST", "memberships.change", data=edited),
        Case("customer_grant_card", customer, "POST", "memberships.change", data={"product": product.pk}),
        Case("customer_points", customer, "POST", "memberships.change", data={"delta": "5", "reason": "x"}),
    ]


def stats_cases(s: Shop) -> list[Case]:
    """The statistics dashboard and the CSV of its charts (money only for owners and managers)."""
    return [
        Case("stats", {}, "GET", "stats.view"),
        Case("stats", {}, "GET", "stats.view", query={"branch": s.branch.pk, "day": "2025-03-08"}),
        Case("stats_csv", {}, "GET", "stats.view", query={"block": "top_offerings"}),
        Case("stats_csv", {}, "GET", "stats.view", query={"block": "live", "branch": s.branch.pk}),
        Case("stats_csv", {}, "GET", "stats.revenue", query={"block": "revenue"}),
    ]


def payment_cases(s: Shop) -> list[Case]:
    """The 支付 page (payments, refunds, flagged notifications) and marking a flagged notification handled."""
    from yuyue.payments.models import NoticeOutcome, PaymentNotice

    notice = PaymentNotice.objects.create(
        provider="sandbox",
        merchant=s.merchant,
        out_trade_no=f"P-MATRIX-{s.merchant.pk}",
        verified=True,
        outcome=NoticeOutcome.AMOUNT_MISMATCH,
        flagged_for_merchant=True,
    )
    return [
        Case("payments", {}, "GET", "payments.view"),
        Case("payments", {}, "GET", "payments.view", query={"state": "paid", "provider": "sandbox"}),
        Case("payment_notice_handled", {"notice_id": notice.pk}, "POST", "payments.view"),
    ]


def notification_cases(s: Shop) -> list[Case]:
    """The notifications page: templates, reminder times of an offering, re-sending a delivery."""
    from yuyue.notify import outbox

    item = outbox.enqueue(
        "notify.event",
        {"event": "confirmed", "booking_id": s.booking.pk, "user_id": s.customer.pk},
        merchant_id=s.merchant.pk,
        key=f"permission-matrix:notify:{s.merchant.pk}",
    )
    return [
        Case("notifications", {}, "GET", "catalog.change"),
        Case(
            "notification_template",
            {},
            "POST",
            "catalog.change",
            data={"event": "confirmed", "title": "t", "body": "b"},
        ),
        Case("notification_reminders", {"offering_id": s.course.pk}, "POST", "catalog.change", data={"hours": "5"}),
        Case("notification_resend", {"item_id": item.pk}, "POST", "catalog.change"),
    ]


def assistant_cases(s: Shop) -> list[Case]:
    """The 客服 inbox (a hand-off of the shop's customer) and the FAQ editor (one answer of the shop's own)."""
    from yuyue.assistant.models import Conversation, ConversationStatus, FaqEntry

    conversation = Conversation.objects.create(user=s.customer, merchant=s.merchant, status=ConversationStatus.OPEN)
    entry = FaqEntry.objects.create(merchant=s.merchant, intent="invoice", question="发票", answer="前台开票")
    ticket = {"conversation_id": conversation.pk}
    faq = {"intent": "invoice", "language": "zh", "kind": "", "question": "q", "answer": "a", "order": "0"}
    return [
        Case("assistant_inbox", {}, "GET", "customers.view"),
        Case("assistant_conversation", ticket, "GET", "customers.view"),
        Case("assistant_reply", ticket, "POST", "customers.change", data={"text": "您好"}),
        Case("assistant_close", ticket, "POST", "customers.change"),
        Case("assistant_faq", {}, "GET", "catalog.change"),
        Case("assistant_faq_new", {}, "GET", "catalog.change"),
        Case("assistant_faq_new", {}, "POST", "catalog.change", data=faq),
        Case("assistant_faq_edit", {"entry_id": entry.pk}, "GET", "catalog.change"),
        Case("assistant_faq_edit", {"entry_id": entry.pk}, "POST", "catalog.change", data=faq),
    ]


def ledger_and_webhook_cases(s: Shop) -> list[Case]:
    """The owner's ledger and webhook pages, with one endpoint, one delivery and one checkpoint of the shop."""
    import datetime as dt

    from yuyue.core import timeutil
    from yuyue.ledger.services import make_checkpoints
    from yuyue.notify import outbox
    from yuyue.webhooks.models import WebhookEndpoint

    endpoint, _new = WebhookEndpoint.objects.get_or_create(merchant=s.merchant, url="https://crm.example.com/hook")
    item = outbox.enqueue(
        "webhook",
        {"endpoint": endpoint.pk, "type": "booking.created", "body": {}},
        merchant_id=s.merchant.pk,
        key=f"permission-matrix:{endpoint.pk}",
    )
    day = timeutil.today() - dt.timedelta(days=1)
    make_checkpoints(day=day, merchant=s.merchant)
    ep = {"endpoint_id": endpoint.pk}
    return [
        Case("ledger", {}, "GET", "audit.view"),
        Case("ledger_checkpoint", {"day": day.isoformat()}, "GET", "audit.view"),
        Case("webhooks", {}, "GET", "audit.view"),
        Case("webhooks", {}, "POST", "audit.view", data={"url": "https://crm.example.com/new"}),
        Case("webhook", ep, "GET", "audit.view"),
        Case("webhook", ep, "POST", "audit.view", data={"url": "https://crm.example.com/changed"}),
        Case("webhook_active", ep, "POST", "audit.view", data={"active": "0"}),
        Case("webhook_secret", ep, "POST", "audit.view"),
        Case("webhook_resend", {**ep, "item_id": item.pk}, "POST", "audit.view"),
    ]


def _load_setup_cases() -> Callable[[Shop], list[tuple[str, dict[str, Any], str, str]]] | None:
    path = Path(__file__).resolve().parent.parent / "console_setup" / "urls_under_test.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("console_setup_urls_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.setup_url_cases  # type: ignore[no-any-return]


def setup_cases(s: Shop) -> list[Case]:
    make = _load_setup_cases()
    if make is None:
        return []
    cases = []
    for row in make(s):
        name, kwargs, method, permission = row[:4]
        data = row[4] if len(row) > 4 else {}
        cases.append(Case(name.removeprefix("console:"), dict(kwargs), method.upper(), permission, data=data))
    return cases


def all_cases(s: Shop) -> list[Case]:
    return desk_cases(s) + setup_cases(s)


def console_url_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns: list[Any]) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns)
            elif isinstance(p, URLPattern) and p.name:
                names.add(p.name)

    walk(console_urls.urlpatterns)
    return names


# --- What merchant B owns, to prove it did not change ------------------------------------------


def fingerprint(s: Shop) -> dict[str, list[dict[str, Any]]]:
    m = s.merchant
    scoped: dict[type[models.Model], models.Q] = {
        Booking: models.Q(merchant=m),
        BookingEvent: models.Q(booking__merchant=m),
        Attendee: models.Q(booking__merchant=m),
        Slot: models.Q(offering__merchant=m),
        Schedule: models.Q(offering__merchant=m),
        Offering: models.Q(merchant=m),
        Resource: models.Q(merchant=m),
        Branch: models.Q(merchant=m),
        ClosedDate: models.Q(merchant=m),
        Review: models.Q(offering__merchant=m),
        Ban: models.Q(merchant=m),
        CustomerNote: models.Q(merchant=m),
        AuditEntry: models.Q(merchant=m),
        Staff: models.Q(merchant=m),
        CardProduct: models.Q(merchant=m),
        Card: models.Q(merchant=m),
        PointsBalance: models.Q(merchant=m),
    }
    return {
        model.__name__: sorted((repr(sorted(row.items())) for row in model.objects.filter(q).values()), key=str)
        for model, q in scoped.items()
    }  # type: ignore[misc]


def markers(s: Shop) -> list[str]:
    """Strings that only a page showing merchant B's data would contain."""
    codes = list(Booking.objects.filter(merchant=s.merchant).values_list("code", flat=True))
    titles = list(Offering.objects.filter(merchant=s.merchant).values_list("title", flat=True))
    usernames = [u.username for u in s.staff.values()]
    return [*codes, *titles, *usernames, f"/console/customers/{s.customer.pk}/", s.merchant.name]


def text_of(response: Any) -> str:
    """The response as text; an .xlsx is read back cell by cell."""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if content[:2] == b"PK":
        sheet = load_workbook(io.BytesIO(content), read_only=True).active
        return "\n".join(" ".join(str(v) for v in row if v is not None) for row in sheet.iter_rows(values_only=True))
    return content.decode("utf-8", "replace")


def without_echo(text: str, case: Case) -> str:
    """The page without the case's own query values echoed back (search box, export links)."""
    for value in case.query.values():
        text = text.replace(f'value="{value}"', "").replace(f"={value}", "")
    return text


def signed_in(user: Any, shop: Shop) -> Client:
    return sign_in(Client(), user, shop.merchant)


# --- The tests --------------------------------------------------------------------------------


def test_every_console_url_is_in_the_matrix(shop_b):
    covered = {c.name for c in all_cases(shop_b)} | ACCOUNT_PAGES
    missing = console_url_names() - covered
    assert not missing, f"console URLs without a permission-matrix case: {sorted(missing)}"
    assert {c.permission for c in all_cases(shop_b)} <= set(PERMISSIONS)


def test_staff_of_a_cannot_read_or_change_anything_of_b(shop_a, shop_b):
    """A's owner (every permission) and A's front desk try every URL with B's objects."""
    cases = all_cases(shop_b)  # first: the set-up rows may create objects of B
    before = fingerprint(shop_b)
    hidden = markers(shop_b)
    failures = []
    for role in ("owner", "staff"):
        client = signed_in(shop_a.staff[role], shop_a)
        for case in cases:
            if not ROLE_PERMISSIONS[Staff.objects.get(user=shop_a.staff[role]).role] >= {case.permission}:
                continue
            response = case.send(client)
            if response.status_code in (403, 404):
                continue
            if response.status_code >= 500:
                failures.append(f"{role} {case.method} {case.url}: {response.status_code}")
                continue
            text = without_echo(text_of(response), case)
            if response.status_code == 302:
                text += response["Location"]
            leaked = [m for m in hidden if m in text]
            if leaked:
                failures.append(f"{role} {case.method} {case.url} shows B's {leaked[:3]}")
    assert not failures, "\n".join(failures)
    assert fingerprint(shop_b) == before, "merchant B's data changed"


def test_object_urls_of_b_are_not_found(shop_a, shop_b):
    client = signed_in(shop_a.staff["owner"], shop_a)
    for case in all_cases(shop_b):
        if case.kwargs:
            response = case.send(client)
            assert response.status_code == 404, f"{case.method} {case.url} → {response.status_code}"


@pytest.mark.parametrize("role", ["manager", "staff", "coach", "doctor", "driver"])
def test_a_role_without_the_permission_gets_403(shop_a, role):
    client = signed_in(shop_a.staff[role], shop_a)
    allowed = ROLE_PERMISSIONS[role]
    cases = all_cases(shop_a)  # first: the set-up rows may create objects of A
    before = fingerprint(shop_a)
    failures = []
    for case in cases:
        if case.permission in allowed:
            continue
        response = case.send(client)
        if response.status_code != 403:
            failures.append(f"{role} {case.method} {case.url} → {response.status_code}")
    assert not failures, "\n".join(failures)
    assert fingerprint(shop_a) == before


@pytest.mark.parametrize("role", ["owner", "manager", "staff", "coach"])
def test_a_role_with_the_permission_can_open_its_pages(shop_a, role):
    client = signed_in(shop_a.staff[role], shop_a)
    for case in all_cases(shop_a):
        if case.method == "GET" and case.permission in ROLE_PERMISSIONS[role]:
            response = case.send(client)
            # A coach's 404 is a booking of another resource; everything else opens.
            assert response.status_code in (200, 404) if role == "coach" else response.status_code == 200, (
                f"{role} GET {case.url} → {response.status_code}"
            )


def test_a_coach_cannot_change_schedules_or_the_catalogue(shop_a):
    client = signed_in(shop_a.staff["coach"], shop_a)
    changes = [c for c in all_cases(shop_a) if c.permission in {"schedules.change", "catalog.change"}]
    for case in changes:
        assert case.send(client).status_code == 403, case.url
    assert "schedules.change" not in ROLE_PERMISSIONS["coach"]


def test_a_coach_sees_only_the_bookings_of_their_own_resource(shop_a):
    client = signed_in(shop_a.staff["coach"], shop_a)
    page = client.get(reverse("console:bookings")).content.decode()
    assert shop_a.booking.code in page
    assert shop_a.visit.code not in page  # an exhibition booking: no coach
    assert client.get(reverse("console:booking", args=[shop_a.visit.code])).status_code == 404


def test_branch_limited_staff_see_only_their_branches(shop_a):
    other_branch = Branch.objects.create(merchant=shop_a.merchant, name="分店")
    elsewhere = Offering.objects.create(merchant=shop_a.merchant, branch=other_branch, kind="course", title="分店课")
    from factories import make_slot, make_user

    booking = engine.book(user=make_user(), slot_id=make_slot(offering=elsewhere).pk)
    limited = make_staff(shop_a.merchant, "staff", branches=(shop_a.branch,))
    client = signed_in(limited, shop_a)
    page = client.get(reverse("console:bookings")).content.decode()
    assert shop_a.booking.code in page and booking.code not in page
    assert client.get(reverse("console:booking", args=[booking.code])).status_code == 404


def test_every_console_url_needs_a_signed_in_staff_member(shop_a, client):
    for case in all_cases(shop_a):
        response = case.send(client)
        assert response.status_code == 302 and "/console/login/" in response["Location"], case.url


def test_a_session_ends_when_the_staff_row_is_deactivated(shop_a):
    client = signed_in(shop_a.staff["staff"], shop_a)
    assert client.get(reverse("console:bookings")).status_code == 200
    Staff.objects.filter(user=shop_a.staff["staff"]).update(is_active=False)
    response = client.get(reverse("console:bookings"))
    assert response.status_code == 302 and "/console/login/" in response["Location"]


def test_an_admin_session_without_the_console_sign_in_is_not_enough(shop_a, client):
    client.force_login(shop_a.staff["owner"])  # e.g. signed in through /admin/, skipping TOTP
    response = client.get(reverse("console:bookings"))
    assert response.status_code == 302 and "/console/login/" in response["Location"]


# --- Merchant API ---------------------------------------------------------------------------


def api(client: Client, token: str, method: str, path: str, **extra: Any) -> Any:
    call = getattr(client, method.lower())
    return call(f"/api/v1/merchant{path}", HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def test_merchant_api_never_shows_or_touches_another_merchants_bookings(shop_a, shop_b, client):
    token = accounts.issue_token(staff_user=shop_a.staff["owner"])
    before = fingerprint(shop_b)
    hidden = markers(shop_b)
    for path in (
        "/bookings",
        f"/bookings?offering={shop_b.course.pk}",
        f"/bookings?q={shop_b.booking.code}",
        "/bookings/export.xlsx",
        f"/bookings/export.csv?branch={shop_b.branch.pk}",
        "/stats",
    ):
        response = api(client, token, "GET", path)
        assert response.status_code == 200, path
        assert not [m for m in hidden if m in text_of(response)], path
    listed = api(client, token, "GET", f"/bookings?offering={shop_b.course.pk}").json()
    assert listed == {"items": [], "count": 0}
    for voucher in (engine.voucher_for(shop_b.booking), shop_b.booking.code):
        response = api(client, token, "POST", "/checkins", data={"voucher": voucher}, content_type="application/json")
        assert response.status_code == 404
    # Naming merchant B does not help.
    for header in (str(shop_b.merchant.pk), shop_b.merchant.slug):
        response = api(client, token, "GET", "/bookings", HTTP_X_MERCHANT=header)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
    assert fingerprint(shop_b) == before


@pytest.mark.parametrize(
    ("method", "path", "permission"),
    [
        ("GET", "/bookings", "bookings.view"),
        ("GET", "/bookings/export.xlsx", "bookings.export"),
        ("GET", "/bookings/export.csv", "bookings.export"),
        ("POST", "/checkins", "checkin"),
        ("GET", "/stats", "stats.view"),
    ],
)
def test_merchant_api_refuses_roles_without_the_permission(shop_a, client, method, path, permission):
    for role, user in shop_a.staff.items():
        token = accounts.issue_token(staff_user=user)
        extra = (
            {"data": {"voucher": shop_a.booking.code}, "content_type": "application/json"} if method == "POST" else {}
        )
        response = api(client, token, method, path, **extra)
        if permission in ROLE_PERMISSIONS[role]:
            assert response.status_code != 403, (role, path)
        else:
            assert response.status_code == 403, (role, path)
            assert response.json()["error"]["code"] == "forbidden"


def test_merchant_api_needs_a_staff_token(shop_a, client):
    end_user_token = accounts.issue_token(user=shop_a.customer)
    for token in ("nonsense", end_user_token):
        assert api(client, token, "GET", "/bookings").status_code == 401
    assert client.get("/api/v1/merchant/bookings").status_code == 401


def test_merchant_api_asks_which_merchant_when_staff_work_for_several(shop_a, shop_b, client):
    both = shop_a.staff["owner"]
    Staff.objects.create(user=both, merchant=shop_b.merchant, role="staff")
    token = accounts.issue_token(staff_user=both)
    response = api(client, token, "GET", "/bookings")
    assert response.status_code == 422 and "X-Merchant" in response.json()["error"]["fields"]
    mine_in_b = api(client, token, "GET", "/bookings", HTTP_X_MERCHANT=shop_b.merchant.slug).json()
    assert {b["code"] for b in mine_in_b["items"]} == set(
        Booking.objects.filter(merchant=shop_b.merchant).values_list("code", flat=True)
    )
