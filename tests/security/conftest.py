"""The world the security tests attack: two merchants (``console_world.Shop``), each with a customer
who has bookings and people of their own, and staff of every role.

The console's and the H5's test helpers live beside their tests; test directories are not packages, so
that directory is put on ``sys.path`` here, the way pytest does for the console tests themselves.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

for _beside in ("console", "h5"):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / _beside))

from console_world import Shop, build_shop  # noqa: E402


@pytest.fixture
def shop_a(db: None) -> Shop:
    return build_shop("甲瑜伽馆")


@pytest.fixture
def shop_b(db: None) -> Shop:
    return build_shop("乙博物馆")
