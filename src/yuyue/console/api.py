"""Merchant endpoints of the JSON API (/api/v1/merchant/...), authenticated with a staff token."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["merchant"])
