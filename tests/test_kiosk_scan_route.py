"""What the kiosk's scanner typed, by content (kiosk/scan_route.py): bookings to check-in, the rest
to the receipt reader."""

from __future__ import annotations

import pytest

from kiosk.scan_route import BOOKING, OTHER, scan_kind


@pytest.mark.parametrize("text, kind", [
    ("http://192.168.1.10:8080/t/AbCdEfGhIjKlMnOpQrStUv", BOOKING),  # the booking's QR
    ("/t/AbCdEfGhIjKlMnOpQrStUv/", BOOKING),
    ("K7QM-3XRA", BOOKING), ("k7qm3xra", BOOKING), (" K7QM 3XRA ", BOOKING),  # the typed code
    ("H29-261206-0007", OTHER), ("000.00.12.H29-261206-0007", OTHER),  # dossier codes
    ("maHoSo=H29-261206-0007;maTTHC=1.001234;ngayHenTra=09/12/2026", OTHER),
    ("https://dichvucong.example.gov.vn/tra-cuu?maHoSo=H29-261206-0007", OTHER),
    ("K7QM-3XR", OTHER), ("K7QM-3XRAA", OTHER), ("B0OK1NG5", OTHER),  # wrong length, letters a code never has
    ("http://192.168.1.10:8080/t/short", OTHER), ("xin chào|a", OTHER), ("", OTHER),
])
def test_scanned_text_is_routed_by_content(text: str, kind: str) -> None:
    assert scan_kind(text) == kind
