"""Helpers for the assistant tests (a module with a unique name: test directories are not packages)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from yuyue.core import timeutil
from yuyue.h5.auth import SESSION_KEY

_staff_numbers = itertools.count(1)


def at(days: int, hour: int) -> dt.datetime:
    return timeutil.local_datetime(timeutil.today() + dt.timedelta(days=days), dt.time(hour, 0))


def api_ask(client: Any, question: str, token: str | None = None, **body: Any) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(
        "/api/v1/assistant/ask", {"question": question, **body}, content_type="application/json", **headers
    )


def api_act(client: Any, token: str, **action: Any) -> Any:
    return client.post(
        "/api/v1/assistant/actions", action, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def sign_in_client(client: Any, user: Any) -> Any:
    """A test client signed in to the H5 pages as ``user`` (the user's id in the session, as the SMS sign-in does)."""
    session = client.session
    session[SESSION_KEY] = user.pk
    session.save()
    return client
