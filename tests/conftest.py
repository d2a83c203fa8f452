"""Fixtures shared by every test package; the factories behind them are in ``factories.py``.

Test directories have no ``__init__.py``: pytest puts this directory on ``sys.path``, so test
modules import the factories with ``from factories import ...`` (test file names must be unique).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import factories
import pytest

from yuyue.catalog.models import Offering
from yuyue.tenants.models import Branch, Merchant


@pytest.fixture
def merchant(db: None) -> Merchant:
    return factories.make_merchant()


@pytest.fixture
def branch(merchant: Merchant) -> Branch:
    return factories.make_branch(merchant=merchant)


@pytest.fixture
def make_offering(merchant: Merchant) -> Callable[..., Offering]:
    """``make_offering(kind="course", **overrides)``: an offering of the ``merchant`` fixture by default."""

    def make(kind: str = "course", **overrides: Any) -> Offering:
        if "branch" not in overrides:  # with a branch, the branch's merchant is the default
            overrides.setdefault("merchant", merchant)
        return factories.make_offering(kind=kind, **overrides)

    return make
