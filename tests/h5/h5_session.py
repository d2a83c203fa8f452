"""Signing a test client in as an end user (a module with a unique name: test directories are not packages)."""

from __future__ import annotations

from typing import Any

from django.test import Client

from yuyue.h5.auth import SESSION_KEY


def sign_in_client(client: Client, user: Any) -> Client:
    """Sign a test client in as an end user the way the SMS sign-in does: the user's id in the session."""
    session = client.session
    session[SESSION_KEY] = user.pk
    session.save()
    return client
