"""Codes people read aloud or scan: short, unambiguous, and impossible to guess."""

from __future__ import annotations

import secrets

# Crockford-style alphabet without 0/O, 1/I/L, U: easy to read over the phone.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"


def booking_code() -> str:
    """10 characters ≈ 49 bits of randomness: unguessable, still short enough to type."""
    return "".join(secrets.choice(ALPHABET) for _ in range(10))


def token() -> str:
    return secrets.token_urlsafe(32)
