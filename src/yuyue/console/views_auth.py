"""Console sign-in pages: password (with lockout), TOTP step and set-up, merchant chooser, sign-out."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from yuyue.console import signin
from yuyue.console.access import (
    SESSION_MERCHANT,
    SESSION_SIGNED_IN,
    active_staff,
    audit,
    client_ip,
    console_view,
    record,
)
from yuyue.console.models import TotpDevice
from yuyue.core import timeutil
from yuyue.core.errors import DomainError

SESSION_PENDING = "console_pending_user"  # password checked, TOTP code still to come
PENDING_SECONDS = 300  # the code must follow the password within five minutes


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse("console:home")


def _open_session(request: HttpRequest, user: User) -> HttpResponse:
    """Sign the user in (a new session id) and send them on to their merchant."""
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_SIGNED_IN] = True
    signin.prune_throttles()  # sign-ins are few: a good moment to tidy the counters
    staff = list(active_staff(user).select_related("merchant"))
    record(
        merchant=staff[0].merchant if len(staff) == 1 else None,
        staff_user=user,
        action="sign_in",
        ip=client_ip(request),
    )
    if len(staff) == 1:
        request.session[SESSION_MERCHANT] = staff[0].merchant_id
        return redirect(_next_url(request))
    return redirect(f"{reverse('console:choose_merchant')}?next={_next_url(request)}")


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    error = ""
    username = ""
    if request.method == "POST":
        username = request.POST.get("username", "")
        try:
            user = signin.check_password(
                request, username=username, password=request.POST.get("password", ""), ip=client_ip(request)
            )
            if not active_staff(user).exists():
                raise DomainError("forbidden", _("This account does not work for any merchant."))
        except DomainError as exc:
            error = exc.fields.get("username") or exc.message
        else:
            if signin.totp_required(user):
                request.session.cycle_key()
                request.session[SESSION_PENDING] = [user.pk, timeutil.now().timestamp()]
                return redirect(f"{reverse('console:login_totp')}?next={_next_url(request)}")
            return _open_session(request, user)
    return render(
        request,
        "console/login.html",
        {"error": error, "username": username, "next": _next_url(request)},
        status=400 if error else 200,
    )


@require_http_methods(["GET", "POST"])
def login_totp(request: HttpRequest) -> HttpResponse:
    pending = request.session.get(SESSION_PENDING) or [None, 0]
    fresh = timeutil.now().timestamp() - pending[1] < PENDING_SECONDS
    user = User.objects.filter(pk=pending[0], is_active=True).first() if pending[0] and fresh else None
    if user is None:
        request.session.pop(SESSION_PENDING, None)
        return redirect("console:login")
    error = ""
    if request.method == "POST":
        try:
            signin.verify_totp(user, request.POST.get("code", ""), ip=client_ip(request))
        except DomainError as exc:
            error = exc.fields.get("code") or exc.message
        else:
            del request.session[SESSION_PENDING]
            return _open_session(request, user)
    return render(
        request, "console/login_totp.html", {"error": error, "next": _next_url(request)}, status=400 if error else 200
    )


@require_http_methods(["GET", "POST"])
def choose_merchant(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated or not request.session.get(SESSION_SIGNED_IN):
        return redirect("console:login")
    staff = list(active_staff(request.user).select_related("merchant").order_by("merchant__name"))  # type: ignore[arg-type]
    if request.method == "POST":
        chosen = next((s for s in staff if str(s.merchant_id) == request.POST.get("merchant")), None)
        if chosen is not None:
            request.session[SESSION_MERCHANT] = chosen.merchant_id
            return redirect(_next_url(request))
        messages.error(request, _("Please choose one of your merchants."))
    return render(request, "console/choose_merchant.html", {"staff": staff, "next": _next_url(request)})


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("console:login")


@console_view()
def home(request: HttpRequest) -> HttpResponse:
    desk = request.desk  # type: ignore[attr-defined]
    for permission, name in (("bookings.view", "console:bookings"), ("checkin", "console:checkin")):
        if desk.can(permission):
            return redirect(name)
    return redirect("console:security")


@console_view()
@require_http_methods(["GET", "POST"])
def security(request: HttpRequest) -> HttpResponse:
    """Turn the authenticator (TOTP) on: show a QR, verify a first code; or turn it off."""
    user = request.user
    assert isinstance(user, User)
    action = request.POST.get("action")
    error = ""
    if action == "start":
        signin.start_totp(user)
    elif action == "confirm":
        try:
            with transaction.atomic():
                signin.confirm_totp(user, request.POST.get("code", ""))
                audit(request, "totp_on", user)
            messages.success(request, _("Two-step sign-in is on."))
            return redirect("console:security")
        except DomainError as exc:
            error = exc.fields.get("code") or exc.message
    elif action == "disable":
        with transaction.atomic():
            if signin.disable_totp(user):
                audit(request, "totp_off", user)
        messages.success(request, _("Two-step sign-in is off."))
        return redirect("console:security")
    device = TotpDevice.objects.filter(user=user).first()
    context = {"device": device, "error": error}
    if device is not None and device.confirmed_at is None:
        uri = signin.provisioning_uri(device)
        context.update(qr=signin.qr_svg(uri), secret=device.secret)
    return render(request, "console/security.html", context, status=400 if error else 200)
