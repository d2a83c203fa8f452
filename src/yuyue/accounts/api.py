"""Sign-in and "my people" endpoints of the JSON API (/api/v1/auth/..., /api/v1/me/...)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from yuyue.accounts import services
from yuyue.accounts.models import EndUser, Person, Relation
from yuyue.core import ratelimit, timeutil
from yuyue.core.apischema import AUTH_ERRORS, DbId, Text, error_responses, user_auth
from yuyue.core.apischema import client_ip as _client_ip

router = Router()


# --- Schemas ------------------------------------------------------------------------------------


class UserOut(Schema):
    id: int
    phone_masked: str
    nickname: str = ""
    points_balance: int = 0


class TokenOut(Schema):
    token: str
    user: UserOut


class OtpIn(Schema):
    phone: Text = Field(..., max_length=32, description="mainland mobile number")


class OtpOut(Schema):
    expires_in: int = Field(..., description="seconds the code stays valid")
    resend_after: int = Field(..., description="seconds before another code can be asked for")


class LoginIn(Schema):
    phone: Text = Field(..., max_length=32)
    code: Text = Field(..., max_length=16, description="the 6-digit code from the text message")


class MiniProgramLoginIn(Schema):
    code: Text = Field(..., max_length=128, description="wx.login / my.getAuthCode code")


class PersonIn(Schema):
    name: Text = Field(..., max_length=50)
    relation: Relation = Relation.SELF
    id_number: Text | None = Field(None, max_length=32)
    phone: Text | None = Field(None, max_length=32)
    birth_date: dt.date | None = None
    guardian_id: DbId | None = Field(None, description="an adult among the account's people (children under 14)")
    sensitive_consent: bool = Field(
        False,
        description="separate consent (PIPL art. 29/31) to an ID number or a child under 14; required then, "
        "see GET /privacy/consent-texts",
    )


class PersonOut(Schema):
    id: int
    name: str
    relation: str
    id_number: str = Field(..., description="masked, e.g. 110105********1234")
    phone: str = Field(..., description="masked, e.g. 138****5678")
    birth_date: dt.date | None
    is_minor: bool
    guardian_id: int | None


def user_out(user: EndUser) -> dict:
    return {
        "id": user.pk,
        "phone_masked": user.phone_masked,
        "nickname": user.nickname,
        "points_balance": user.points_balance,
    }


def person_out(person: Person) -> dict:
    return {
        "id": person.pk,
        "name": person.name,
        "relation": person.relation,
        "id_number": person.id_masked,
        "phone": person.phone_masked,
        "birth_date": person.birth_date,
        "is_minor": person.is_minor_on(timeutil.today(), services.MINOR_AGE),
        "guardian_id": person.guardian_id,
    }


def _signed_in(user: EndUser) -> dict:
    return {"token": services.sign_in_token(user), "user": user_out(user)}


# --- Sign-in ------------------------------------------------------------------------------------


@router.post(
    "/auth/otp",
    response={202: OtpOut, **error_responses("rate_limited", "unavailable")},
    tags=["sign-in"],
    summary="Text a sign-in code to a phone",
    description="In demo mode (no SMS gateway configured) the code is written to the server console.",
)
def request_otp(request: HttpRequest, payload: OtpIn) -> Status[dict]:
    services.request_login_code(payload.phone, ip=_client_ip(request))
    return Status(
        202, {"expires_in": settings.LOGIN_CODE_TTL_SECONDS, "resend_after": settings.LOGIN_CODE_RESEND_SECONDS}
    )


@router.post(
    "/auth/login",
    response={200: TokenOut, **error_responses("forbidden", "rate_limited")},
    tags=["sign-in"],
    summary="Sign in with phone and code",
)
def login(request: HttpRequest, payload: LoginIn) -> dict:
    ratelimit.sign_in_ip(request)
    return _signed_in(services.login_with_code(payload.phone, payload.code))


@router.post(
    "/auth/wechat",
    response={200: TokenOut, **error_responses("forbidden", "rate_limited", "unavailable")},
    tags=["sign-in"],
    summary="Sign in from a WeChat mini-program (wx.login code)",
    description='In demo mode a local sandbox stands in for WeChat: codes starting with "demo-" sign in.',
)
def login_wechat(request: HttpRequest, payload: MiniProgramLoginIn) -> dict:
    ratelimit.sign_in_ip(request)
    return _signed_in(services.login_with_wechat(payload.code))


@router.post(
    "/auth/alipay",
    response={200: TokenOut, **error_responses("forbidden", "rate_limited", "unavailable")},
    tags=["sign-in"],
    summary="Sign in from an Alipay mini-program (my.getAuthCode code)",
    description='In demo mode a local sandbox stands in for Alipay: codes starting with "demo-" sign in.',
)
def login_alipay(request: HttpRequest, payload: MiniProgramLoginIn) -> dict:
    ratelimit.sign_in_ip(request)
    return _signed_in(services.login_with_alipay(payload.code))


@router.post(
    "/auth/logout",
    auth=user_auth,
    response={204: None, **error_responses(*AUTH_ERRORS)},
    tags=["sign-in"],
    summary="Sign out: the token stops working",
)
def logout(request: HttpRequest) -> Status[None]:
    services.revoke_token(request.bearer_token)  # type: ignore[attr-defined]
    return Status(204, None)


@router.get("/me", auth=user_auth, response={200: UserOut, **error_responses(*AUTH_ERRORS)}, tags=["people"])
def me(request: HttpRequest) -> dict:
    return user_out(request.auth)  # type: ignore[attr-defined]


@router.delete(
    "/me",
    auth=user_auth,
    response={204: None, **error_responses(*AUTH_ERRORS, "not_allowed")},
    tags=["privacy"],
    summary="Delete my account",
    description="Refused (409 not_allowed, with the upcoming bookings, payments, refunds and cards in `fields`) "
    "until nothing is pending; then phone, people and personal booking data are wiped and every token revoked. "
    "Bookings stay as anonymous records for the merchants' statistics and ledger.",
)
def delete_me(request: HttpRequest) -> Status[None]:
    from yuyue.privacy import services as privacy

    privacy.delete_account(request.auth)  # type: ignore[attr-defined]
    return Status(204, None)


# --- My people ------------------------------------------------------------------------------------


@router.get(
    "/me/people",
    auth=user_auth,
    response={200: list[PersonOut], **error_responses(*AUTH_ERRORS)},
    tags=["people"],
    summary="My people (常用联系人 / 就诊人 / 游客)",
)
def list_people(request: HttpRequest) -> list[dict]:
    people = Person.objects.filter(owner=request.auth, is_deleted=False)  # type: ignore[attr-defined]
    return [person_out(p) for p in people]


@router.post(
    "/me/people",
    auth=user_auth,
    response={201: PersonOut, **error_responses(*AUTH_ERRORS)},
    tags=["people"],
    summary="Add a person; the resident ID is checked and a child needs a guardian",
)
def add_person(request: HttpRequest, payload: PersonIn) -> Status[dict]:
    from yuyue.privacy import services as privacy

    person = privacy.add_person(
        owner=request.auth,  # type: ignore[attr-defined]
        consent=payload.sensitive_consent,
        ip=_client_ip(request) or None,
        name=payload.name,
        relation=payload.relation,
        id_number=payload.id_number,
        phone=payload.phone,
        birth_date=payload.birth_date,
        guardian_id=payload.guardian_id,
    )
    return Status(201, person_out(person))


@router.delete(
    "/me/people/{person_id}",
    auth=user_auth,
    response={204: None, **error_responses(*AUTH_ERRORS, "not_found")},
    tags=["people"],
    summary="Remove a person (past bookings keep their copy)",
)
def remove_person(request: HttpRequest, person_id: DbId) -> Status[None]:
    from yuyue.privacy import services as privacy  # also wipes the ID and phone, withdraws consents

    privacy.remove_person(owner=request.auth, person_id=person_id)  # type: ignore[attr-defined]
    return Status(204, None)
