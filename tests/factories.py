"""Plain factory functions for tests: the smallest valid object, with any field overridable.

Every function takes keyword arguments that go straight to the model, so a test states only
what matters to it (``make_offering(kind="clinic", price_fen=500)``). Related objects that are
not given are created (a schedule without an offering gets a fresh course offering of a fresh
merchant). Names and slugs are numbered so that many objects can coexist in one test.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.hashers import Argon2PasswordHasher, make_password
from django.contrib.auth.models import User
from django.test import Client

from yuyue.catalog.models import Offering, Resource, ResourceType
from yuyue.console.access import SESSION_MERCHANT, SESSION_SIGNED_IN
from yuyue.scheduling.models import Schedule
from yuyue.tenants.models import Branch, Merchant, Staff

_numbers = itertools.count(1)


def make_merchant(**fields: Any) -> Merchant:
    """A merchant with a unique slug."""
    n = next(_numbers)
    fields.setdefault("name", f"商户{n}")
    fields.setdefault("slug", f"merchant-{n}")
    return Merchant.objects.create(**fields)


def make_branch(*, merchant: Merchant | None = None, **fields: Any) -> Branch:
    """A branch (门店) of ``merchant`` (a new merchant if none is given)."""
    fields.setdefault("name", f"门店{next(_numbers)}")
    return Branch.objects.create(merchant=merchant or make_merchant(), **fields)


def make_resource(*, merchant: Merchant | None = None, type: str = ResourceType.COACH, **fields: Any) -> Resource:
    """A coach (or any ``type`` of ResourceType) of ``merchant`` (a new merchant if none is given)."""
    fields.setdefault("name", f"资源{next(_numbers)}")
    return Resource.objects.create(merchant=merchant or make_merchant(), type=type, **fields)


def make_offering(
    *,
    kind: str = "course",
    merchant: Merchant | None = None,
    branch: Branch | None = None,
    **fields: Any,
) -> Offering:
    """An active offering of ``kind``; its merchant is the branch's, else ``merchant``, else a new one.

    Pass ``policy_overrides={...}`` to change policies, e.g. ``{"holiday_mode": "closed"}``.
    """
    if merchant is None:
        merchant = branch.merchant if branch is not None else make_merchant()
    fields.setdefault("title", f"{kind} {next(_numbers)}")
    return Offering.objects.create(merchant=merchant, branch=branch, kind=kind, **fields)


def make_schedule(
    *,
    offering: Offering | None = None,
    weekdays: Iterable[int] = range(7),
    start_time: dt.time = dt.time(9, 0),
    end_time: dt.time = dt.time(10, 0),
    capacity: int = 10,
    valid_from: dt.date = dt.date(2000, 1, 1),
    resources: Iterable[Resource] = (),
    **fields: Any,
) -> Schedule:
    """An active weekly schedule: by default every day 09:00-10:00, one slot of 10, valid since 2000."""
    schedule = Schedule.objects.create(
        offering=offering or make_offering(),
        weekdays=list(weekdays),
        start_time=start_time,
        end_time=end_time,
        capacity=capacity,
        valid_from=valid_from,
        **fields,
    )
    if resources:
        schedule.resources.set(resources)
    return schedule


# --- people, slots and bookings -------------------------------------------------------------

_phones = itertools.count(10000000)


def make_id_number(birth_date: dt.date = dt.date(1990, 1, 1), *, region: str = "110105") -> str:
    """A valid 18-digit resident ID (correct checksum), unique per call."""
    from stdnum.cn import ric

    body = f"{region}{birth_date:%Y%m%d}{next(_numbers) % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")  # it ignores the last character


def make_phone() -> str:
    """A valid, unique mainland mobile number."""
    return f"139{next(_phones):08d}"


def make_user(phone: str | None = None) -> Any:
    from yuyue.accounts.services import get_or_create_user_by_phone

    return get_or_create_user_by_phone(phone or make_phone())


def make_person(*, owner: Any = None, birth_date: dt.date = dt.date(1990, 1, 1), real_name: bool = True, **fields: Any):
    """A person in ``owner``'s account, with a valid resident ID unless ``real_name=False``."""
    from yuyue.accounts.services import add_person

    fields.setdefault("name", f"游客{next(_numbers)}")
    if real_name:
        fields.setdefault("id_number", make_id_number(birth_date))
    else:
        fields.setdefault("birth_date", birth_date)
    return add_person(owner=owner or make_user(), **fields)


def make_slot(
    *,
    offering: Offering | None = None,
    start: dt.datetime | None = None,
    minutes: int = 60,
    capacity: int = 10,
    resources: Iterable[Resource] = (),
    **fields: Any,
):
    """An open slot starting tomorrow at 10:00 local time unless ``start`` is given."""
    from yuyue.core import timeutil
    from yuyue.scheduling.models import Slot

    if start is None:
        start = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=1), dt.time(10, 0))
    slot = Slot.objects.create(
        offering=offering or make_offering(),
        start=start,
        end=start + dt.timedelta(minutes=minutes),
        capacity=capacity,
        **fields,
    )
    if resources:
        slot.resources.set(resources)
    return slot


# --- console staff ------------------------------------------------------------------------------

STAFF_PASSWORD = "correct horse battery"
_staff_numbers = itertools.count(1)


@functools.cache
def _hashed(password: str) -> str:
    """Argon2 is slow on purpose: hash each test password once, not once per staff member."""
    return make_password(password)


def make_staff(
    merchant: Merchant,
    role: str = "owner",
    *,
    username: str | None = None,
    password: str = STAFF_PASSWORD,
    branches: Iterable[Branch] = (),
    resource: Resource | None = None,
) -> User:
    user = User.objects.create(username=username or f"{role}{next(_staff_numbers)}", password=_hashed(password))
    staff = Staff.objects.create(user=user, merchant=merchant, role=role, resource=resource)
    if branches:
        staff.branches.set(branches)
    return user


def console_sign_in(client: Client, user: User, merchant: Merchant) -> Client:
    """A client with a console session, as after the sign-in pages (password and TOTP done)."""
    client.force_login(user)
    session = client.session
    session[SESSION_SIGNED_IN] = True
    session[SESSION_MERCHANT] = merchant.pk
    session.save()
    return client


def console_client(merchant: Merchant, role: str = "owner", **staff: Any) -> Client:
    """A new staff member of ``merchant`` with ``role``, signed in to the console."""
    return console_sign_in(Client(), make_staff(merchant, role, **staff), merchant)


# The demo's size in the tests that read it (conftest.demo_db loads it once for all of them).
DEMO_SCALE = 0.05


class CheapArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2 (the algorithm the settings choose) at its lowest cost: tests sign in hundreds of times,
    and what they check is who gets in, not how long a guess takes (a hash costs ~0.3 s otherwise)."""

    time_cost = 1
    memory_cost = 8
    parallelism = 1
