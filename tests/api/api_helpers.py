"""Helpers for the JSON API tests (imported as ``from api_helpers import ...``)."""

from __future__ import annotations

from typing import Any

from django.test import Client


class ApiClient:
    """Django's test client with JSON bodies and, when given, a bearer token."""

    def __init__(self, token: str | None = None) -> None:
        self.client = Client()
        self.token = token

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        out = dict(headers or {})
        if self.token:
            out.setdefault("Authorization", f"Bearer {self.token}")
        return out

    def get(self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        return self.client.get("/api/v1" + path, params or {}, headers=self._headers(headers))

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None, **extra: Any) -> Any:
        return self.client.post(
            "/api/v1" + path,
            body if body is not None else {},
            content_type="application/json",
            headers=self._headers(headers),
            **extra,
        )

    def delete(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.client.delete("/api/v1" + path, headers=self._headers(headers))


def error_code(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"], body
    return str(body["error"]["code"])
