"""Notification endpoints for mini-program and H5 clients (/api/v1/me/inbox, /me/subscriptions,
/me/notification-settings)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from yuyue.core.apischema import AUTH_ERRORS, Offset, Text, error_responses, user_auth
from yuyue.notify import services

router = Router()


class InboxMessageOut(Schema):
    id: int
    event: str
    title: str
    body: str
    booking_code: str | None
    read: bool
    created_at: dt.datetime


class InboxOut(Schema):
    unread: int
    messages: list[InboxMessageOut]


class InboxReadOut(Schema):
    marked: int


class SubscriptionsIn(Schema):
    template_ids: list[Annotated[Text, Field(min_length=1, max_length=64)]] = Field(
        ..., max_length=20, description="the templates the user accepted in wx.requestSubscribeMessage"
    )


class SubscriptionsOut(Schema):
    recorded: int = Field(..., description="consents recorded: each allows one message")


class NotificationSettingsSchema(Schema):
    inbox: bool = True
    sms: bool = True
    email: bool = False
    wechat: bool = True
    email_address: Text = Field("", max_length=254)


@router.get(
    "/me/inbox",
    auth=user_auth,
    response={200: InboxOut, **error_responses(*AUTH_ERRORS)},
    tags=["notifications"],
    summary="My in-app messages, newest first",
)
def inbox(request: HttpRequest, offset: Offset = 0) -> dict:
    user = request.auth  # type: ignore[attr-defined]
    rows = services.inbox(user)[offset : offset + 50]
    return {
        "unread": services.unread_count(user),
        "messages": [
            {
                "id": m.pk,
                "event": m.event,
                "title": m.title,
                "body": m.body,
                "booking_code": m.booking.code if m.booking else None,
                "read": m.read_at is not None,
                "created_at": m.created_at,
            }
            for m in rows
        ],
    }


@router.post(
    "/me/inbox/read",
    auth=user_auth,
    response={200: InboxReadOut, **error_responses(*AUTH_ERRORS)},
    tags=["notifications"],
    summary="Mark every message read",
)
def inbox_read(request: HttpRequest) -> dict:
    return {"marked": services.mark_all_read(request.auth)}  # type: ignore[attr-defined]


@router.post(
    "/me/subscriptions",
    auth=user_auth,
    response={201: SubscriptionsOut, **error_responses(*AUTH_ERRORS)},
    tags=["notifications"],
    summary="Record WeChat subscribe-message consents (one message each)",
)
def subscriptions(request: HttpRequest, payload: SubscriptionsIn) -> Status[dict]:
    recorded = services.record_consents(user=request.auth, template_ids=payload.template_ids)  # type: ignore[attr-defined]
    return Status(201, {"recorded": recorded})


def _settings_out(prefs: object) -> dict:
    return {name: getattr(prefs, name) for name in ("inbox", "sms", "email", "wechat", "email_address")}


@router.get(
    "/me/notification-settings",
    auth=user_auth,
    response={200: NotificationSettingsSchema, **error_responses(*AUTH_ERRORS)},
    tags=["notifications"],
    summary="The channels I want",
)
def get_settings(request: HttpRequest) -> dict:
    return _settings_out(services.preferences_of(request.auth))  # type: ignore[attr-defined]


@router.put(
    "/me/notification-settings",
    auth=user_auth,
    response={200: NotificationSettingsSchema, **error_responses(*AUTH_ERRORS)},
    tags=["notifications"],
    summary="Choose channels (email needs an address)",
)
def put_settings(request: HttpRequest, payload: NotificationSettingsSchema) -> dict:
    prefs = services.save_preferences(user=request.auth, **payload.dict())  # type: ignore[attr-defined]
    return _settings_out(prefs)
