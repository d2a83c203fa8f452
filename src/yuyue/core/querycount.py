"""Count the SQL statements a server process runs, for load benchmarks (benchmarks/rush.py).

Off unless YUYUE_COUNT_QUERIES names a directory: then every process that serves requests keeps a
running total and rewrites ``<directory>/<pid>`` with it a few times a second, so the benchmark can
add the files up after a run without stopping the server. Databases keep no per-client statement
counts that a benchmark could read on a shared server, hence this.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

FLUSH_SECONDS = 0.2

_lock = threading.Lock()
_total = 0
_started = False


def _count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    global _total
    with _lock:
        _total += len(params) if many and isinstance(params, list | tuple) else 1
    return execute(sql, params, many, context)


def _wrap(sender: Any, connection: Any, **kwargs: Any) -> None:
    if _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)


def _flush_forever(path: Path) -> None:
    written = -1
    stop = threading.Event()
    while not stop.wait(FLUSH_SECONDS):
        if _total != written:
            written = _total
            tmp = path.with_suffix(".tmp")
            tmp.write_text(str(written))
            os.replace(tmp, path)


def install_from_env() -> bool:
    """Start counting in this process if YUYUE_COUNT_QUERIES is set; True when counting."""
    global _started
    directory = os.environ.get("YUYUE_COUNT_QUERIES", "")
    if not directory or _started:
        return _started
    from django.db import connections
    from django.db.backends.signals import connection_created

    _started = True
    connection_created.connect(_wrap)
    for conn in connections.all(initialized_only=True):
        _wrap(None, conn)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    threading.Thread(
        target=_flush_forever, args=(folder / str(os.getpid()),), name="yuyue-querycount", daemon=True
    ).start()
    return True
