"""A delivery worker run as its own process by test_notify_workers.py (then killed with SIGKILL).

It delivers real notification events, each a little slowly, so that the kill lands mid-batch.
Usage: python notify_slow_worker.py SECONDS_PER_ITEM BATCH
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yuyue.settings")

import django

django.setup()

from yuyue.notify import channels, outbox  # noqa: E402
from yuyue.notify.events import EVENT_KIND  # noqa: E402

delay, batch = float(sys.argv[1]), int(sys.argv[2])


@outbox.handler(EVENT_KIND)
def slow_fan_out(item: outbox.OutboxItem) -> None:
    print(f"start {item.pk}", flush=True)
    time.sleep(delay)
    channels.fan_out(item)
    print(f"done {item.pk}", flush=True)


print("ready", flush=True)
outbox.deliver_due(limit=batch)
print("finished", flush=True)
