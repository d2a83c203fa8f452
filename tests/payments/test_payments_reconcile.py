"""Reconciliation: our payments and refunds of a day against the provider's own record of it."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import make_slot, make_user
from paydom_world import PRICE_FEN, deliver, open_payment, send_refunds

from yuyue import cli
from yuyue.booking import services as engine
from yuyue.core import timeutil
from yuyue.payments import services
from yuyue.payments.models import Payment, Refund, SandboxTrade

pytestmark = pytest.mark.django_db


def _paid_booking(sandbox, offering):
    # Three days ahead, so a cancel is in time (full refund) whatever the hour the test runs.
    start = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=3), dt.time(10, 0))
    booking = engine.book(user=make_user(), slot_id=make_slot(offering=offering, capacity=5, start=start).pk)
    payment = open_payment(booking)
    deliver(sandbox, sandbox.pay(payment.out_trade_no))
    return booking, payment


def test_a_clean_day_matches_and_exits_zero(sandbox, offering, capsys):
    booking, _payment = _paid_booking(sandbox, offering)
    engine.cancel(booking=booking, by=booking.user)
    send_refunds()
    report = services.reconcile(day=timeutil.today(), provider_name="sandbox")
    assert report.ok and report.checked == 2 and report.matched == 2
    assert report.local_fen == report.provider_fen == 0

    assert cli.main(["payments", "reconcile", "--date", timeutil.today().isoformat(), "--provider", "sandbox"]) == 0
    assert "2 matched, 0 mismatches" in capsys.readouterr().out


def test_every_kind_of_mismatch_is_listed_and_the_exit_status_is_one(sandbox, offering, capsys):
    _b1, missing_here = _paid_booking(sandbox, offering)
    _b2, amount_wrong = _paid_booking(sandbox, offering)
    _b3, missing_there = _paid_booking(sandbox, offering)
    _b4, not_paid_here = _paid_booking(sandbox, offering)
    # Injected: a payment we lost, a bank line with another amount, a payment the bank does not
    # know, and one we still think is open.
    Payment.objects.filter(pk=missing_here.pk).update(out_trade_no="P-GONE")
    SandboxTrade.objects.filter(out_trade_no=amount_wrong.out_trade_no).update(amount_fen=PRICE_FEN - 1)
    SandboxTrade.objects.filter(out_trade_no=missing_there.out_trade_no).delete()
    Payment.objects.filter(pk=not_paid_here.pk).update(state="pending")

    report = services.reconcile(day=timeutil.today(), provider_name="sandbox")
    found = {(m.kind, m.number) for m in report.mismatches}
    assert found == {
        ("missing_locally", missing_here.out_trade_no),
        ("missing_at_provider", "P-GONE"),
        ("amount_differs", amount_wrong.out_trade_no),
        ("missing_at_provider", missing_there.out_trade_no),
        ("state_differs", not_paid_here.out_trade_no),
    }

    assert cli.main(["payments", "reconcile", "--date", timeutil.today().isoformat()]) == 1
    out = capsys.readouterr().out
    assert out.count("MISMATCH ") == 5 and "5 mismatches" in out


def test_a_refund_missing_at_the_provider_is_found(sandbox, offering):
    booking, _payment = _paid_booking(sandbox, offering)
    engine.cancel(booking=booking, by=booking.user)
    send_refunds()
    SandboxTrade.objects.filter(kind="refund").delete()
    report = services.reconcile(day=timeutil.today(), provider_name="sandbox")
    assert [(m.kind, m.record) for m in report.mismatches] == [("missing_at_provider", "refund")]
    assert Refund.objects.get().out_refund_no == report.mismatches[0].number


def test_another_day_is_empty_and_bad_input_is_a_usage_error(sandbox, offering, capsys):
    _paid_booking(sandbox, offering)
    yesterday = timeutil.today() - dt.timedelta(days=1)
    assert services.reconcile(day=yesterday, provider_name="sandbox").checked == 0
    assert cli.main(["payments", "reconcile", "--date", "31/01/2026"]) == 2
    assert cli.main(["payments", "reconcile", "--date", "2026-01-31", "--provider", "paypal"]) == 2
    assert "yuyue:" in capsys.readouterr().err
