"""Every console page renders for the owner of the merchant."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_owner_pages_render(shop_a, desk_client):
    client = desk_client(shop_a.staff["owner"], shop_a.merchant)
    for name, args in [
        ("console:bookings", []),
        ("console:booking", [shop_a.visit.code]),
        ("console:booking", [shop_a.pending.code]),
        ("console:booking_new", []),
        ("console:checkin", []),
        ("console:customers", []),
        ("console:customer", [shop_a.customer.pk]),
        ("console:reviews", []),
        ("console:audit", []),
        ("console:security", []),
    ]:
        response = client.get(reverse(name, args=args))
        assert response.status_code == 200, (name, response.content[:500])
    response = client.get(reverse("console:booking_new") + f"?offering={shop_a.exhibition.pk}")
    assert response.status_code == 200
