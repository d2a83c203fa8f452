"""Django Ninja names OpenAPI components after schema classes: two routers with a class of the same
name would silently share one (wrong) component. Every schema of the customer API must be its own."""

from __future__ import annotations

import inspect

import pytest
from ninja import Schema

from yuyue.accounts import api as accounts_api
from yuyue.booking import api as booking_api
from yuyue.catalog import api as catalog_api
from yuyue.core import apischema
from yuyue.memberships import api as memberships_api

pytestmark = pytest.mark.django_db


def own_schemas() -> list[type[Schema]]:
    found = []
    for module in (accounts_api, booking_api, catalog_api, apischema, memberships_api):
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Schema) and cls is not Schema and cls.__module__ == module.__name__:
                found.append(cls)
    return found


def test_every_component_is_the_schema_of_its_name(client):
    components = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    checked = 0
    for cls in own_schemas():
        if cls.__name__ not in components:
            continue  # an input schema flattened into query parameters
        properties = set(components[cls.__name__].get("properties", {}))
        expected = {field.alias or name for name, field in cls.model_fields.items()}
        assert properties == expected, f"{cls.__module__}.{cls.__name__} is shadowed by another schema"
        checked += 1
    assert checked >= 20
