"""The owner's ledger page lists checkpoints and serves each as JSON to publish."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from factories import console_client, make_slot, make_user

from yuyue.booking import services as booking
from yuyue.core import timeutil
from yuyue.ledger import services as ledger
from yuyue.ledger.models import LedgerEntry
from yuyue.tenants.models import Role

pytestmark = pytest.mark.django_db


def test_owner_lists_and_downloads_checkpoints(merchant, make_offering):
    slot = make_slot(offering=make_offering())
    for _ in range(3):
        booking.book(user=make_user(), slot_id=slot.pk)
    today = timeutil.today() - dt.timedelta(days=1)
    LedgerEntry.objects.filter(merchant=merchant).update(recorded_at=timeutil.local_datetime(today, dt.time(9, 0)))
    [checkpoint] = ledger.make_checkpoints(day=today, merchant=merchant)
    owner = console_client(merchant)

    page = owner.get(reverse("console:ledger")).content.decode()
    assert checkpoint.merkle_root in page
    url = reverse("console:ledger_checkpoint", args=[today.isoformat()])
    assert url in page

    download = owner.get(url)
    assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
    exported = json.loads(download.content)
    assert exported["merkle_root"] == checkpoint.merkle_root and exported["entries"] == 3
    assert exported["merchant"]["slug"] == merchant.slug and exported["format"] == ledger.EXPORT_FORMAT
    assert owner.get(reverse("console:ledger_checkpoint", args=["2001-01-01"])).status_code == 404
    assert console_client(merchant, Role.FRONT_DESK).get(reverse("console:ledger")).status_code == 403
