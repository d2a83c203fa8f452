"""The demo data the schemathesis runs call the API with, and how generated requests are pointed at it.

Shared by the per-operation run (test_api_schemathesis) and the stateful run (test_api_stateful).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import override_settings
from factories import (
    make_branch,
    make_offering,
    make_person,
    make_phone,
    make_resource,
    make_slot,
    make_staff,
    make_user,
)
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from yuyue.accounts.services import issue_token, request_login_code
from yuyue.booking import services
from yuyue.core import timeutil
from yuyue.integrations.sms import ConsoleSmsBackend

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Status codes of every request the schemathesis runs of this session sent (both runs append here),
# so the stateful run can check the total the PostgreSQL pass promises.
SENT: list[int] = []


@dataclass
class Demo:
    token: str
    ids: dict[str, list[Any]]
    staff_token: str = ""  # the merchant's owner, for /api/v1/merchant


@pytest.fixture
def wsgi_in_test_transaction(db: None) -> Any:
    """Called directly through WSGI, Django would close the test's connection after each request;
    keep it open the way Django's own test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def demo(wsgi_in_test_transaction: None) -> Any:
    """A customer with people and bookings in several states, and offerings of four kinds."""
    with override_settings(RATE_BOOKING_USER="100000/60", RATE_LOGIN_CODE_IP="100000/3600"):
        user = make_user()
        start = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=2), dt.time(10, 0))
        branch = make_branch(address="上海市黄浦区中山东一路1号")
        coach = make_resource(merchant=branch.merchant, name="许教练")
        course = make_offering(kind="course", branch=branch, description="哈他瑜伽")
        course.resources.add(coach)
        scenic = make_offering(kind="scenic", branch=branch, price_fen=6000)
        vehicle = make_offering(kind="vehicle", branch=branch)
        clinic = make_offering(kind="clinic", branch=branch, price_fen=1500)
        slots = [make_slot(offering=course, start=start + dt.timedelta(hours=h), resources=[coach]) for h in range(3)]
        slots += [make_slot(offering=o, start=start) for o in (scenic, vehicle, clinic)]
        full = make_slot(offering=course, start=start + dt.timedelta(days=1), capacity=1)
        services.book(user=make_user(), slot_id=full.pk)
        people = [make_person(owner=user, name="赵敏"), make_person(owner=user, name="周芷若")]
        confirmed = services.book(user=user, slot_id=slots[0].pk)
        unpaid = services.book(user=user, slot_id=slots[3].pk, person_ids=[people[0].pk])
        visited_slot = make_slot(offering=course, start=timeutil.now() + dt.timedelta(minutes=20))
        visited = services.book(user=user, slot_id=visited_slot.pk, now=timeutil.now() - dt.timedelta(days=1))
        services.check_in(voucher=services.voucher_for(visited), staff=None)
        waiting = services.join_waitlist(user=user, slot_id=full.pk)
        yield Demo(
            token=issue_token(user=user),
            staff_token=issue_token(staff_user=make_staff(branch.merchant, "owner")),
            ids={
                "offering_id": [course.pk, scenic.pk, vehicle.pk, clinic.pk],
                "slot_id": [s.pk for s in slots] + [full.pk],
                "person_id": [p.pk for p in people],
                "code": [confirmed.code, unpaid.code, visited.code],
                "entry_id": [waiting.pk],
                "move_to": [slots[1].pk, slots[2].pk],
            },
        )


def point_at_demo_rows(case: Any, demo: Demo, turn: int) -> None:
    """Swap generated ids (and sign-in inputs) for real ones, keeping the rest of the request."""
    for name in list(case.path_parameters or {}):
        if name in demo.ids:
            choices = demo.ids[name]
            case.path_parameters[name] = choices[turn % len(choices)]
    body = case.body
    if not isinstance(body, dict):
        return
    if "slot_id" in body:
        # A move must stay within the offering: offer the course's other times to reschedule.
        choices = demo.ids["move_to"] if case.path.endswith("/reschedule") else demo.ids["slot_id"]
        body["slot_id"] = choices[turn % len(choices)]
    if isinstance(body.get("people"), list):
        body["people"] = demo.ids["person_id"][: 1 + turn % 2]
    if case.path.endswith(("/auth/wechat", "/auth/alipay")) and isinstance(body.get("code"), str):
        body["code"] = f"demo-{body['code'][:20]}"
    if case.path.endswith(("/auth/otp", "/auth/login")) and "phone" in body:
        body["phone"] = make_phone()
        if case.path.endswith("/auth/login"):
            request_login_code(body["phone"], ip=f"10.{turn % 250}.0.1")
            message = ConsoleSmsBackend.last_for(body["phone"])
            body["code"] = message.params["code"] if message else "000000"
