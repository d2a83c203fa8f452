"""What the fault tests share: ``benchmarks/faults.py`` loaded as a module, and small helpers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "faults.py"
_spec = importlib.util.spec_from_file_location("yuyue_fault_runs", _PATH)
assert _spec is not None and _spec.loader is not None
faults: Any = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = faults  # dataclasses look their module up
_spec.loader.exec_module(faults)


def redis_port(offset: int) -> int:
    """Each database pass has its own redis-server ports (6391-6396), so passes may run side by side."""
    base = {"sqlite": 6391, "postgresql": 6393, "mysql": 6395}[connection.vendor]
    return base + offset


def passes(report: Any) -> None:
    """Print the fault's figures; skip if it could not run here, fail with them if it did not reconcile."""
    print(report)
    if "skipped" in report.figures:
        pytest.skip(report.figures["skipped"])
    assert report.ok, str(report)
