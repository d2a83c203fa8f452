"""The JSON API root (/api/v1): one NinjaAPI, every error in the shape API.md promises."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from yuyue import __version__
from yuyue.core.errors import DomainError


class YuyueAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict | None = None) -> Any:
        """Ninja's document plus the links between operations (yuyue.core.openapi_links)."""
        from yuyue.core.openapi_links import add_links

        return add_links(super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params))


api = YuyueAPI(
    title="yuyue API",
    version="1",
    description="预约 — booking API for mini-programs and H5 clients. Money is integer fen; times are ISO 8601.",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


def error_response(request: HttpRequest, exc: DomainError) -> HttpResponse:
    """The one shape of an API refusal: ``{"error": {...}}`` with its status (and Retry-After)."""
    response = api.create_response(request, exc.as_dict(), status=exc.status)
    if "retry_after" in exc.details:
        response["Retry-After"] = str(exc.details["retry_after"])
    return response


@api.exception_handler(DomainError)
def domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return error_response(request, exc)


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields = {}
    for err in exc.errors:
        loc = [str(p) for p in err.get("loc", []) if p not in {"body", "query", "path", "header", "payload", "filters"}]
        fields[".".join(loc) or "body"] = err.get("msg", "")
    return error_response(request, DomainError("invalid", fields=fields))


@api.exception_handler(AuthenticationError)
def auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(request, DomainError("unauthorized"))


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 429: "rate_limited"}.get(
        exc.status_code, "invalid"
    )
    return error_response(request, DomainError(code, str(exc) or None))


@api.get("/health", tags=["system"], summary=str(_("Health check")))
def health(request: HttpRequest) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"status": "ok", "version": __version__, "database": connection.vendor}


# Routers are mounted last so that their modules can import `api` helpers from here.
from yuyue.accounts.api import router as accounts_router  # noqa: E402
from yuyue.assistant.api import router as assistant_router  # noqa: E402
from yuyue.booking.api import router as booking_router  # noqa: E402
from yuyue.catalog.api import router as catalog_router  # noqa: E402
from yuyue.console.api import router as merchant_router  # noqa: E402
from yuyue.insights.api import merchant_router as insights_merchant_router  # noqa: E402
from yuyue.insights.api import router as insights_router  # noqa: E402
from yuyue.memberships.api import router as memberships_router  # noqa: E402
from yuyue.notify.api import router as notify_router  # noqa: E402
from yuyue.payments.api import router as payments_router  # noqa: E402
from yuyue.privacy.api import router as privacy_router  # noqa: E402

api.add_router("", accounts_router)
api.add_router("", catalog_router)
api.add_router("", booking_router)
api.add_router("/merchant", merchant_router)
api.add_router("", notify_router)
api.add_router("/merchant", insights_merchant_router)
api.add_router("", insights_router)
api.add_router("", memberships_router)
api.add_router("", payments_router)
api.add_router("", assistant_router)
api.add_router("", privacy_router)
