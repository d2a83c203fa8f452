"""Who is at the desk and what they may touch: the role matrix, scoping, and the audit log.

Every console page is a ``@console_view(permission)``; every query of merchant data goes through
one of the ``scope_*`` functions, so a row of another merchant (or another branch, or another
coach's schedule) is never listed and is a 404 when asked for by id.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth import logout
from django.contrib.auth.models import User
from django.db import models
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from yuyue.console.models import AuditEntry
from yuyue.tenants.models import Merchant, Role, Staff

# --- Permissions ----------------------------------------------------------------------------

PERMISSIONS = (
    "bookings.view",
    "bookings.change",
    "bookings.export",
    "personal.full",
    "checkin",
    "customers.view",
    "customers.change",
    "memberships.change",  # issue membership cards, adjust points, edit card products (owner, manager)
    "reviews.change",
    "schedules.view",
    "schedules.change",
    "catalog.view",
    "catalog.change",
    "audit.view",
    "stats.view",  # the statistics dashboard, within the desk's scope (a coach: their own classes)
    "stats.revenue",  # money on it: booked value, paid, refunds (owner and manager)
    "payments.view",  # payments, refunds, flagged provider notifications (owner and manager)
)
_RESOURCE_ROLE = frozenset({"bookings.view", "schedules.view", "checkin", "stats.view"})
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(PERMISSIONS),
    Role.MANAGER: frozenset(PERMISSIONS) - {"audit.view"},
    Role.FRONT_DESK: frozenset(
        {
            "bookings.view",
            "bookings.change",
            "bookings.export",
            "checkin",
            "customers.view",
            "customers.change",
            "schedules.view",
            "catalog.view",
            "stats.view",
        }
    ),
    Role.COACH: _RESOURCE_ROLE,
    Role.DOCTOR: _RESOURCE_ROLE,
    Role.DRIVER: _RESOURCE_ROLE,
}
# Roles that see only their own resource's slots and bookings.
RESOURCE_ROLES = frozenset({Role.COACH, Role.DOCTOR, Role.DRIVER})

SESSION_MERCHANT = "console_merchant"
SESSION_SIGNED_IN = "console_signed_in"


@dataclass(frozen=True)
class Desk:
    """Who is working, for which merchant, with what rights."""

    user: User
    staff: Staff
    merchant: Merchant
    role: str
    branch_ids: frozenset[int] | None  # None = every branch of the merchant
    resource_id: int | None  # the coach/doctor/driver this account is, if any

    def can(self, permission: str) -> bool:
        if permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())

    @property
    def own_resource_only(self) -> bool:
        return self.role in RESOURCE_ROLES

    @property
    def permissions(self) -> frozenset[str]:
        return ROLE_PERMISSIONS.get(self.role, frozenset())


def desk_for(staff: Staff) -> Desk:
    branch_ids = frozenset(staff.branches.values_list("pk", flat=True))
    return Desk(
        user=staff.user,
        staff=staff,
        merchant=staff.merchant,
        role=staff.role,
        branch_ids=branch_ids or None,
        resource_id=staff.resource_id,
    )


def desk_of(request: HttpRequest) -> Desk:
    """The desk ``console_view`` put on the request."""
    return request.desk  # type: ignore[attr-defined,no-any-return]


def active_staff(user: User) -> QuerySet[Staff]:
    """The Staff rows that let this user into the console."""
    return Staff.objects.filter(user=user, is_active=True, merchant__is_active=True, user__is_active=True)


def current_desk(request: HttpRequest) -> Desk | None:
    """The desk of a session opened by the console sign-in (password, and TOTP when set up)."""
    user = request.user
    if not user.is_authenticated or not request.session.get(SESSION_SIGNED_IN):
        return None
    merchant_id = request.session.get(SESSION_MERCHANT)
    if merchant_id is None:
        return None
    staff = active_staff(user).select_related("merchant", "user").filter(merchant_id=merchant_id).first()  # type: ignore[arg-type]
    return desk_for(staff) if staff is not None else None


V = TypeVar("V", bound=Callable[..., HttpResponseBase])


def console_view(permission: str | None = None) -> Callable[[V], V]:
    """Signed-in staff only (else to the sign-in page); sets ``request.desk``; 403 without ``permission``."""
    if permission is not None and permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def decorate(view: V) -> V:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            desk = current_desk(request)
            if desk is None:
                if (
                    request.user.is_authenticated
                    and request.session.get(SESSION_SIGNED_IN)
                    and active_staff(request.user).exists()  # type: ignore[arg-type]
                ):
                    return redirect(
                        f"{reverse('console:choose_merchant')}?{urlencode({'next': request.get_full_path()})}"
                    )
                if request.session.get(SESSION_SIGNED_IN):
                    logout(request)  # the Staff row went away or was deactivated
                return redirect(f"{reverse('console:login')}?{urlencode({'next': request.get_full_path()})}")
            request.desk = desk  # type: ignore[attr-defined]
            if permission is not None and not desk.can(permission):
                return render(request, "console/forbidden.html", {"desk": desk}, status=403)
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


# --- Scoping --------------------------------------------------------------------------------

M = TypeVar("M", bound=models.Model)


def _branch_q(desk: Desk, field: str) -> Q:
    """Rows of the desk's branches; a row without a branch belongs to every branch."""
    if desk.branch_ids is None:
        return Q()
    return Q(**{f"{field}__in": desk.branch_ids}) | Q(**{f"{field}__isnull": True})


def _resource_slot_ids(desk: Desk) -> QuerySet[Any]:
    from yuyue.scheduling.models import Slot

    assert desk.resource_id is not None
    return Slot.resources.through.objects.filter(resource_id=desk.resource_id).values("slot_id")


def scope_branches(desk: Desk, qs: QuerySet[M]) -> QuerySet[M]:
    qs = qs.filter(merchant=desk.merchant)
    if desk.branch_ids is not None:
        qs = qs.filter(pk__in=desk.branch_ids)
    return qs


def scope_offerings(desk: Desk, qs: QuerySet[M]) -> QuerySet[M]:
    return qs.filter(Q(merchant=desk.merchant) & _branch_q(desk, "branch"))


def scope_resources(desk: Desk, qs: QuerySet[M]) -> QuerySet[M]:
    qs = qs.filter(Q(merchant=desk.merchant) & _branch_q(desk, "branch"))
    if desk.own_resource_only:
        qs = qs.filter(pk=desk.resource_id) if desk.resource_id else qs.none()
    return qs


def scope_slots(desk: Desk, qs: QuerySet[M]) -> QuerySet[M]:
    qs = qs.filter(Q(offering__merchant=desk.merchant) & _branch_q(desk, "offering__branch"))
    if desk.own_resource_only:
        qs = qs.filter(pk__in=_resource_slot_ids(desk)) if desk.resource_id else qs.none()
    return qs


def scope_bookings(desk: Desk, qs: QuerySet[M]) -> QuerySet[M]:
    qs = qs.filter(merchant=desk.merchant)
    if desk.branch_ids is not None:
        qs = qs.filter(_branch_q(desk, "offering__branch"))
    if desk.own_resource_only:
        qs = qs.filter(slot_id__in=_resource_slot_ids(desk)) if desk.resource_id else qs.none()
    return qs


def _scope_for(model: type[models.Model]) -> Callable[[Desk, QuerySet[Any]], QuerySet[Any]]:
    from yuyue.booking.models import Booking
    from yuyue.catalog.models import Offering, Resource
    from yuyue.scheduling.models import Slot
    from yuyue.tenants.models import Branch

    scopes: dict[type[models.Model], Callable[[Desk, QuerySet[Any]], QuerySet[Any]]] = {
        Booking: scope_bookings,
        Offering: scope_offerings,
        Resource: scope_resources,
        Slot: scope_slots,
        Branch: scope_branches,
    }
    if model in scopes:
        return scopes[model]
    names = {f.name for f in model._meta.get_fields()}
    if "merchant" in names:
        return lambda desk, qs: qs.filter(merchant=desk.merchant)
    if "offering" in names:  # e.g. Schedule, Review: through their offering
        return lambda desk, qs: qs.filter(Q(offering__merchant=desk.merchant) & _branch_q(desk, "offering__branch"))
    raise TypeError(f"no merchant scope for {model.__name__}; scope the queryset yourself")


def get_scoped_or_404(desk: Desk, model_or_qs: type[M] | QuerySet[M], **lookup: Any) -> M:
    """The row if it belongs to the desk's merchant (and branches, and resource); else a 404."""
    qs = model_or_qs if isinstance(model_or_qs, QuerySet) else model_or_qs._default_manager.all()
    obj = _scope_for(qs.model)(desk, qs).filter(**lookup).first()
    if obj is None:
        raise Http404
    return obj


# --- Audit log ------------------------------------------------------------------------------


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address as the whole site sees it (``YUYUE_CLIENT_IP_HEADER`` behind a proxy),
    or None when that is not an IP address (the audit column and the lockout keys need one)."""
    from yuyue.core.apischema import client_ip as site_client_ip

    try:
        return str(ipaddress.ip_address(site_client_ip(request).strip()))
    except ValueError:
        return None


def audit(request: HttpRequest, action: str, obj: models.Model | None = None, **detail: Any) -> None:
    """Write one audit entry for a staff action, in the caller's transaction."""
    desk: Desk | None = getattr(request, "desk", None)
    user = desk.user if desk else (request.user if request.user.is_authenticated else None)
    record(
        merchant=desk.merchant if desk else None,
        staff_user=user,  # type: ignore[arg-type]
        action=action,
        obj=obj,
        ip=client_ip(request),
        **detail,
    )


def record(
    *,
    merchant: Merchant | None,
    staff_user: User | None,
    action: str,
    obj: models.Model | None = None,
    ip: str | None = None,
    **detail: Any,
) -> AuditEntry:
    """The audit row itself; the API and sign-in (no desk yet) call this directly."""
    return AuditEntry.objects.create(
        merchant=merchant,
        staff_user=staff_user,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        detail={k: _jsonable(v) for k, v in detail.items()},
        ip=ip,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)
