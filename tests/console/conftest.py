"""Fixtures for console tests: two merchants with bookings, signed-in clients (see console_world)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from console_world import Shop, build_shop, sign_in
from django.contrib.auth.models import User
from django.test import Client

from yuyue.tenants.models import Merchant


@pytest.fixture
def shop_a(db: None) -> Shop:
    return build_shop("甲瑜伽馆")


@pytest.fixture
def shop_b(db: None) -> Shop:
    return build_shop("乙博物馆")


@pytest.fixture
def desk_client(client: Client) -> Callable[..., Client]:
    """``desk_client(user, merchant)``: a fresh signed-in client (one per call)."""

    def make(user: User, merchant: Merchant) -> Client:
        return sign_in(Client(), user, merchant)

    return make
