"""Personal data at rest: authenticated encryption with rotating keys, and a blind index.

Values are encrypted with AES-256-GCM under the newest key in ``settings.DATA_KEYS``; every key
in the list still decrypts, so keys rotate by putting a new one first. The stored form is
``v1:<key id>:<base64(nonce + ciphertext)>``. Encrypted values cannot be searched, so each has a
keyed hash (HMAC-SHA256, the "blind index") kept beside it for lookups and unique constraints.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import cache
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import models

PREFIX = "v1"


def _decode_key(text: str) -> bytes:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(raw) != 32:
        raise ValueError("each YUYUE_DATA_KEYS entry must be 32 bytes in urlsafe base64")
    return raw


@cache
def _keys() -> list[tuple[str, bytes]]:
    raw_keys = [_decode_key(k) for k in settings.DATA_KEYS] or [
        hashlib.sha256(b"yuyue data key|" + settings.SECRET_KEY.encode()).digest()
    ]
    return [(hashlib.sha256(k).hexdigest()[:8], k) for k in raw_keys]


@cache
def _index_key() -> bytes:
    if settings.INDEX_KEY:
        return _decode_key(settings.INDEX_KEY)
    return hmac.new(_keys()[-1][1], b"yuyue blind index", hashlib.sha256).digest()


def generate_key() -> str:
    """A new key for YUYUE_DATA_KEYS."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def encrypt(plaintext: str) -> str:
    key_id, key = _keys()[0]
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), key_id.encode())
    return f"{PREFIX}:{key_id}:{base64.b64encode(nonce + sealed).decode()}"


def decrypt(token: str) -> str:
    prefix, key_id, payload = token.split(":", 2)
    if prefix != PREFIX:
        raise ValueError("not an encrypted value")
    for candidate_id, key in _keys():
        if candidate_id == key_id:
            raw = base64.b64decode(payload)
            return AESGCM(key).decrypt(raw[:12], raw[12:], key_id.encode()).decode()
    raise ValueError(f"no data key {key_id} in YUYUE_DATA_KEYS")


def is_current(token: str) -> bool:
    """Whether a stored value is already under the newest key (for re-encryption runs)."""
    return token.split(":", 2)[1] == _keys()[0][0]


def blind_index(value: str, *, purpose: str) -> str:
    """A keyed hash to find or compare an encrypted value; ``purpose`` keeps kinds apart."""
    return hmac.new(_index_key(), f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


class EncryptedTextField(models.TextField):
    """A text column stored encrypted; reads give the plain value back, empty stays empty."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str:
        return decrypt(value) if value else ""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return encrypt(value) if value else ""


def reencrypt_all(batch_size: int = 500) -> int:
    """Re-encrypt every stored personal value under the newest key; returns how many changed.

    Run after putting a new key first in YUYUE_DATA_KEYS; once it reports 0, older keys can be
    removed from the list (keep YUYUE_INDEX_KEY, or the oldest key, for the blind index).
    """
    from django.apps import apps
    from django.db import transaction

    current = f"{PREFIX}:{_keys()[0][0]}:"
    changed = 0
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        for field in fields:
            # startswith compares the raw column: the lookup value is not encrypted.
            stale = model._default_manager.exclude(**{f"{field.attname}__startswith": current}).exclude(
                **{field.attname: ""}
            )
            while ids := list(stale.values_list("pk", flat=True)[:batch_size]):
                with transaction.atomic():
                    for obj in model._default_manager.select_for_update().filter(pk__in=ids):
                        obj.save(update_fields=[field.attname])
                        changed += 1
    return changed
