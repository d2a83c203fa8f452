"""Response headers that make the browser part of the defence, and session lifetimes.

Django's SecurityMiddleware already sends HSTS (on HTTPS requests only), ``nosniff`` and the
Referrer-Policy; XFrameOptionsMiddleware sends ``X-Frame-Options``. This module adds what Django
5.2 does not: a Content-Security-Policy and a Permissions-Policy on every response, and a session
that ends after a fixed age and after a period of inactivity, for the console and the H5 alike.

The policy forbids inline scripts: pages carry data (``data-*`` attributes, ``json_script``) and
the static files (``h5/behaviours.js``, ``console/*.js``) act on it. A script an attacker manages
to inject into a page therefore does not run, even where escaping failed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from yuyue.core import timeutil

# 'self' only: every script, style, font and image is served from this site (no CDN, see DESIGN.md).
# No 'unsafe-inline' and no 'unsafe-eval' for scripts or styles; inline SVG (QR codes) needs nothing.
# data: images cover the tiny icons CSS embeds. form-action is left open on purpose: paying sends
# the browser on to WeChat Pay or Alipay, which Chromium counts as the form's target.
DEFAULT_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "media-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
    ]
)
# The check-in page scans QR codes with the device's camera; nothing needs the other features.
DEFAULT_PERMISSIONS_POLICY = (
    "camera=(self), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), "
    "magnetometer=(), gyroscope=(), accelerometer=(), interest-cohort=()"
)

SESSION_STARTED = "_yuyue_session_started"
SESSION_SEEN = "_yuyue_session_seen"
# The last-seen time is written at most this often, not on every request (a write per page view
# would cost a database round trip for nothing).
SEEN_RESOLUTION = dt.timedelta(seconds=60)


class SecurityHeadersMiddleware:
    """Content-Security-Policy, Permissions-Policy and frame options on every response (a view may set its own)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY
        if settings.PERMISSIONS_POLICY and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = settings.PERMISSIONS_POLICY
        # Static files are answered by WhiteNoise before Django's clickjacking middleware sees them.
        if "X-Frame-Options" not in response:
            response["X-Frame-Options"] = settings.X_FRAME_OPTIONS
        return response


def session_expired(started: float | None, seen: float | None, now: dt.datetime) -> bool:
    """True when a session is older than SESSION_COOKIE_AGE or idle longer than SESSION_IDLE_SECONDS."""
    stamp = now.timestamp()
    if started is not None and stamp - started > settings.SESSION_COOKIE_AGE:
        return True
    idle = settings.SESSION_IDLE_SECONDS
    return bool(idle and seen is not None and stamp - seen > idle)


class SessionTimeoutMiddleware:
    """End a session (console staff and H5 users alike) at its fixed age or after inactivity.

    The cookie's own max-age (SESSION_COOKIE_AGE) is renewed whenever the session is saved, so
    it alone never ends an active session; the start time kept inside the session does. Only
    sessions that hold something (someone signed in, a language choice) are touched: anonymous
    requests stay free of session writes.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is None:
            return self.get_response(request)
        key_before = session.session_key
        # No cookie, no session to check (and no database read for it: API calls, first visits).
        if key_before and session.keys():
            now = timeutil.now()
            started = session.get(SESSION_STARTED)
            seen = session.get(SESSION_SEEN)
            if session_expired(started, seen, now):
                session.flush()
            else:
                if started is None:
                    session[SESSION_STARTED] = now.timestamp()
                if seen is None or now.timestamp() - seen >= SEEN_RESOLUTION.total_seconds():
                    session[SESSION_SEEN] = now.timestamp()
        response = self.get_response(request)
        # Signing in gives a new session key (cycle_key): its age counts from then, not from an
        # earlier anonymous visit whose data it carried over.
        if session.session_key != key_before and session.session_key and session.keys():
            stamp = timeutil.now().timestamp()
            session[SESSION_STARTED] = stamp
            session[SESSION_SEEN] = stamp
        return response
