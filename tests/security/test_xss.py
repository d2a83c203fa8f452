"""Hostile text typed by customers or merchants is shown as text everywhere: H5, console, chat, exports.

The shop's merchant name, its offering's title and description, a customer's people, form answers,
a review, a staff note, a chat message and a webhook payload all carry markup; every page that
shows them is rendered and searched for the markup unescaped. ``|safe`` and ``mark_safe`` are
allowed only where the value is markup we made (QR SVGs from segno, ``json_script``), see
``test_safe_markup_is_only_our_own``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from console_world import build_shop, sign_in
from django.test import Client
from django.urls import reverse
from factories import make_person, make_user
from h5_session import sign_in_client
from openpyxl import load_workbook
from test_console_permissions import all_cases

import yuyue
from yuyue.accounts import services as accounts
from yuyue.assistant.models import Conversation, ConversationStatus, Message, Sender
from yuyue.booking import services as engine
from yuyue.booking.models import Review
from yuyue.catalog.models import Offering
from yuyue.console.models import CustomerNote
from yuyue.notify import outbox
from yuyue.webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(1)"
FORMULA = "=cmd|' /C calc'!A0"
# What an unescaped page would contain; escaped, these read &lt;script&gt; and &quot;&gt;&lt;img.
RAW = ("<script>alert(1)", "<img src=x", 'href="javascript:', 'src="javascript:', "href='javascript:")


def unescaped(html: str) -> list[str]:
    return [r for r in RAW if r.lower() in html.lower()]


@pytest.fixture
def hostile(db: None):
    shop = build_shop(f"乙{SCRIPT}")
    Offering.objects.filter(pk=shop.course.pk).update(
        title=f"瑜伽{IMG}", description=f'{SCRIPT} {IMG} [link]({JS_URL}) <a href="{JS_URL}">x</a>'
    )
    Offering.objects.filter(pk=shop.exhibition.pk).update(title=FORMULA)
    customer = make_user()  # the shop's own customer is banned there (console_world)
    people = [make_person(owner=customer, name=SCRIPT), make_person(owner=customer, name=IMG[:50])]
    formula_person = make_person(owner=customer, name=FORMULA)
    visit = engine.book(user=customer, slot_id=shop.exhibition_slot.pk, person_ids=[p.pk for p in people])
    engine.confirm(booking=visit)
    engine.book(user=customer, slot_id=shop.later_slot.pk)
    other = engine.book(user=customer, slot_id=shop.exhibition_slot.pk, person_ids=[formula_person.pk])
    engine.confirm(booking=other)
    signup = engine.book(
        user=accounts.get_or_create_user_by_phone("13912340000"),
        slot_id=shop.approval_slot.pk,
        answers={"name": IMG, "phone": "13812345679"},
    )
    Review.objects.filter(pk=shop.review.pk).update(text=f"{SCRIPT}{IMG}")
    CustomerNote.objects.filter(pk=shop.note.pk).update(text=f"{SCRIPT}{IMG}")
    conversation = Conversation.objects.create(
        user=shop.customer, merchant=shop.merchant, status=ConversationStatus.OPEN
    )
    Message.objects.create(conversation=conversation, sender=Sender.CUSTOMER, text=f"{SCRIPT}{IMG}{JS_URL}")
    endpoint = WebhookEndpoint.objects.create(merchant=shop.merchant, url="https://crm.example.com/hook")
    outbox.enqueue(
        "webhook",
        {"endpoint": endpoint.pk, "type": "booking.created", "body": {"name": SCRIPT, "note": IMG}},
        merchant_id=shop.merchant.pk,
        key="xss-webhook",
    )
    shop.visit = visit
    return shop, {"signup": signup, "conversation": conversation, "endpoint": endpoint, "guest": customer}


def test_every_console_page_escapes_hostile_text(hostile):
    shop, _objects = hostile
    client = sign_in(Client(), shop.staff["owner"], shop.merchant)
    shown = 0
    failures = []
    for case in all_cases(shop):
        if case.method != "GET":
            continue
        response = case.send(client)
        assert response.status_code < 500, case.url
        if "text/html" not in response.get("Content-Type", ""):
            continue
        html = response.content.decode()
        shown += "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        if found := unescaped(html):
            failures.append(f"{case.url}: {found}")
    assert shown >= 10, "the hostile text should have been on many pages"
    assert not failures, "\n".join(failures)


def test_the_customers_pages_and_the_chat_escape_hostile_text(hostile):
    shop, objects = hostile
    client = sign_in_client(Client(), objects["guest"])
    urls = [
        reverse("h5:home"),
        reverse("h5:offering", args=[shop.course.pk]),
        reverse("h5:book", args=[shop.later_slot.pk]),
        reverse("h5:book", args=[shop.exhibition_slot.pk]),
        reverse("h5:my_bookings"),
        reverse("h5:people"),
        reverse("h5:booking", args=[shop.visit.code]),
        reverse("assistant:chat"),
        reverse("h5:inbox"),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert not unescaped(response.content.decode()), url
    # What the customer types into the chat comes back escaped, in the page and in the htmx fragment.
    fragment = client.post(reverse("assistant:ask"), {"question": f"{SCRIPT}{IMG}"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and not unescaped(fragment.content.decode())
    assert "&lt;script&gt;" in fragment.content.decode()
    assert not unescaped(client.get(reverse("assistant:chat")).content.decode())


def test_the_console_conversation_shows_the_customers_markup_as_text(hostile):
    shop, objects = hostile
    client = sign_in(Client(), shop.staff["owner"], shop.merchant)
    url = reverse("console:assistant_conversation", args=[objects["conversation"].pk])
    html = client.get(url).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and not unescaped(html)
    # A staff reply with markup is escaped for the customer too.
    client.post(reverse("console:assistant_reply", args=[objects["conversation"].pk]), {"text": SCRIPT})
    page = sign_in_client(Client(), shop.customer).get(reverse("assistant:chat")).content.decode()
    assert not unescaped(page)


def test_javascript_urls_are_refused_as_webhook_endpoints(hostile):
    shop, _objects = hostile
    client = sign_in(Client(), shop.staff["owner"], shop.merchant)
    for url in (JS_URL, "data:text/html,<script>alert(1)</script>", "ftp://example.com/x"):
        client.post(reverse("console:webhooks"), {"url": url})
        assert not WebhookEndpoint.objects.filter(url=url).exists(), url


def _xlsx_cells(content: bytes) -> list[str]:
    sheet = load_workbook(io.BytesIO(content), read_only=True).active
    return [str(v) for row in sheet.iter_rows(values_only=True) for v in row if v is not None]


def test_exports_keep_formulas_as_text(hostile):
    shop, _objects = hostile
    client = sign_in(Client(), shop.staff["owner"], shop.merchant)
    csv_text = b"".join(client.get(reverse("console:bookings_export_csv")).streaming_content).decode("utf-8-sig")
    xlsx = client.get(reverse("console:bookings_export_xlsx"))
    cells = _xlsx_cells(b"".join(xlsx.streaming_content) if xlsx.streaming else xlsx.content)
    for where, text in (("csv", csv_text), ("xlsx", "\n".join(cells))):
        assert f"'{FORMULA}" in text, where  # the person and the offering title, kept as text
        assert not re.search(r"(^|[,\n])=cmd", text), where
    token = accounts.issue_token(staff_user=shop.staff["owner"])
    api_csv = Client().get("/api/v1/merchant/bookings/export.csv", headers={"Authorization": f"Bearer {token}"})
    body = (b"".join(api_csv.streaming_content) if api_csv.streaming else api_csv.content).decode("utf-8-sig")
    assert f"'{FORMULA}" in body and not re.search(r"(^|[,\n])=cmd", body)


def test_statistics_csv_keeps_formulas_as_text(hostile):
    shop, _objects = hostile
    client = sign_in(Client(), shop.staff["owner"], shop.merchant)
    response = client.get(reverse("console:stats_csv"), {"block": "top_offerings"})
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    assert not re.search(r"(^|[,\n])=cmd", text)


def test_safe_markup_is_only_our_own():
    """Every |safe, mark_safe and format_html in the code, and why it is safe."""
    src = Path(yuyue.__file__).resolve().parent
    allowed = {
        "h5/templates/h5/booking.html": "{{ voucher_svg|safe }}",  # segno's SVG of the signed voucher text
        "console/templates/console/security.html": "{{ qr|safe }}",  # segno's SVG of the TOTP URI
    }
    found = []
    for path in list(src.rglob("*.html")) + list(src.rglob("*.py")):
        rel = str(path.relative_to(src))
        text = path.read_text()
        for match in re.finditer(r"\|\s*safe\b|mark_safe\(|SafeString\(|autoescape off|format_html\(", text):
            line = text[text.rfind("\n", 0, match.start()) + 1 : text.find("\n", match.end())]
            if rel in allowed and allowed[rel] in line:
                continue
            if match.group(0).startswith("format_html") and "pretty_json(" in line:
                continue  # admin: format_html escapes its arguments
            found.append(f"{rel}: {line.strip()[:120]}")
    assert not found, "markup marked safe without a reason here:\n" + "\n".join(found)
