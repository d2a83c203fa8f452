"""Personal data of finished bookings is wiped after YUYUE_PERSONAL_DATA_RETENTION_DAYS; statistics,
exports and the ledger stay as they were."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from privacy_world import book_at, build_spot

from yuyue import cli
from yuyue.accounts.models import Person
from yuyue.booking import services as engine
from yuyue.booking.models import Attendee, Booking, Claim
from yuyue.console.access import desk_for
from yuyue.core import timeutil
from yuyue.insights import stats
from yuyue.ledger import services as ledger
from yuyue.privacy import services
from yuyue.tasks import JOBS
from yuyue.tenants.models import Staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def history():
    """Bookings of a spot: finished long ago (in each final state), finished lately, still upcoming."""
    spot = build_spot()
    long_ago = timeutil.now() - dt.timedelta(days=200)
    old = {
        "cancelled": book_at(spot, long_ago),
        "no_show": book_at(spot, long_ago + dt.timedelta(days=1)),
        "completed": book_at(spot, long_ago + dt.timedelta(days=2)),
        "form": book_at(spot, long_ago + dt.timedelta(days=3), offering=spot.activity),
    }
    engine.cancel(booking=old["cancelled"], by=spot.customer, now=long_ago - dt.timedelta(minutes=30))
    engine.mark_no_show(booking=old["no_show"], staff=None, now=long_ago + dt.timedelta(days=1, hours=2))
    done = old["completed"]
    engine.check_in(voucher=engine.voucher_for(done), staff=None, now=done.slot.start)
    engine.complete_finished(now=done.slot.end + dt.timedelta(minutes=1))
    engine.check_in(voucher=engine.voucher_for(old["form"]), staff=None, now=old["form"].slot.start)
    engine.complete_finished(now=old["form"].slot.end + dt.timedelta(minutes=1))
    recent = book_at(spot, timeutil.now() - dt.timedelta(days=100))
    engine.mark_no_show(booking=recent, staff=None, now=recent.slot.end)
    for booking in [*old.values(), recent]:
        booking.refresh_from_db()
    return spot, old, recent


def dashboard(spot) -> dict:
    desk = desk_for(Staff.objects.select_related("merchant", "user").get(user=spot.staff["owner"]))
    today = timeutil.today()
    params = {"date_from": (today - dt.timedelta(days=400)).isoformat(), "date_to": today.isoformat()}
    return stats.dashboard(stats.Scope(desk, stats.Period.parse(desk, params)))


def test_old_finished_bookings_are_anonymised_and_nothing_else(history):
    spot, old, recent = history
    assert {b.status for b in old.values()} == {"cancelled", "no_show", "completed"}
    before = dashboard(spot)
    recent_people = list(recent.attendees.values_list("name", "id_number", "phone"))

    assert services.anonymise_finished(dry_run=True) == 4
    assert Attendee.objects.exclude(name=services.ANONYMISED).count() == Attendee.objects.count()  # dry run
    assert services.anonymise_finished(batch=3) == 4  # two batches
    assert services.anonymise_finished() == 0  # idempotent

    for booking in old.values():
        assert set(booking.attendees.values_list("name", "id_number", "id_hash", "phone")) <= {
            (services.ANONYMISED, "", "", "")
        }
        again = Booking.objects.get(pk=booking.pk)
        assert (again.status, again.amount_fen, again.party_size) == (
            booking.status,
            booking.amount_fen,
            booking.party_size,
        )
        assert not Claim.objects.filter(booking=booking).exists()
    form = Booking.objects.get(pk=old["form"].pk)
    assert form.answers == {"name": "已匿名", "phone": "已匿名", "id_card": "已匿名", "size": "M"}  # the choice stays
    assert list(recent.attendees.values_list("name", "id_number", "phone")) == recent_people
    assert dashboard(spot) == before
    assert ledger.verify().ok


def test_the_retention_period_is_a_setting(history):
    spot, _old, recent = history
    # Removed the old way (hidden only): the job wipes the ID number and phone as well.
    Person.objects.filter(pk=spot.visitors[0].pk).update(is_deleted=True)
    with override_settings(PERSONAL_DATA_RETENTION_DAYS=30):
        assert services.anonymise_finished() == 5
    assert recent.attendees.first().name == services.ANONYMISED
    removed = Person.objects.get(pk=spot.visitors[0].pk)
    assert (removed.id_number, removed.phone) == ("", "")
    assert Person.objects.get(pk=spot.visitors[1].pk).id_number == spot.visitors[1].id_number


def test_the_periodic_job_and_the_command(history, capsys):
    assert cli.main(["privacy", "anonymise", "--dry-run"]) == 0
    assert "4 bookings" in capsys.readouterr().out
    assert JOBS["anonymise_personal_data"]() == 4
    assert cli.main(["privacy", "anonymise"]) == 0
    assert "0 bookings" in capsys.readouterr().out
    assert cli.main(["ledger", "verify"]) == 0
