"""Small helpers the adapters share for reading other services' answers."""

from __future__ import annotations

import json
from typing import Any


def json_object(text: str) -> dict[str, Any]:
    """The JSON object in ``text``; ValueError for anything else (HTML error pages, lists, nothing)."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value
