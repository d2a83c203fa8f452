"""The sold-out answer of a rush, given before the API framework and the booking engine run.

When ten thousand people book a slot of a thousand seats, nine thousand answers are "sold out".
The gate (``booking.gate``) already keeps them away from the slot's row, but each one still went
through URL routing, the API framework's parsing, the engine's idempotency check and the gate's
own call: about ten times the work of the answer itself. This middleware, the innermost one, gives
that answer for ``POST /api/v1/bookings`` as soon as it is sure of it, with nothing but Redis (the
token cache, the gate, the rate limits) and, for a request with an ``Idempotency-Key``, one
indexed read.

It is sure only when the request is one the engine would refuse for lack of room: a live customer
token (the API's own lookup, from the shared cache), a body and headers the API's own schema
accepts, no waiting room open for the slot, the gate certain that there is no seat for this person
(never admitted before), and no booking made earlier under the same key (that one is answered
again, by the engine). Rate limits are counted exactly as the API counts them, so an over-eager
client gets the same 429. In every other case, and whenever Redis or the database fails here, the
request goes on to the API unchanged: the fast path can only ever answer less, never differently.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any, cast

from django.db import DatabaseError, connection
from django.db.models import Field
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from pydantic import TypeAdapter, ValidationError

from yuyue.booking import gate

# Larger bodies are never a plain booking request; the API gives them their proper answer.
MAX_BODY_BYTES = 64 * 1024


class SoldOutMiddleware:
    """Answers "sold out" for booking requests the gate refuses; everything else passes through."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        answer = sold_out_answer(request) if request.method == "POST" else None
        return answer if answer is not None else self.get_response(request)


@cache
def _bookings_path() -> str:
    return reverse("api-1:create_booking")


@cache
def _validators() -> tuple[TypeAdapter, TypeAdapter]:
    from yuyue.booking.api import BookingIn, IdempotencyKey

    return TypeAdapter(BookingIn), TypeAdapter(IdempotencyKey)


def sold_out_answer(request: HttpRequest) -> HttpResponse | None:
    """The API's refusal (409 ``slot_full``, or 429 when over a rate limit) when certain; else None."""
    if request.path != _bookings_path() or not gate.enabled():
        return None
    try:
        user_id = _sold_out_for(request)
    except DatabaseError:
        return None  # the engine has its own retries for a lost connection
    if user_id is None:
        return None

    from yuyue.api import error_response
    from yuyue.core import ratelimit
    from yuyue.core.errors import DomainError

    try:
        ratelimit.booking(request, user_id)  # counted here instead of in the API: once per request
        refusal = DomainError("slot_full")
    except DomainError as limited:
        refusal = limited
    return error_response(request, refusal)


def _sold_out_for(request: HttpRequest) -> int | None:
    """The customer's id when the engine would refuse this request for lack of room, else None."""
    asked = _booking_request(request)
    if asked is None:
        return None
    user_id, booking, key = asked

    from yuyue.core import waitingroom

    if waitingroom.room_for_slot(booking.slot_id) is not None:
        return None  # the line decides first, as in the API
    if not gate.sold_out(
        slot_id=booking.slot_id, user_id=user_id, party_size=booking.party_size, people=len(booking.people)
    ):
        return None
    if key and _key_used(user_id, key):
        return None  # a retry of a booking made: the engine answers it again
    return user_id


def _booking_request(request: HttpRequest) -> tuple[int, Any, str | None] | None:
    """(customer id, the parsed body, Idempotency-Key) of a request the API would accept, else None."""
    scheme, _, raw_token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not raw_token:
        return None
    from yuyue.accounts.services import token_owner

    token = token_owner(raw_token)  # from the shared cache; read (and cached) once when missing
    if token is None or token.user is None or not token.user.is_active:
        return None  # unknown, staff or disabled: the API says why
    try:
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
            return None
        body_adapter, key_adapter = _validators()
        booking = body_adapter.validate_python(json.loads(request.body))
        key = request.META.get("HTTP_IDEMPOTENCY_KEY")
        if key is not None:
            key = key_adapter.validate_python(key)
    except (ValueError, ValidationError):  # bad JSON, bad fields: the API's 422
        return None
    return token.user.pk, booking, key or None


@cache
def _key_sql() -> str:
    from yuyue.booking.models import IdempotencyKey

    quote = connection.ops.quote_name
    meta = IdempotencyKey._meta
    user, key = (quote(cast(Field, meta.get_field(name)).column) for name in ("user", "key"))
    # Fixed identifiers from the model; the values go as parameters.
    return f"SELECT 1 FROM {quote(meta.db_table)} WHERE {user} = %s AND {key} = %s"  # nosec B608


def _key_used(user_id: int, key: str) -> bool:
    """Whether this customer already booked with this key (one indexed read, no model machinery)."""
    with connection.cursor() as cursor:
        cursor.execute(_key_sql(), [user_id, key])
        return cursor.fetchone() is not None
