"""Resources and offerings set up by staff: validated as a whole, stored as differences from the kind."""

from __future__ import annotations

import pytest
from factories import make_branch, make_resource

from yuyue.catalog.kinds import KINDS
from yuyue.catalog.models import Offering, Resource
from yuyue.catalog.services import OfferingSpec, ResourceSpec, clean_policy, policy_values, save_offering, save_resource
from yuyue.core.errors import DomainError

pytestmark = pytest.mark.django_db


def test_a_vehicle_is_saved_with_its_seats_and_plate(merchant):
    branch = make_branch(merchant=merchant)
    van = save_resource(
        merchant=merchant, spec=ResourceSpec(name=" 考斯特 ", type="vehicle", seats=19, plate="沪a12345", branch=branch)
    )
    assert (van.name, van.seats, van.plate, van.branch) == ("考斯特", 19, "沪A12345", branch)

    save_resource(merchant=merchant, resource=van, spec=ResourceSpec(name="考斯特", type="vehicle", is_active=False))
    van.refresh_from_db()
    assert not van.is_active and van.seats is None


def test_a_resource_with_bad_fields_is_refused_and_not_saved(merchant):
    with pytest.raises(DomainError) as refusal:
        save_resource(merchant=merchant, spec=ResourceSpec(name="", type="wizard", seats=0, branch=make_branch()))
    assert set(refusal.value.fields) == {"name", "type", "seats", "branch"}
    assert not Resource.objects.exists()


def test_another_merchants_resource_cannot_be_edited(merchant):
    theirs = make_resource()
    with pytest.raises(DomainError) as refusal:
        save_resource(merchant=merchant, resource=theirs, spec=ResourceSpec(name="x", type="coach"))
    assert refusal.value.code == "not_found"


def test_an_offering_stores_only_what_differs_from_its_kind(merchant):
    coach = make_resource(merchant=merchant)
    offering = save_offering(
        merchant=merchant,
        spec=OfferingSpec(
            kind="course",
            title="阴瑜伽",
            price_fen=8000,
            form_fields=[
                {"key": "level", "label": "水平", "type": "choice", "required": True, "choices": ["初级", "中级"]}
            ],
            policy={
                "cancel_deadline_hours": 12,
                "late_cancel_points": 10,  # the course default
                "late_cancel_refund_percent": 50,
                "no_show_ban": {"count": 2, "window_days": 30, "ban_days": 14},
            },
            resources=[coach],
        ),
    )
    assert offering.policy_overrides == {
        "cancel_deadline_hours": 12.0,
        "late_cancel_refund_percent": 50,
        "no_show_ban": {"count": 2, "window_days": 30, "ban_days": 14},
    }
    assert offering.policy.no_show_ban is not None and offering.policy.no_show_ban.ban_days == 14
    assert [f.key for f in offering.form] == ["level"]
    assert list(offering.resources.all()) == [coach]
    assert policy_values(offering, "course")["cancel_deadline_hours"] == 12


def test_an_offering_with_the_kinds_form_keeps_following_the_kind(merchant):
    rows = [f.model_dump() for f in KINDS["activity"].form]
    offering = save_offering(merchant=merchant, spec=OfferingSpec(kind="activity", title="读书会", form_fields=rows))
    assert offering.form_fields == []


def test_bad_form_rows_and_policy_numbers_are_refused_field_by_field(merchant):
    with pytest.raises(DomainError) as refusal:
        save_offering(
            merchant=merchant,
            spec=OfferingSpec(
                kind="clinic",
                title="",
                price_fen=-1,
                form_fields=[
                    {"key": "Bad Key", "label": "x"},
                    {"key": "a", "label": "A", "type": "choice"},
                    {"key": "a", "label": "again"},
                ],
                policy={"late_cancel_refund_percent": 150, "holiday_capacity_factor": 0, "max_party_size": 0},
            ),
        )
    fields = refusal.value.fields
    assert set(fields) == {
        "title",
        "price_fen",
        "form_fields",
        "late_cancel_refund_percent",
        "holiday_capacity_factor",
        "max_party_size",
    }
    assert "1" in str(fields["form_fields"]) and "2" in str(fields["form_fields"]) and "3" in str(fields["form_fields"])
    assert not Offering.objects.exists()


def test_clean_policy_reports_the_limit_in_its_message():
    overrides, errors = clean_policy("course", {"late_cancel_refund_percent": 150})
    assert overrides == {} and "100" in str(errors["late_cancel_refund_percent"])
