"""Pieces every JSON API router shares: the error schema, bearer-token auth, the client's IP.

Kept apart from ``yuyue.api`` (which mounts the routers) so a router can be imported on its own.
"""

from __future__ import annotations

from typing import Annotated, Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Schema
from ninja.security import HttpBearer
from pydantic import AfterValidator, ConfigDict, Field

from yuyue.core.errors import ERRORS, DomainError

# A row id: bounded like the database's 64-bit keys, so a huge number is a 422, not a driver overflow.
DbId = Annotated[int, Field(ge=1, le=2**63 - 1)]
# How far a list may be paged.
Offset = Annotated[int, Field(ge=0, le=1_000_000)]


def no_nul(value: Any) -> Any:
    """Refuse NUL characters anywhere in a value: PostgreSQL cannot store them in text or JSON."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("NUL characters are not allowed")
    elif isinstance(value, dict):
        for key, item in value.items():
            no_nul(key)
            no_nul(item)
    elif isinstance(value, list):
        for item in value:
            no_nul(item)
    return value


Text = Annotated[str, AfterValidator(no_nul)]
Answers = Annotated[dict[str, Any], AfterValidator(no_nul)]


class ErrorBody(Schema):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    fields: dict[str, str] = {}


class ErrorOut(Schema):
    """``{"error": {"code", "message", "fields", …}}``; some codes add details (``retry_after``, ``until``)."""

    error: ErrorBody


def error_responses(*codes: str) -> dict[int, Any]:
    """OpenAPI responses for the statuses of these error codes (always with 422 ``invalid``)."""
    statuses = {ERRORS[code][0] for code in (*codes, "invalid")}
    return {status: ErrorOut for status in sorted(statuses)}


# Every authenticated endpoint can answer these.
AUTH_ERRORS = ("unauthorized", "forbidden")


class EndUserAuth(HttpBearer):
    """``Authorization: Bearer <token>`` of an end user; ``request.auth`` is the EndUser."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        from yuyue.accounts.services import token_owner

        found = token_owner(token)
        if found is None:
            return None
        if found.user is None:
            raise DomainError("forbidden", _("This is a staff token; sign in as a customer."))
        if not found.user.is_active:
            raise DomainError("forbidden", _("This account has been disabled."))
        request.bearer_token = token  # type: ignore[attr-defined]
        return found.user


user_auth = EndUserAuth()


def client_ip(request: HttpRequest) -> str:
    """The caller's address; behind a proxy, from the header it sets (``YUYUE_CLIENT_IP_HEADER``).

    For X-Forwarded-For the last entry is used: the one our own proxy appended, not the client's claim.
    """
    header = settings.CLIENT_IP_HEADER
    if header:
        value = request.headers.get(header, "")
        if value:
            return value.split(",")[-1].strip()
    return str(request.META.get("REMOTE_ADDR", ""))
