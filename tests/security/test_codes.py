"""Codes that stand for a booking, a payment or a session cannot be guessed or forged.

- booking code: ``ids.booking_code``, 10 of 30 symbols from ``secrets`` ≈ 49 bits; looking one up
  needs its owner's token, and a guess hits one of 5.9e14.
- voucher (QR): code + HMAC-SHA256 (48 bits shown) with the server's key; forging needs the key.
- payment/refund number: ``payments._new_number``, 16 hex from ``secrets`` = 64 bits; only ever
  compared with signed provider notifications.
- bearer token: ``ids.token``, 32 bytes from ``secrets`` = 256 bits, stored as a hash only.
- SMS code: ``secrets.randbelow(10**6)`` = 20 bits; 5 tries per code, 5 codes an hour and 10 a day
  per phone: at most 50 tries in 10^6 a day.
- webhook secret: ``os.urandom(24)`` = 192 bits.
"""

from __future__ import annotations

import math
import re
import secrets
from collections import Counter

import pytest
from console_world import make_staff
from django.test import Client

from yuyue.accounts import services as accounts
from yuyue.booking import services as engine
from yuyue.core import ids
from yuyue.core.errors import DomainError
from yuyue.payments import services as payments
from yuyue.webhooks.models import new_secret

pytestmark = pytest.mark.django_db


class Exhausted(Exception):
    pass


def test_booking_codes_come_from_the_os_csprng_with_at_least_40_bits(monkeypatch):
    assert math.log2(len(ids.ALPHABET)) * 10 >= 49
    assert not set("01OILU") & set(ids.ALPHABET), "no symbols that read alike"
    codes = [ids.booking_code() for _ in range(3000)]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(f"[{ids.ALPHABET}]{{10}}", c) for c in codes)
    # Every symbol in every position turns up about equally often (no bias toward a few symbols).
    counts = Counter(ch for c in codes for ch in c)
    expected = len(codes) * 10 / len(ids.ALPHABET)
    assert min(counts.values()) > expected * 0.7 and max(counts.values()) < expected * 1.3

    # The source is `secrets` (os.urandom), not `random`'s Mersenne Twister, whose output can be predicted.
    def refuse(_seq: str) -> str:
        raise Exhausted

    monkeypatch.setattr(ids.secrets, "choice", refuse)
    with pytest.raises(Exhausted):
        ids.booking_code()
    assert "random" not in ids.__dict__


def test_tokens_payment_numbers_and_secrets_are_long_and_random(monkeypatch):
    token = ids.token()
    assert len(token) >= 43 and len({ids.token() for _ in range(100)}) == 100
    from yuyue.core import timeutil

    number = payments._new_number("P", timeutil.now())
    assert re.fullmatch(r"P\d{8}[0-9A-F]{16}", number) and len(number) <= 32
    assert len({payments._new_number("P", timeutil.now()) for _ in range(200)}) == 200
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret) >= 6 + 32

    drawn = []
    real = secrets.token_hex

    def spy(n: int | None = None) -> str:
        drawn.append(n)
        return real(n)

    monkeypatch.setattr(payments.secrets, "token_hex", spy)
    payments._new_number("P", timeutil.now())
    assert drawn == [8], "payment numbers draw 8 bytes from secrets"


def test_sms_codes_come_from_secrets(monkeypatch):
    drawn = []
    real = secrets.randbelow

    def spy(n: int) -> int:
        drawn.append(n)
        return real(n)

    monkeypatch.setattr(accounts.secrets, "randbelow", spy)
    accounts.request_login_code("13800000001", ip="10.0.0.1")
    assert drawn == [10**6]


def test_a_voucher_with_a_forged_signature_is_refused(shop_a):
    booking = shop_a.booking
    genuine = engine.voucher_for(booking)
    code, signature = genuine.split(".")[:2]
    assert len(signature) * 4 >= 48
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    other = engine.voucher_for(shop_a.absent).split(".")[1]
    forged = [
        booking.code,
        f"{code}.{flipped}",
        f"{code}.{other}",  # another booking's signature
        f"{code}.{signature[:-1]}",
        f"{code}.",
        f"{code}.{signature.upper()}x",
        f"{shop_a.visit.code}.{signature}",
    ]
    for text in forged:
        assert not engine.check_voucher(text).genuine, text
        with pytest.raises(DomainError) as refused:
            engine.check_in(voucher=text, staff=None, merchant=shop_a.merchant)
        assert refused.value.code == "not_found", text
    # The same at the gate's API.
    token = accounts.issue_token(staff_user=make_staff(shop_a.merchant, "staff"))
    for text in forged[1:]:
        response = Client().post(
            "/api/v1/merchant/checkins",
            {"voucher": text},
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 404, text
    booking.refresh_from_db()
    assert booking.status == "confirmed", "no forged voucher checked the booking in"
    assert engine.check_voucher(genuine).genuine


def test_a_voucher_signed_with_another_servers_key_is_refused(shop_a, settings):
    settings.VOUCHER_KEYS = ["another-servers-key"]
    elsewhere = engine.voucher_for(shop_a.booking)
    settings.VOUCHER_KEYS = ["our-key"]
    assert not engine.check_voucher(elsewhere).genuine
    settings.VOUCHER_KEYS = ["our-new-key", "another-servers-key"]  # rotation keeps old vouchers valid
    assert engine.check_voucher(elsewhere).genuine
