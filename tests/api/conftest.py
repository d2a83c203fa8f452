"""Fixtures for the JSON API tests: a signed-in customer and a client that sends their token."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from api_helpers import ApiClient
from factories import make_user
from fuzz_demo import demo, wsgi_in_test_transaction  # noqa: F401  (fixtures of the schemathesis runs)

from yuyue.accounts.services import issue_token
from yuyue.core import timeutil


@pytest.fixture
def anon() -> ApiClient:
    return ApiClient()


@pytest.fixture
def user(db: None) -> Any:
    return make_user()


@pytest.fixture
def api(user: Any) -> ApiClient:
    """A client signed in as ``user``."""
    return ApiClient(issue_token(user=user))


@pytest.fixture
def tomorrow_10() -> dt.datetime:
    return timeutil.local_datetime(timeutil.today() + dt.timedelta(days=1), dt.time(10, 0))
