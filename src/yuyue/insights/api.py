"""Insights API: merchant statistics (/merchant/stats) and recommendations for users (/recommendations)."""

from __future__ import annotations

from ninja import Router

# Mounted at /merchant (staff token), like the other merchant endpoints.
merchant_router = Router(tags=["merchant"])

# Mounted at the API root (user token).
router = Router(tags=["recommendations"])
