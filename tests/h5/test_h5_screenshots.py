"""The README screenshot script works against a server with the demo data: seven phone-sized PNGs."""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from yuyue import demo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_shoot_saves_the_main_pages_at_phone_size(browser: Any, live_server: Any, tmp_path: Path) -> None:
    demo.load_demo(scale=0.05)
    sys.path.insert(0, str(SCRIPTS))
    try:
        import screenshots_h5
    finally:
        sys.path.remove(str(SCRIPTS))
    saved = screenshots_h5.shoot(browser, live_server.url, tmp_path)
    names = sorted(p.name for p in saved)
    assert names == sorted(
        f"h5-{n}.png"
        for n in (
            *("home", "offering", "book", "booking", "my-bookings", "cards", "points"),
            *("pay", "cashier", "chat", "elder", "english"),
        )
    )
    for path in saved:
        assert png_size(path) == (390, 844)
