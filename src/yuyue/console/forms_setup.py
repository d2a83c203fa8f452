"""Forms of the set-up pages: they parse what staff type; the rules live in the services.

A form turns the request into a service's input (``ScheduleSpec``, ``OfferingSpec``, ...); a
service's refusal (``DomainError`` with field errors) is put back onto the form next to the
field it concerns, so staff see every problem at once and nothing is saved.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext_lazy as _

from yuyue.catalog.kinds import KIND_CHOICES
from yuyue.catalog.models import Offering, Resource, ResourceType
from yuyue.catalog.policy import FormField
from yuyue.catalog.services import EDITABLE_POLICY, OfferingSpec, ResourceSpec, policy_values
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.scheduling.models import Schedule
from yuyue.scheduling.services import ScheduleSpec
from yuyue.tenants.models import Branch

# Service field names that a form spells differently.
FIELD_ALIASES = {"price_fen": "price_yuan", "date": "day"}


def put_errors(form: forms.Form, exc: DomainError) -> None:
    """Show a service's refusal on the form: next to its field when there is one, else on top."""
    if not exc.fields:
        form.add_error(None, exc.message)
        return
    for name, message in exc.fields.items():
        name = FIELD_ALIASES.get(name, name)
        form.add_error(name if name in form.fields else None, str(message))


def yuan_to_fen(value: Decimal | None) -> int | None:
    return None if value is None else int((value * 100).to_integral_value())


def fen_to_yuan(value: int | None) -> Decimal | None:
    return None if value is None else (Decimal(value) / 100).quantize(Decimal("0.01"))


def _choices(form: forms.Form, name: str) -> forms.ModelChoiceField:
    """A model choice field of the form, to give it the desk's own rows."""
    field = form.fields[name]
    assert isinstance(field, forms.ModelChoiceField)
    return field


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


class TimeInput(forms.TimeInput):
    input_type = "time"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%H:%M", **kwargs)


class PriceField(forms.DecimalField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 10)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("min_value", Decimal(0))
        super().__init__(**kwargs)


class ResourceChoices(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj: Any) -> str:
        return str(obj)


# --- weekly rules and slots -------------------------------------------------------------------


class ScheduleForm(forms.Form):
    offering = forms.ModelChoiceField(label=_("Offering"), queryset=Offering.objects.none())
    name = forms.CharField(label=_("Rule name"), max_length=100, required=False, help_text=_("Optional, e.g. 早课"))
    weekdays = forms.TypedMultipleChoiceField(
        label=_("Weekdays"),
        choices=sorted(WEEKDAYS.items()),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    workdays_only = forms.BooleanField(
        label=_("Follow the official working-day calendar instead (closed on holidays, open on make-up days)"),
        required=False,
    )
    start_time = forms.TimeField(label=_("Start"), widget=TimeInput())
    end_time = forms.TimeField(label=_("End"), widget=TimeInput())
    slot_minutes = forms.IntegerField(
        label=_("Slot length (minutes)"),
        required=False,
        help_text=_("Empty: one slot from start to end. 30: 09:00–09:30, 09:30–10:00, …"),
    )
    capacity = forms.IntegerField(label=_("Capacity per slot"))
    price_yuan = PriceField(label=_("Price (yuan)"), required=False, help_text=_("Empty: the offering's price."))
    resources = ResourceChoices(
        label=_("Coach, doctor, vehicle or room"), queryset=Resource.objects.none(), required=False
    )
    valid_from = forms.DateField(label=_("First day"), widget=DateInput())
    valid_until = forms.DateField(
        label=_("Last day"), widget=DateInput(), required=False, help_text=_("Empty: no end.")
    )

    def __init__(
        self,
        *args: Any,
        offerings: QuerySet[Offering],
        resources: QuerySet[Resource],
        schedule: Schedule | None = None,
        **kwargs: Any,
    ) -> None:
        if schedule is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "offering": schedule.offering_id,
                "name": schedule.name,
                "weekdays": schedule.weekdays,
                "workdays_only": schedule.workdays_only,
                "start_time": schedule.start_time,
                "end_time": schedule.end_time,
                "slot_minutes": schedule.slot_minutes,
                "capacity": schedule.capacity,
                "price_yuan": fen_to_yuan(schedule.price_fen),
                "resources": list(schedule.resources.values_list("pk", flat=True)),
                "valid_from": schedule.valid_from,
                "valid_until": schedule.valid_until,
            }
        kwargs.setdefault("initial", {}).setdefault("valid_from", timeutil.today())
        super().__init__(*args, **kwargs)
        _choices(self, "offering").queryset = offerings
        _choices(self, "resources").queryset = resources.filter(is_active=True)
        if schedule is not None:
            self.fields["offering"].disabled = True  # a rule stays with its offering

    def spec(self) -> ScheduleSpec:
        data = self.cleaned_data
        return ScheduleSpec(
            name=data["name"],
            weekdays=data["weekdays"],
            workdays_only=data["workdays_only"],
            start_time=data["start_time"],
            end_time=data["end_time"],
            slot_minutes=data["slot_minutes"],
            capacity=data["capacity"],
            price_fen=yuan_to_fen(data["price_yuan"]),
            resources=list(data["resources"]),
            valid_from=data["valid_from"],
            valid_until=data["valid_until"],
        )


class SlotForm(forms.Form):
    offering = forms.ModelChoiceField(label=_("Offering"), queryset=Offering.objects.none())
    day = forms.DateField(label=_("Date"), widget=DateInput())
    start_time = forms.TimeField(label=_("Start"), widget=TimeInput())
    end_time = forms.TimeField(label=_("End"), widget=TimeInput())
    capacity = forms.IntegerField(label=_("Capacity"))
    price_yuan = PriceField(label=_("Price (yuan)"), required=False, help_text=_("Empty: the offering's price."))
    resources = ResourceChoices(
        label=_("Coach, doctor, vehicle or room"), queryset=Resource.objects.none(), required=False
    )

    def __init__(self, *args: Any, offerings: QuerySet[Offering], resources: QuerySet[Resource], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "offering").queryset = offerings
        _choices(self, "resources").queryset = resources.filter(is_active=True)

    def times(self) -> tuple[dt.datetime, dt.datetime]:
        data = self.cleaned_data
        return (
            timeutil.local_datetime(data["day"], data["start_time"]),
            timeutil.local_datetime(data["day"], data["end_time"]),
        )


class CapacityForm(forms.Form):
    capacity = forms.IntegerField(label=_("Capacity"))


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (customers are told it)"),
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. 台风红色预警，暂停营业")}),
    )


class CloseDayForm(forms.Form):
    SCOPES = [("merchant", _("Everything")), ("branch", _("One branch")), ("offering", _("One offering"))]
    day = forms.DateField(label=_("Date"), widget=DateInput())
    scope = forms.ChoiceField(label=_("What closes"), choices=SCOPES, widget=forms.RadioSelect, initial="merchant")
    branch = forms.ModelChoiceField(label=_("Branch"), queryset=Branch.objects.none(), required=False)
    offering = forms.ModelChoiceField(label=_("Offering"), queryset=Offering.objects.none(), required=False)
    reason = ReasonForm.base_fields["reason"]

    def __init__(
        self,
        *args: Any,
        branches: QuerySet[Branch],
        offerings: QuerySet[Offering],
        whole_merchant: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "branch").queryset = branches
        _choices(self, "offering").queryset = offerings
        if not whole_merchant:  # staff limited to some branches close only what is theirs
            scope: forms.ChoiceField = self.fields["scope"]  # type: ignore[assignment]
            scope.choices = self.SCOPES[1:]
            scope.initial = "branch"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scope = data.get("scope")
        if scope == "branch" and not data.get("branch"):
            self.add_error("branch", _("Choose the branch."))
        if scope == "offering" and not data.get("offering"):
            self.add_error("offering", _("Choose the offering."))
        return data

    def scope_args(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "branch": data["branch"] if data["scope"] == "branch" else None,
            "offering": data["offering"] if data["scope"] == "offering" else None,
        }


# --- resources and offerings ------------------------------------------------------------------


class ResourceForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=60)
    type = forms.ChoiceField(label=_("Type"), choices=ResourceType.choices)
    title = forms.CharField(label=_("Job title"), max_length=60, required=False, help_text=_("e.g. 主任医师, 高级教练"))
    branch = forms.ModelChoiceField(
        label=_("Branch"), queryset=Branch.objects.none(), required=False, empty_label=_("Every branch")
    )
    seats = forms.IntegerField(label=_("Seats"), required=False, help_text=_("Vehicles and rooms"))
    plate = forms.CharField(label=_("Plate number"), max_length=20, required=False)
    bio = forms.CharField(label=_("Introduction"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args: Any, branches: QuerySet[Branch], resource: Resource | None = None, **kwargs: Any) -> None:
        if resource is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": resource.name,
                "type": resource.type,
                "title": resource.title,
                "branch": resource.branch_id,
                "seats": resource.seats,
                "plate": resource.plate,
                "bio": resource.bio,
                "is_active": resource.is_active,
            }
        super().__init__(*args, **kwargs)
        _choices(self, "branch").queryset = branches

    def spec(self) -> ResourceSpec:
        data = self.cleaned_data
        return ResourceSpec(
            name=data["name"],
            type=data["type"],
            title=data["title"],
            branch=data["branch"],
            seats=data["seats"],
            plate=data["plate"],
            bio=data["bio"],
            is_active=data["is_active"],
        )


class FormFieldRow(forms.Form):
    """One question of the booking form."""

    key = forms.CharField(label=_("Key"), max_length=40, required=False, help_text=_("a-z, 0-9, _"))
    label = forms.CharField(label=_("Question"), max_length=60, required=False)
    type = forms.ChoiceField(
        label=_("Answer type"),
        choices=[
            ("text", _("text")),
            ("choice", _("choice")),
            ("number", _("number")),
            ("date", _("date")),
            ("phone", _("phone")),
            ("id_number", _("resident ID")),
        ],
        required=False,
    )
    required = forms.BooleanField(label=_("Required"), required=False)
    choices = forms.CharField(label=_("Options (for a choice), separated by commas"), max_length=500, required=False)

    def row(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        if not data or not (data.get("key") or data.get("label")):
            return None  # an empty row
        options = [c.strip() for c in (data.get("choices") or "").replace("，", ",").replace("、", ",").split(",")]
        return {
            "key": (data.get("key") or "").strip(),
            "label": (data.get("label") or "").strip(),
            "type": data.get("type") or "text",
            "required": bool(data.get("required")),
            "choices": [c for c in options if c],
        }


FormFieldRows = forms.formset_factory(FormFieldRow, extra=3, max_num=30)


def form_rows_initial(questions: list[FormField]) -> list[dict[str, Any]]:
    return [
        {"key": q.key, "label": q.label, "type": q.type, "required": q.required, "choices": ", ".join(q.choices)}
        for q in questions
    ]


# Policy fields whose blank input keeps the kind's default (they have no "off" value of their own).
BLANK_IS_DEFAULT = frozenset({"completion_points", "no_show_points", "min_attendance_check_hours"})


class OfferingForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=KIND_CHOICES)
    title = forms.CharField(label=_("Title"), max_length=100)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    branch = forms.ModelChoiceField(
        label=_("Branch"), queryset=Branch.objects.none(), required=False, empty_label=_("Every branch")
    )
    price_yuan = PriceField(label=_("Price (yuan)"), initial=Decimal(0))
    limit_group = forms.CharField(
        label=_("Limit group"),
        max_length=50,
        required=False,
        help_text=_("Offerings sharing a group share per-person limits, e.g. a clinic department."),
    )
    resources = ResourceChoices(label=_("Resources"), queryset=Resource.objects.none(), required=False)
    is_active = forms.BooleanField(label=_("On sale"), required=False, initial=True)

    # --- policy
    opens_days_ahead = forms.IntegerField(
        label=_("Booking opens (days ahead)"), required=False, help_text=_("Empty: any time.")
    )
    closes_minutes_before_start = forms.IntegerField(label=_("Booking closes (minutes before the start)"))
    requires_approval = forms.BooleanField(label=_("Bookings need approval"), required=False)
    payment = forms.ChoiceField(
        label=_("Payment"),
        choices=[("online", _("paid online when booking")), ("on_site", _("paid at the venue"))],
        help_text=_("Free offerings ignore this."),
    )
    dynamic_voucher = forms.BooleanField(
        label=_("Dynamic entry QR code"),
        required=False,
        help_text=_("The QR code changes every 30 seconds, so screenshots cannot be resold."),
    )
    max_party_size = forms.IntegerField(label=_("Group size: at most this many people per booking"))
    per_person_per_day = forms.IntegerField(
        label=_("Per ID: at most this many bookings a day"), required=False, help_text=_("Empty: no limit.")
    )
    limit_scope = forms.ChoiceField(
        label=_("The per-ID limit counts"),
        choices=[
            ("offering", _("for this offering")),
            ("group", _("for its limit group (department)")),
            ("merchant", _("across the merchant")),
        ],
    )
    cancel_deadline_hours = forms.FloatField(label=_("Free cancellation until (hours before the start)"))
    late_cancel_points = forms.IntegerField(label=_("Points a late cancellation costs"))
    late_cancel_refund_percent = forms.IntegerField(label=_("Refund after the deadline (percent)"))
    max_reschedules = forms.IntegerField(label=_("Reschedules allowed per booking"))
    holiday_mode = forms.ChoiceField(
        label=_("On statutory holidays"),
        choices=[
            ("normal", _("open as usual")),
            ("closed", _("closed that day")),
            ("factor", _("open with reduced capacity")),
        ],
    )
    holiday_capacity_factor = forms.FloatField(
        label=_("Holiday capacity factor"), help_text=_("0.75: three quarters of the usual places.")
    )
    no_show_ban = forms.BooleanField(label=_("Ban after repeated no-shows"), required=False)
    no_show_count = forms.IntegerField(label=_("No-shows"), required=False, initial=3)
    no_show_window_days = forms.IntegerField(label=_("within (days)"), required=False, initial=90)
    no_show_ban_days = forms.IntegerField(label=_("ban for (days)"), required=False, initial=90)
    # Points and minimum attendance (blank: the kind's default; a blank minimum switches the check off).
    completion_points = forms.IntegerField(label=_("Points earned per completed booking"), required=False)
    no_show_points = forms.IntegerField(label=_("Points a no-show costs"), required=False)
    points_may_go_negative = forms.BooleanField(
        label=_("Points may go below zero"),
        required=False,
        help_text=_("Otherwise a deduction takes at most what the customer has."),
    )
    min_attendance = forms.IntegerField(
        label=_("Minimum attendance"),
        required=False,
        help_text=_("Fewer booked at the check time: the class is cancelled and everyone refunded. Empty: off."),
    )
    min_attendance_check_hours = forms.FloatField(label=_("Check attendance (hours before the start)"), required=False)
    # Holiday rush: a daily peak window in which booking requests queue above a rate (core/waitingroom.py).
    waiting_room = forms.BooleanField(
        label=_("Waiting room at peak times"),
        required=False,
        help_text=_("Above this many people a second, customers queue and see their place instead of an error."),
    )
    waiting_room_starts = forms.TimeField(label=_("Peak starts at (every day)"), required=False, initial="08:00")
    waiting_room_minutes = forms.IntegerField(label=_("Peak lasts (minutes)"), required=False, initial=30)
    waiting_room_admit_per_second = forms.IntegerField(
        label=_("Let through (people per second)"), required=False, initial=50
    )

    # The policy keys the console edits (catalog.services decides which); the no-show rule has its
    # own three fields above.
    POLICY_FIELDS = tuple(key for key in EDITABLE_POLICY if key not in {"no_show_ban", "waiting_room"})

    def __init__(
        self,
        *args: Any,
        branches: QuerySet[Branch],
        resources: QuerySet[Resource],
        offering: Offering | None = None,
        kind: str = "course",
        **kwargs: Any,
    ) -> None:
        if "initial" not in kwargs:
            kind = offering.kind if offering is not None else kind
            policy = policy_values(offering, kind)
            ban = policy.pop("no_show_ban")
            room = policy.pop("waiting_room")
            initial: dict[str, Any] = {**policy, "kind": kind, "no_show_ban": ban is not None}
            if ban is not None:
                initial.update(
                    no_show_count=ban.count, no_show_window_days=ban.window_days, no_show_ban_days=ban.ban_days
                )
            if room is not None:
                initial.update(
                    waiting_room=True,
                    waiting_room_starts=room.starts,
                    waiting_room_minutes=room.minutes,
                    waiting_room_admit_per_second=room.admit_per_second,
                )
            if offering is not None:
                initial.update(
                    title=offering.title,
                    description=offering.description,
                    branch=offering.branch_id,
                    price_yuan=fen_to_yuan(offering.price_fen),
                    limit_group=offering.limit_group,
                    resources=list(offering.resources.values_list("pk", flat=True)),
                    is_active=offering.is_active,
                )
            kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        _choices(self, "branch").queryset = branches
        _choices(self, "resources").queryset = resources

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("no_show_ban"):
            for name in ("no_show_count", "no_show_window_days", "no_show_ban_days"):
                if data.get(name) is None:
                    self.add_error(name, _("Required for the no-show rule."))
        if data.get("waiting_room"):
            for name in ("waiting_room_starts", "waiting_room_minutes", "waiting_room_admit_per_second"):
                if data.get(name) is None:
                    self.add_error(name, _("Required for the waiting room."))
        return data

    def spec(self, form_rows: list[dict[str, Any]]) -> OfferingSpec:
        data = self.cleaned_data
        policy: dict[str, Any] = {
            name: data[name] for name in self.POLICY_FIELDS if data[name] is not None or name not in BLANK_IS_DEFAULT
        }
        policy["no_show_ban"] = (
            {
                "count": data["no_show_count"],
                "window_days": data["no_show_window_days"],
                "ban_days": data["no_show_ban_days"],
            }
            if data["no_show_ban"]
            else None
        )
        policy["waiting_room"] = (
            {
                "starts": data["waiting_room_starts"].strftime("%H:%M"),
                "minutes": data["waiting_room_minutes"],
                "admit_per_second": data["waiting_room_admit_per_second"],
            }
            if data["waiting_room"]
            else None
        )
        return OfferingSpec(
            kind=data["kind"],
            title=data["title"],
            description=data["description"],
            branch=data["branch"],
            price_fen=yuan_to_fen(data["price_yuan"]) or 0,
            limit_group=data["limit_group"],
            form_fields=form_rows,
            policy=policy,
            resources=list(data["resources"]),
            is_active=data["is_active"],
        )


def put_offering_errors(form: OfferingForm, exc: DomainError) -> None:
    """Policy errors come back as ``count``/``window_days``/``ban_days`` of ``no_show_ban`` too."""
    fields = dict(exc.fields)
    if "no_show_ban" in fields:
        form.add_error("no_show_ban", str(fields.pop("no_show_ban")))
    if "waiting_room" in fields:
        form.add_error("waiting_room", str(fields.pop("waiting_room")))
    put_errors(
        form, DomainError(exc.code, exc.message, fields=fields) if fields else DomainError(exc.code, exc.message)
    )
