"""Who is signed in on the H5 pages: an end user's id in the Django session, nothing else.

End users are not Django users (staff are), so the H5 keeps its own session key instead of
``django.contrib.auth``'s; the admin's sign-in and this one never mix.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from importlib import import_module
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from yuyue.accounts.models import EndUser

SESSION_KEY = "h5_user_id"


def current_user(request: HttpRequest) -> EndUser | None:
    """The signed-in end user, looked up once per request; a deactivated account is signed out."""
    if not hasattr(request, "_h5_user"):
        user = None
        user_id = request.session.get(SESSION_KEY)
        if user_id is not None:
            user = EndUser.objects.filter(pk=user_id, is_active=True).first()
        request._h5_user = user  # type: ignore[attr-defined]
    return request._h5_user  # type: ignore[attr-defined]


def sign_in(request: HttpRequest, user: EndUser) -> None:
    # A new session key at sign-in, so a key planted before sign-in is worth nothing after it.
    request.session.cycle_key()
    request.session[SESSION_KEY] = user.pk
    request._h5_user = user  # type: ignore[attr-defined]


def sign_out(request: HttpRequest) -> None:
    # Only the H5 sign-in goes: the same browser may also be signed in to the merchant console.
    request.session.pop(SESSION_KEY, None)
    request.session.cycle_key()
    request._h5_user = None  # type: ignore[attr-defined]


def safe_next(request: HttpRequest, default: str) -> str:
    """Where to go back to: a path on this site only (never an open redirect)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return default


def signin_url(next_path: str) -> str:
    return f"{reverse('h5:signin')}?{urlencode({'next': next_path})}"


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def user_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Send visitors to sign in first and bring them back to this page afterwards."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = current_user(request)
        if user is None:
            if is_htmx(request):
                # Back to the page the fragment was asked from, not to the fragment itself.
                current = urlsplit(request.headers.get("HX-Current-URL", ""))
                back = current.path + (f"?{current.query}" if current.query else "")
            else:
                back = request.get_full_path() if request.method == "GET" else request.path
            target = signin_url(back or reverse("h5:home"))
            if is_htmx(request):
                response = HttpResponse(status=204)
                response["HX-Redirect"] = target
                return response
            return HttpResponseRedirect(target)
        return view(request, user, *args, **kwargs)

    return wrapper


def new_session_for(user: EndUser) -> str:
    """A fresh signed-in session for ``user``, stored server-side; returns its key (the cookie value).

    For operator tooling such as the screenshot script, which signs the demo user in without
    an SMS round trip; people sign in through the SMS code form.
    """
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = user.pk
    store.create()
    return str(store.session_key)
