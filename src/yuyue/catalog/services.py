"""Setting up what is sold: resources (coaches, doctors, vehicles, rooms) and offerings.

Everything a merchant types is checked before anything is saved; a refusal is one
``DomainError("invalid")`` with a translated message next to each field. An offering stores
only where its policy differs from its kind's (``Offering.policy_overrides``), so a kind's
defaults keep reaching every offering that did not change them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _
from pydantic import ValidationError as PydanticError

from yuyue.catalog.kinds import KINDS
from yuyue.catalog.models import Offering, Resource, ResourceType
from yuyue.catalog.policy import FormField, Policy
from yuyue.core.errors import DomainError
from yuyue.tenants.models import Branch, Merchant

# The policy switches the console edits; the rest keep their kind's defaults unless set elsewhere.
EDITABLE_POLICY = (
    "opens_days_ahead",
    "closes_minutes_before_start",
    "requires_approval",
    "payment",
    "dynamic_voucher",
    "max_party_size",
    "per_person_per_day",
    "limit_scope",
    "cancel_deadline_hours",
    "late_cancel_points",
    "late_cancel_refund_percent",
    "max_reschedules",
    "holiday_mode",
    "holiday_capacity_factor",
    "no_show_ban",
    "completion_points",
    "no_show_points",
    "points_may_go_negative",
    "min_attendance",
    "min_attendance_check_hours",
    "waiting_room",
)
HOLIDAY_POLICY = ("holiday_mode", "holiday_capacity_factor")


# --------------------------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceSpec:
    name: str
    type: str
    title: str = ""
    bio: str = ""
    seats: int | None = None
    plate: str = ""
    branch: Branch | None = None
    is_active: bool = True


def save_resource(*, merchant: Merchant, spec: ResourceSpec, resource: Resource | None = None) -> Resource:
    """Create or edit a coach, doctor, driver, vehicle or room of ``merchant``."""
    errors: dict[str, Any] = {}
    name = spec.name.strip()
    if not name:
        errors["name"] = _("Please enter a name.")
    elif len(name) > 60:
        errors["name"] = _("At most %(n)d characters.") % {"n": 60}
    if spec.type not in ResourceType.values:
        errors["type"] = _("Unknown type.")
    if len(spec.title.strip()) > 60:
        errors["title"] = _("At most %(n)d characters.") % {"n": 60}
    if spec.seats is not None and spec.seats < 1:
        errors["seats"] = _("At least 1 seat.")
    if len(spec.plate.strip()) > 20:
        errors["plate"] = _("At most %(n)d characters.") % {"n": 20}
    if spec.branch is not None and spec.branch.merchant_id != merchant.pk:
        errors["branch"] = _("Choose one of your branches.")
    if resource is not None and resource.merchant_id != merchant.pk:
        raise DomainError("not_found")
    if errors:
        raise DomainError("invalid", fields=errors)

    target = resource or Resource(merchant=merchant)
    target.name = name
    target.type = spec.type
    target.title = spec.title.strip()
    target.bio = spec.bio.strip()
    target.seats = spec.seats
    target.plate = spec.plate.strip().upper()
    target.branch = spec.branch
    target.is_active = spec.is_active
    target.save()
    return target


# --------------------------------------------------------------------------------------------
# Offerings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfferingSpec:
    kind: str
    title: str
    description: str = ""
    branch: Branch | None = None
    price_fen: int = 0
    limit_group: str = ""
    form_fields: Sequence[Mapping[str, Any]] = ()
    policy: Mapping[str, Any] = field(default_factory=dict)  # values of EDITABLE_POLICY keys
    resources: Sequence[Resource] = ()
    is_active: bool = True


def save_offering(
    *, merchant: Merchant, spec: OfferingSpec, offering: Offering | None = None, now: dt.datetime | None = None
) -> Offering:
    """Create or edit an offering: its kind, texts, price, booking form and policy.

    When the holiday rule changes, future slots follow at once (capacity never below what is
    booked; slots on holidays that are now closed are removed unless booked).
    """
    if offering is not None and offering.merchant_id != merchant.pk:
        raise DomainError("not_found")
    errors: dict[str, Any] = {}
    title = spec.title.strip()
    if spec.kind not in KINDS:
        errors["kind"] = _("Unknown kind.")
    if not title:
        errors["title"] = _("Please enter a title.")
    elif len(title) > 100:
        errors["title"] = _("At most %(n)d characters.") % {"n": 100}
    if spec.price_fen < 0:
        errors["price_fen"] = _("The price cannot be negative.")
    if len(spec.limit_group.strip()) > 50:
        errors["limit_group"] = _("At most %(n)d characters.") % {"n": 50}
    if spec.branch is not None and spec.branch.merchant_id != merchant.pk:
        errors["branch"] = _("Choose one of your branches.")
    if any(r.merchant_id != merchant.pk for r in spec.resources):
        errors["resources"] = _("Resources must belong to the offering's merchant.")
    form, form_errors = clean_form_fields(spec.form_fields)
    errors.update(form_errors)
    overrides: dict[str, Any] = {}
    if spec.kind in KINDS:
        unknown = sorted(set(spec.policy) - set(EDITABLE_POLICY))
        if unknown:
            raise ValueError(f"not editable here: {unknown}")
        previous = offering.policy_overrides if offering is not None else {}
        overrides, policy_errors = clean_policy(spec.kind, {**(previous or {}), **spec.policy})
        errors.update(policy_errors)
    if errors:
        raise DomainError("invalid", fields=errors)

    kind_form = [f.model_dump() for f in KINDS[spec.kind].form]
    form_rows = [f.model_dump() for f in form]
    before = offering.policy if offering is not None else None
    with transaction.atomic():
        target = offering or Offering(merchant=merchant)
        target.kind = spec.kind
        target.title = title
        target.description = spec.description.strip()
        target.branch = spec.branch
        target.price_fen = spec.price_fen
        target.limit_group = spec.limit_group.strip()
        # Same as the kind's form: store nothing, so the kind's form keeps applying.
        target.form_fields = [] if form_rows == kind_form else form_rows
        target.policy_overrides = overrides
        target.is_active = spec.is_active
        target.save()
        target.resources.set(spec.resources)
        target.__dict__.pop("policy", None)
        target.__dict__.pop("form", None)
    if before is not None and any(getattr(before, k) != getattr(target.policy, k) for k in HOLIDAY_POLICY):
        from yuyue.scheduling.services import refresh_offering_slots

        refresh_offering_slots(offering=target, now=now)
    return target


def clean_form_fields(rows: Sequence[Mapping[str, Any]]) -> tuple[list[FormField], dict[str, Any]]:
    """The booking form's questions, validated row by row; errors name the row."""
    fields: list[FormField] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        data = {k: v for k, v in row.items() if v not in (None, "")}
        if data.get("type") != "choice":
            data.pop("choices", None)
        try:
            question = FormField.model_validate(data)
        except PydanticError as exc:
            where = ", ".join(str(e["loc"][0]) for e in exc.errors() if e.get("loc"))
            problems.append(str(_("Row %(n)d: check %(fields)s.") % {"n": number, "fields": where}))
            continue
        if question.key in seen:
            problems.append(str(_("Row %(n)d: the key %(key)s is used twice.") % {"n": number, "key": question.key}))
        elif question.type == "choice" and not question.choices:
            problems.append(str(_("Row %(n)d: a choice needs its options.") % {"n": number}))
        seen.add(question.key)
        fields.append(question)
    return fields, ({"form_fields": " ".join(problems)} if problems else {})


def clean_policy(kind: str, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Overrides of ``kind``'s policy that differ from its defaults, or translated errors by field."""
    default = KINDS[kind].policy
    try:
        merged = default.merged(dict(values))
    except PydanticError as exc:
        return {}, {str(e["loc"][0]): _policy_message(e) for e in exc.errors() if e.get("loc")}
    ours = merged.model_dump(mode="json")
    theirs = default.model_dump(mode="json")
    return {k: v for k, v in ours.items() if v != theirs[k]}, {}


def _policy_message(error: Mapping[str, Any]) -> Any:
    context = error.get("ctx") or {}
    if error["type"] == "greater_than_equal":
        return _("Must be at least %(n)s.") % {"n": context.get("ge")}
    if error["type"] == "greater_than":
        return _("Must be more than %(n)s.") % {"n": context.get("gt")}
    if error["type"] == "less_than_equal":
        return _("Must be at most %(n)s.") % {"n": context.get("le")}
    return _("Not a valid value.")


def policy_values(offering: Offering | None, kind: str) -> dict[str, Any]:
    """The editable policy values an editor starts from: the offering's, else the kind's defaults."""
    policy: Policy = offering.policy if offering is not None and offering.kind == kind else KINDS[kind].policy
    return {k: getattr(policy, k) for k in EDITABLE_POLICY}
