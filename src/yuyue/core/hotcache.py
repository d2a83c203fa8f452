"""Tiny in-process caches for settings read on every booking (webhook endpoints, reminder hours).

A booking event used to read a merchant's webhook endpoints and its offering's reminder hours from
the database each time, though they change a few times a year. A ``HotCache`` keeps the answer in
the process for ``YUYUE_HOT_CACHE_SECONDS`` (default 5; 0 turns caching off).

Freshness: saving or deleting the cached models clears the entry in the process that made the
change at once (signal receivers, again when the transaction commits); the other server processes
see the change when their entry expires, so for at most that many seconds they may still use the
old settings (e.g. a webhook endpoint added a moment ago is not yet called by another process).
Changes made with ``QuerySet.update()`` or straight in the database send no signal and wait for the
expiry everywhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.conf import settings
from django.db import transaction

V = TypeVar("V")

_ALL: list[HotCache[object]] = []


class HotCache(Generic[V]):
    """``get(key, load)``: ``load()`` at most once per key every ``HOT_CACHE_SECONDS`` in this process."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()
        _ALL.append(self)  # type: ignore[arg-type]

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        ttl = float(getattr(settings, "HOT_CACHE_SECONDS", 5))
        if ttl <= 0:
            return load()
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = load()
        with self._lock:
            self._entries[key] = (now + ttl, value)
        return value

    def forget(self, key: Hashable | None = None) -> None:
        """Drop one entry (or all) now and again when the current transaction commits, so a
        request reading in between cannot keep the value from before the change."""
        self._drop(key)
        transaction.on_commit(lambda: self._drop(key))

    def _drop(self, key: Hashable | None) -> None:
        with self._lock:
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)


def clear_all() -> None:
    """Empty every hot cache of this process (tests roll back changes no signal reports)."""
    for hot in _ALL:
        hot._drop(None)
