"""Racing clients for the concurrency tests: each in its own thread with its own database
connection, all released at the same moment by a barrier."""

from __future__ import annotations

import threading
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection

from yuyue.core.errors import DomainError


@dataclass
class Outcome:
    """What one client got: a result, a refusal (DomainError) or anything else (a bug)."""

    value: Any = None
    refusal: DomainError | None = None
    crash: BaseException | None = None
    trace: str = ""

    @property
    def label(self) -> str:
        if self.crash is not None:
            return f"crash:{type(self.crash).__name__}"
        return self.refusal.code if self.refusal is not None else "ok"


def race(*clients: Callable[[], Any]) -> list[Outcome]:
    """Start every client at the same moment; fail the test if one hangs or crashes (not a refusal)."""
    barrier = threading.Barrier(len(clients))
    outcomes: list[Outcome] = [Outcome() for _ in clients]

    def run(index: int, client: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[index] = Outcome(value=client())
        except DomainError as exc:
            outcomes[index] = Outcome(refusal=exc)
        except BaseException as exc:
            outcomes[index] = Outcome(crash=exc, trace=traceback.format_exc())
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a client hung"
    crashes = [o.trace for o in outcomes if o.crash is not None]
    assert not crashes, "unexpected exceptions:\n" + "\n".join(crashes)
    return outcomes


def tally(outcomes: list[Outcome]) -> dict[str, int]:
    return dict(Counter(o.label for o in outcomes))


def values(outcomes: list[Outcome]) -> list[Any]:
    """The results, refusals included as their DomainError."""
    return [o.refusal if o.refusal is not None else o.value for o in outcomes]
