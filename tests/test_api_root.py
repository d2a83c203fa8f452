"""The API root: OpenAPI document, docs page, health, and the error shape of API.md."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_openapi_document_is_served(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


def test_docs_page_is_served(client):
    assert client.get("/api/v1/docs").status_code == 200


def test_health_names_the_database(client):
    from django.db import connection

    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok" and body["database"] == connection.vendor


def test_unknown_path_is_a_json_404(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404


def test_domain_errors_have_the_contract_shape():
    from yuyue.core.errors import DomainError

    body = DomainError("invalid", fields={"phone": "bad"}).as_dict()
    assert body == {"error": {"code": "invalid", "message": body["error"]["message"], "fields": {"phone": "bad"}}}
    assert body["error"]["message"]


def test_docs_page_loads_swagger_locally_not_from_a_cdn(client):
    html = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
