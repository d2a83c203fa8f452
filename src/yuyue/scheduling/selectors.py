"""Read-only queries over slots that pages and the API share."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from yuyue.core import timeutil
from yuyue.scheduling.models import Slot, SlotStatus


def slots_for(*, offering_id: int, date_from: dt.date, date_to: dt.date) -> QuerySet[Slot]:
    """Open slots of an offering starting on the local dates date_from..date_to (both included).

    The bounds are local midnights, so "a day" means the merchant's day, not the UTC one.
    """
    lower = timeutil.local_datetime(date_from, dt.time.min)
    upper = timeutil.local_datetime(date_to + dt.timedelta(days=1), dt.time.min)
    return (
        Slot.objects.filter(offering_id=offering_id, status=SlotStatus.OPEN, start__gte=lower, start__lt=upper)
        .order_by("start", "id")
        .prefetch_related("resources")
    )
