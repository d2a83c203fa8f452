"""Money is an integer number of fen (分); it is formatted only when shown."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def format_yuan(fen: int) -> str:
    """12345 → '¥123.45'."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}¥{yuan}.{cents:02d}"


def yuan_to_fen(text: str) -> int:
    """'12.34' → 1234, exactly (Decimal, never float); payment providers write amounts in yuan.

    Accepts an optional sign and at most two decimals ('-0.5' → -50); ValueError for anything else.
    """
    cleaned = text.strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not an amount in yuan: {text!r}") from None
    if not value.is_finite() or "e" in cleaned.lower():
        raise ValueError(f"not an amount in yuan: {text!r}")
    fen = value * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"more than two decimals in an amount in yuan: {text!r}")
    return int(fen)


def fen_to_yuan(fen: int) -> str:
    """1234 → '12.34' (the plain decimal text providers expect, no currency sign)."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan}.{cents:02d}"
