"""Privacy endpoints of the JSON API: download my data, withdraw consent, the consent texts.

``DELETE /me`` lives in ``accounts/api.py`` beside ``GET /me`` (one router per path).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status

from yuyue.accounts.api import PersonOut, person_out
from yuyue.core.apischema import AUTH_ERRORS, DbId, error_responses, user_auth
from yuyue.privacy import consent, services

router = Router(tags=["privacy"])


class ConsentTextOut(Schema):
    kind: str
    version: str
    text: str


@router.get(
    "/privacy/consent-texts",
    response=list[ConsentTextOut],
    summary="The current separate-consent texts (ID numbers, children under 14) and their versions",
)
def consent_texts(request: HttpRequest) -> list[dict[str, str]]:
    return consent.current_texts()


@router.get(
    "/me/data",
    auth=user_auth,
    response={200: dict[str, Any], **error_responses(*AUTH_ERRORS, "rate_limited")},
    summary="Download my data (JSON): account, people with full ID numbers, bookings, money, consents…",
    description="Rate-limited per account (YUYUE_RATE_DATA_EXPORT, default 5 an hour).",
)
def my_data(request: HttpRequest) -> Any:
    return services.my_data(request.auth)  # type: ignore[attr-defined]


@router.delete(
    "/me/people/{person_id}/id-number",
    auth=user_auth,
    response={200: PersonOut, **error_responses(*AUTH_ERRORS, "not_found")},
    summary="Withdraw the consent for a person's ID number: the number is deleted",
)
def withdraw_id_number(request: HttpRequest, person_id: DbId) -> Status[dict]:
    person = services.withdraw_id_number(owner=request.auth, person_id=person_id)  # type: ignore[attr-defined]
    return Status(200, person_out(person))
