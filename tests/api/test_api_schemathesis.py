"""Property-based run of the API against its own OpenAPI document (schemathesis).

Every operation of /api/v1 is called with generated requests, signed in with a real token (a
customer's; the merchant section with the owner's staff token) over demo-like data; path
parameters point at real rows two times in three, so the handlers get past "not found". Every
answer must be documented (status, content type, JSON schema) and none may be a 5xx.
"""

from __future__ import annotations

import itertools
from typing import Any

import schemathesis
from django.conf import settings as settings_module
from fuzz_demo import CHECKS, SENT, Demo, point_at_demo_rows
from hypothesis import HealthCheck, settings

# The PostgreSQL pass sends the big run (with the stateful run, at least 2,000 requests: see
# test_api_stateful); the other passes call every operation on their database with fewer examples.
BIG_PASS = settings_module.DATABASES["default"]["ENGINE"].endswith("postgresql")
EXAMPLES_PER_OPERATION = 30 if BIG_PASS else 10


def _load_schema() -> Any:
    # Loaded at collection: the OpenAPI document needs no database. (Loading it from a fixture
    # with ``schemathesis.pytest.from_fixture`` does not work with pytest 9 yet.)
    from yuyue.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application).exclude(path_regex="^/api/v1/merchant")


schema = _load_schema()
merchant_schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", schema.app).include(
    path_regex="^/api/v1/merchant"
)
_turn = itertools.count()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_answers_as_documented(case: Any, demo: Demo) -> None:
    turn = next(_turn)
    if turn % 3:
        point_at_demo_rows(case, demo, turn)
    headers = {"Authorization": f"Bearer {demo.token}"}
    response = case.call(headers=headers)
    SENT.append(response.status_code)
    case.validate_response(response, checks=CHECKS, headers=headers, transport_kwargs={"headers": headers})


@merchant_schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_merchant_api_answers_as_documented(case: Any, demo: Demo) -> None:
    headers = {"Authorization": f"Bearer {demo.staff_token}"}
    response = case.call(headers=headers)
    SENT.append(response.status_code)
    case.validate_response(response, checks=CHECKS, headers=headers, transport_kwargs={"headers": headers})
