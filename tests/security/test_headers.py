"""Security headers on every kind of response, and templates that a strict CSP can serve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from console_world import sign_in
from django.test import Client
from django.urls import reverse
from h5_session import sign_in_client

import yuyue
from yuyue.core.security import DEFAULT_CSP

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.once("headers and templates are the same whatever database the pages read"),
]

SRC = Path(yuyue.__file__).resolve().parent
# E-mails are read in mail clients, not served under our CSP.
NOT_PAGES = {"notify/email.html"}


def directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def assert_protected(response, where: str) -> None:
    csp = directives(response["Content-Security-Policy"])
    script = csp.get("script-src", csp.get("default-src"))
    assert script == ["'self'"], (where, script)
    assert "'unsafe-inline'" not in csp.get("style-src", []), where
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"], where
    assert response["X-Frame-Options"] == "DENY", where
    assert response["X-Content-Type-Options"] == "nosniff", where
    assert response["Referrer-Policy"] == "same-origin", where
    assert "camera=(self)" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]
    assert "Strict-Transport-Security" not in response, f"{where}: HSTS over plain HTTP"


def test_every_kind_of_page_has_the_headers(shop_a):
    anon = Client()
    user = sign_in_client(Client(), shop_a.customer)
    desk = sign_in(Client(), shop_a.staff["owner"], shop_a.merchant)
    cases = [
        (anon, "/", 200),
        (anon, reverse("h5:offering", args=[shop_a.course.pk]), 200),
        (anon, reverse("h5:signin"), 200),
        (user, reverse("h5:booking", args=[shop_a.booking.code]), 200),
        (user, reverse("h5:voucher", args=[shop_a.booking.code]), 200),
        (user, reverse("assistant:chat"), 200),
        (anon, reverse("console:login"), 200),
        (desk, reverse("console:bookings"), 200),
        (desk, reverse("console:stats"), 200),
        (desk, reverse("console:bookings_export_csv"), 200),
        (anon, reverse("console:bookings"), 302),
        (anon, "/api/v1/health", 200),
        (anon, "/api/v1/me", 401),
        (anon, "/api/v1/docs", 200),
        (anon, "/api/v1/openapi.json", 200),
        (anon, "/static/h5/h5.css", 200),
        (anon, "/admin/login/", 200),
        (anon, "/no-such-page/", 404),
    ]
    for client, url, status in cases:
        response = client.get(url)
        assert response.status_code == status, (url, response.status_code)
        assert_protected(response, url)


def test_the_payment_pages_cannot_be_framed(shop_a):
    """The pay page and the sandbox cashier (a stand-in for WeChat Pay/Alipay) refuse frames too."""
    user = sign_in_client(Client(), shop_a.customer)
    for response in (
        user.get(reverse("payments:h5_pay", args=[shop_a.visit.code])),
        Client().get(reverse("payments:sandbox_cashier", args=["P-UNKNOWN"])),
    ):
        assert response["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_hsts_only_over_https(settings):
    assert "Strict-Transport-Security" not in Client().get("/api/v1/health")
    response = Client().get("/api/v1/health", secure=True)
    assert response["Strict-Transport-Security"] == f"max-age={settings.SECURE_HSTS_SECONDS}"
    assert settings.SECURE_HSTS_SECONDS >= 180 * 24 * 3600


def test_behind_a_proxy_the_forwarded_scheme_counts_when_https_is_configured(settings):
    forwarded = {"HTTP_X_FORWARDED_PROTO": "https"}
    # Without YUYUE_HTTPS the header is not trusted (anyone could send it).
    assert "Strict-Transport-Security" not in Client().get("/api/v1/health", **forwarded)
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert "Strict-Transport-Security" in Client().get("/api/v1/health", **forwarded)


def test_yuyue_https_turns_on_secure_cookies_and_the_proxy_header(tmp_path):
    import os
    import subprocess
    import sys

    code = (
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT,"
        " s.SESSION_COOKIE_AGE, s.SESSION_IDLE_SECONDS)"
    )
    env = {
        **os.environ,
        "YUYUE_HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "yuyue.settings",
        "YUYUE_HTTPS": "on",
        "YUYUE_SESSION_HOURS": "8",
        "YUYUE_SESSION_IDLE_MINUTES": "30",
    }
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup();" + code], env=env, capture_output=True, text=True
    )
    assert out.stdout.split() == ["True", "True", "('HTTP_X_FORWARDED_PROTO',", "'https')", "True", "28800", "1800"]


def test_the_policy_can_be_replaced_or_turned_off(settings):
    settings.CONTENT_SECURITY_POLICY = "default-src 'self'; report-uri /csp"
    assert Client().get("/api/v1/health")["Content-Security-Policy"] == "default-src 'self'; report-uri /csp"
    settings.CONTENT_SECURITY_POLICY = ""
    assert "Content-Security-Policy" not in Client().get("/api/v1/health")
    assert "'unsafe-inline'" not in DEFAULT_CSP and "'unsafe-eval'" not in DEFAULT_CSP


# --- Templates a strict policy can serve -------------------------------------------------------


def page_templates() -> list[Path]:
    found = [p for p in SRC.rglob("templates/**/*.html") if not any(str(p).endswith(n) for n in NOT_PAGES)]
    assert len(found) > 40
    return found


def test_no_template_has_an_inline_script_or_an_event_handler_attribute():
    inline_script = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/(ld\+)?json\")[^>]*>", re.I)
    handler = re.compile(r"\s(on[a-z]+|hx-on[:\w-]*)\s*=", re.I)
    found = []
    for path in page_templates():
        text = path.read_text()
        found += [f"{path.relative_to(SRC)}: {m.group(0)}" for m in inline_script.finditer(text)]
        found += [f"{path.relative_to(SRC)}: {m.group(0).strip()}" for m in handler.finditer(text)]
        if "javascript:" in text.lower():
            found.append(f"{path.relative_to(SRC)}: javascript: URL")
    assert not found, "\n".join(found)


def test_no_template_has_inline_styles():
    found = []
    for path in page_templates():
        text = path.read_text()
        found += [f"{path.relative_to(SRC)}: <style>" for _ in re.finditer(r"<style\b", text, re.I)]
        found += [f"{path.relative_to(SRC)}: {m.group(0)}" for m in re.finditer(r"\sstyle\s*=\s*\"[^\"]*\"", text)]
    assert not found, "\n".join(found)


def test_htmx_is_told_not_to_inject_styles_or_evaluate_code():
    for base in ("h5/templates/h5/base.html", "console/templates/console/base.html"):
        text = (SRC / base).read_text()
        assert '"includeIndicatorStyles": false' in text and '"allowEval": false' in text, base
