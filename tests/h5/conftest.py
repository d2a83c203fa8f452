"""Fixtures for the H5 page tests: a customer signed in through the session, and one offering per kind."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from factories import make_branch, make_person, make_resource, make_slot, make_user
from h5_session import sign_in_client

from yuyue.catalog.models import ResourceType
from yuyue.core import timeutil


@pytest.fixture
def customer(db: None) -> Any:
    return make_user("13900001111")


@pytest.fixture
def signed_in(client: Client, customer: Any) -> Client:
    """A Django test client signed in as ``customer``."""
    return sign_in_client(client, customer)


@pytest.fixture
def tomorrow_10() -> dt.datetime:
    return timeutil.local_datetime(timeutil.today() + dt.timedelta(days=1), dt.time(10, 0))


@pytest.fixture
def course_slot(make_offering: Any, merchant: Any, tomorrow_10: dt.datetime) -> Any:
    """A free yoga class with a coach, tomorrow at 10:00, 5 places."""
    branch = make_branch(merchant=merchant, name="静安店", address="愚园东路 128 号")
    coach = make_resource(merchant=merchant, type=ResourceType.COACH, name="林晓雯", title="高级瑜伽导师")
    offering = make_offering("course", branch=branch, title="流瑜伽", description="跟随呼吸串联体式。")
    offering.resources.set([coach])
    return make_slot(offering=offering, start=tomorrow_10, capacity=5, resources=[coach])


@pytest.fixture
def scenic_slot(make_offering: Any, tomorrow_10: dt.datetime) -> Any:
    offering = make_offering("scenic", title="青岚山门票")
    return make_slot(offering=offering, start=tomorrow_10, minutes=240, capacity=100)


@pytest.fixture
def clinic_slot(make_offering: Any, merchant: Any, tomorrow_10: dt.datetime) -> Any:
    doctor = make_resource(merchant=merchant, type=ResourceType.DOCTOR, name="王建国", title="主任医师")
    offering = make_offering("clinic", title="儿科 · 王建国", limit_group="儿科")
    offering.resources.set([doctor])
    return make_slot(offering=offering, start=tomorrow_10, capacity=5, resources=[doctor])


@pytest.fixture
def vehicle_slot(make_offering: Any, merchant: Any, tomorrow_10: dt.datetime) -> Any:
    car = make_resource(merchant=merchant, type=ResourceType.VEHICLE, name="别克 GL8", seats=6)
    offering = make_offering("vehicle", title="机场接送")
    offering.resources.set([car])
    return make_slot(offering=offering, start=tomorrow_10, minutes=120, capacity=1, resources=[car])


@pytest.fixture
def adult(customer: Any) -> Any:
    return make_person(owner=customer, name="张伟", birth_date=dt.date(1985, 3, 1))


@pytest.fixture
def second_adult(customer: Any) -> Any:
    return make_person(owner=customer, name="李娜", relation="spouse", birth_date=dt.date(1987, 6, 1))
