"""Stateful run of the customer API (schemathesis): sequences of calls that follow the OpenAPI links.

Scenarios start anywhere (ids pointed at real rows as in the per-operation run) and go on along the
links the document declares (yuyue.core.openapi_links): list offerings → their slots → book one →
read, pay, reschedule, cancel that booking; add a person → remove them; join a waitlist → leave it.
Every answer must be documented and none may be a 5xx. The PostgreSQL pass sends at least
BIG_RUN_REQUESTS requests; the other databases run a short pass of the same machine.
"""

from __future__ import annotations

import json
import time
from typing import Any

import schemathesis
from django.db import connection, transaction
from fuzz_demo import CHECKS, SENT, Demo, point_at_demo_rows
from hypothesis import HealthCheck, Phase, settings
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput

from yuyue.core.openapi_links import LINKS

BIG_RUN_REQUESTS = 2000  # per-operation and stateful runs together, PostgreSQL pass
BIG_RUN_STATEFUL = 800  # this run alone (when the per-operation run was left out)
# (scenarios, most steps per scenario): the PostgreSQL pass, and every other pass.
BIG_RUN = (70, 20)
SMALL_RUN = (25, 10)
# A scenario that signs out or deletes the account would leave the others without a customer;
# those operations have their own per-operation run.
LEAVES_OUT = r"^/api/v1/(auth/logout|me)$"


def _load_schema() -> Any:
    from yuyue.wsgi import application

    return (
        schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
        .exclude(path_regex="^/api/v1/merchant")
        .exclude(path_regex=LEAVES_OUT, method="DELETE")
        .exclude(path_regex=LEAVES_OUT, method="POST")
    )


schema = _load_schema()


class Workflow(schema.as_state_machine()):  # type: ignore[misc]
    """Signs every call in as the demo customer and counts what it sends."""

    demo: Demo
    sent = 0
    statuses: dict[int, int] = {}
    linked = 0

    def setup(self) -> None:
        # Every scenario starts from the same rows: Hypothesis replays scenarios and expects the
        # API to answer a replay alike (a person removed by an earlier scenario would change it).
        self.savepoint = transaction.savepoint()
        self.turn = 0  # per scenario, so a replay points at the same rows

    def teardown(self) -> None:
        transaction.savepoint_rollback(self.savepoint)

    def step(self, input: StepInput) -> StepOutput:
        cls = type(self)
        self.turn += 1
        if input.transition is None:
            # A call not fed by a link: point most of them at real rows to get past "not found".
            if self.turn % 3:
                point_at_demo_rows(input.case, cls.demo, self.turn)
        elif input.is_applied:
            cls.linked += 1
        return super().step(input)

    def get_call_kwargs(self, case: Any) -> dict[str, Any]:
        return {"headers": {"Authorization": f"Bearer {type(self).demo.token}"}}

    def after_call(self, response: Any, case: Any) -> None:
        cls = type(self)
        cls.sent += 1
        SENT.append(response.status_code)
        cls.statuses[response.status_code] = cls.statuses.get(response.status_code, 0) + 1

    def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
        case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)


def test_every_link_of_the_document_joins_two_operations() -> None:
    """A renamed handler would silently drop its links (add_links skips them): catch it here."""
    from yuyue.api import api

    document = json.loads(json.dumps(api.get_openapi_schema()))
    operations = {op["operationId"]: op for methods in document["paths"].values() for op in methods.values()}
    for source, by_status in LINKS.items():
        assert source in operations, source
        for status, links in by_status.items():
            assert set(operations[source]["responses"][status]["links"]) == set(links), (source, status)
            for link in links.values():
                assert link["operationId"] in operations, link


def test_api_answers_as_documented_along_the_links(demo: Demo) -> None:
    big = connection.vendor == "postgresql"
    scenarios, steps = BIG_RUN if big else SMALL_RUN
    before = len(SENT)  # the per-operation run comes first in this directory
    Workflow.demo = demo
    Workflow.sent = Workflow.linked = 0
    Workflow.statuses = {}
    started = time.monotonic()
    Workflow.run(
        settings=settings(
            max_examples=scenarios,
            stateful_step_count=steps,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # shrinking replays cost minutes; report as found
            suppress_health_check=list(HealthCheck),
        )
    )
    elapsed = time.monotonic() - started
    print(f"\nstateful run: {Workflow.sent} requests ({Workflow.linked} along links) in {elapsed:.1f} s")
    print(f"statuses: {dict(sorted(Workflow.statuses.items()))}; all schemathesis requests: {len(SENT)}")
    assert not [status for status in Workflow.statuses if status >= 500]
    assert Workflow.linked > 0, "no call followed a link"
    if big and before:
        assert len(SENT) >= BIG_RUN_REQUESTS, "the PostgreSQL pass sends at least this many in all"
    elif big:
        assert Workflow.sent >= BIG_RUN_STATEFUL
    else:
        assert Workflow.sent >= scenarios
