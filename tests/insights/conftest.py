"""The statistics tests' shared studio (tests/insights/stats_world.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from stats_world import Studio, build_studio


@pytest.fixture(scope="module")
def studio(django_db_setup: None, django_db_blocker: Any) -> Iterator[Studio]:
    """Built once for the module (its tests only read it; each rolls back what it adds itself), in a
    transaction rolled back when the module ends."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_studio()
        transaction.set_rollback(True)
