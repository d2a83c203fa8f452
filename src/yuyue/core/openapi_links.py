"""OpenAPI links of /api/v1: how an answer's ids feed the next call.

A client (and a stateful API fuzzer) reads them as "after POST /bookings, GET /bookings/{code} with
the code of the answer". They live here, one table for the whole API, and are written into the
document that Ninja builds (see ``yuyue.api``), keyed by operationId so routers stay unaware of them.
"""

from __future__ import annotations

from typing import Any

P = "yuyue_"  # Ninja's operationIds are <module path>_<function>

BOOKING_CODE = {"code": "$response.body#/code"}
# The operations that take a booking code in their path, by link name.
ON_BOOKING = {
    "GetBooking": f"{P}booking_api_get_booking",
    "PreviewCancel": f"{P}booking_api_cancel_preview",
    "CancelBooking": f"{P}booking_api_cancel_booking",
    "RescheduleBooking": f"{P}booking_api_reschedule_booking",
    "GetVoucher": f"{P}booking_api_voucher",
    "GetCalendarEntry": f"{P}booking_api_calendar",
    "PayBooking": f"{P}payments_api_pay",
    "GetBookingPayments": f"{P}payments_api_booking_payments",
}


def _booking_links(code: dict[str, str]) -> dict[str, Any]:
    return {name: {"operationId": op, "parameters": code} for name, op in ON_BOOKING.items()}


# operationId → response status → links.
LINKS: dict[str, dict[str, dict[str, Any]]] = {
    f"{P}booking_api_create_booking": {
        "201": _booking_links(BOOKING_CODE),
        "200": _booking_links(BOOKING_CODE),  # the same request again answers the booking it made
    },
    f"{P}booking_api_list_bookings": {"200": _booking_links({"code": "$response.body#/items/0/code"})},
    f"{P}booking_api_reschedule_booking": {"200": _booking_links(BOOKING_CODE)},
    f"{P}booking_api_join_waitlist": {
        "201": {
            "LeaveWaitlist": {
                "operationId": f"{P}booking_api_leave_waitlist",
                "parameters": {"entry_id": "$response.body#/id"},
            }
        }
    },
    f"{P}catalog_api_list_offerings": {
        "200": {
            name: {"operationId": op, "parameters": {"offering_id": "$response.body#/items/0/id"}}
            for name, op in {
                "GetOffering": f"{P}catalog_api_get_offering",
                "ListSlots": f"{P}catalog_api_list_slots",
            }.items()
        }
    },
    f"{P}catalog_api_list_slots": {
        "200": {
            "BookSlot": {
                "operationId": f"{P}booking_api_create_booking",
                "requestBody": {"slot_id": "$response.body#/0/id"},
            },
            "JoinWaitlist": {
                "operationId": f"{P}booking_api_join_waitlist",
                "parameters": {"slot_id": "$response.body#/0/id"},
            },
        }
    },
    f"{P}accounts_api_add_person": {
        "201": {
            "RemovePerson": {
                "operationId": f"{P}accounts_api_remove_person",
                "parameters": {"person_id": "$response.body#/id"},
            }
        }
    },
    f"{P}accounts_api_list_people": {
        "200": {
            "RemovePerson": {
                "operationId": f"{P}accounts_api_remove_person",
                "parameters": {"person_id": "$response.body#/0/id"},
            }
        }
    },
}


def add_links(document: dict[str, Any]) -> dict[str, Any]:
    """Write LINKS into the responses of ``document`` (in place), leaving out links whose source or
    target operation is not in it (a renamed handler must not break the document; a test checks
    that every link found both ends)."""
    operations = {
        op.get("operationId"): op
        for methods in document.get("paths", {}).values()
        for op in methods.values()
        if isinstance(op, dict)
    }
    for source, by_status in LINKS.items():
        if source not in operations:
            continue
        responses = operations[source].get("responses", {})
        for status, links in by_status.items():
            # Ninja keys responses by int; the JSON document has strings either way.
            response = responses.get(int(status)) or responses.get(status)
            if response is None:
                continue
            kept = {name: link for name, link in links.items() if link["operationId"] in operations}
            if kept:
                response.setdefault("links", {}).update(kept)
    return document
