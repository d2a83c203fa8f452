"""Money is an integer number of fen (分); it is formatted only when shown."""

from __future__ import annotations


def format_yuan(fen: int) -> str:
    """12345 → '¥123.45'."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}¥{yuan}.{cents:02d}"
