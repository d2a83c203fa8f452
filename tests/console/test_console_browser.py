"""The console in a real browser: sign in, filter and export, check in a voucher by typed code."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import segno
from console_world import PASSWORD
from openpyxl import load_workbook

from yuyue.booking import services as engine
from yuyue.booking.models import Booking, Status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, username: str) -> None:
    page.goto("/console/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/bookings/")


def test_sign_in_filter_and_export(new_page, shop_a):
    page = new_page(width=1280, height=800)
    page.goto("/console/bookings/")
    page.wait_for_url("**/console/login/**")  # not signed in yet
    sign_in(page, shop_a.staff["owner"].username)
    assert page.get_by_test_id("merchant-name").inner_text() == shop_a.merchant.name

    page.select_option("#f_offering", str(shop_a.exhibition.pk))
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(f"**offering={shop_a.exhibition.pk}**")
    listing = page.get_by_test_id("booking-list").inner_text()
    assert shop_a.visit.code in listing and shop_a.booking.code not in listing
    assert "共 1 条预约" in page.get_by_test_id("booking-count").inner_text()

    with page.expect_download() as download:
        page.get_by_test_id("export-xlsx").click()
    assert download.value.suggested_filename.endswith(".xlsx")
    with open(download.value.path(), "rb") as saved:
        sheet = load_workbook(io.BytesIO(saved.read()), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("预约号", "项目", "门店")
    assert [r[0] for r in rows[1:]] == [shop_a.visit.code]


def test_check_in_by_typed_code(new_page, shop_a):
    page = new_page()  # a phone at the door
    sign_in(page, shop_a.staff["staff"].username)
    page.goto("/console/checkin/")
    page.fill("#c_code", shop_a.absent.code)
    page.locator("#checkin-form button[type=submit]").click()
    result = page.get_by_test_id("checkin-result")
    assert "核销成功" in result.inner_text()
    assert shop_a.course.title in result.inner_text()
    assert Booking.objects.get(pk=shop_a.absent.pk).status == Status.CHECKED_IN

    page.fill("#c_code", shop_a.absent.code)
    page.locator("#checkin-form button[type=submit]").click()
    assert "已于" in page.get_by_test_id("checkin-result").inner_text()


def fake_camera_video(path: Path, text: str, size: int = 480, frames: int = 20) -> None:
    """A Y4M video (what Chromium's fake camera plays) showing the QR code of ``text``."""
    matrix = [list(row) for row in segno.make(text, error="m").matrix]
    border = 4
    modules = len(matrix) + 2 * border
    scale = size // modules
    luma = bytearray([235]) * (size * size)  # white
    offset = (size - modules * scale) // 2
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if not dark:
                continue
            for dy in range(scale):
                start = (offset + (y + border) * scale + dy) * size + offset + (x + border) * scale
                luma[start : start + scale] = bytes([16]) * scale
    chroma = bytes([128]) * (size // 2 * size // 2)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{size} H{size} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + bytes(luma) + chroma + chroma)


def test_check_in_by_scanning_the_voucher_with_the_camera(browser, shop_a, live_server, tmp_path):
    """Chromium's fake camera shows the voucher QR; the page decodes it and checks the booking in.

    Chromium on Linux has no BarcodeDetector (today), so this runs the bundled jsQR path, the one
    Safari and Firefox take too; Chrome on Android uses its BarcodeDetector with the same page code.
    """
    video = tmp_path / "voucher.y4m"
    fake_camera_video(video, engine.voucher_for(shop_a.absent))
    # A second Chromium from the same Playwright, started with a fake camera playing the video.
    chromium = browser.browser_type.launch(
        executable_path=os.environ.get("YUYUE_CHROMIUM", "/usr/bin/chromium"),  # as tests/conftest.py
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        context = chromium.new_context(
            viewport={"width": 390, "height": 844}, locale="zh-CN", base_url=live_server.url, permissions=["camera"]
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        outside: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(live_server.url) else outside.append(r.url))
        sign_in(page, shop_a.staff["staff"].username)
        page.goto("/console/checkin/")
        page.get_by_role("button", name="用摄像头扫码").click()
        page.get_by_test_id("checkin-result").wait_for()
        assert "核销成功" in page.get_by_test_id("checkin-result").inner_text()
        assert outside == []  # nothing fetched from outside (intranet deployments)
    finally:
        chromium.close()
    assert Booking.objects.get(pk=shop_a.absent.pk).status == Status.CHECKED_IN
