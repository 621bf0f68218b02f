"""Ticket rendering: what a visitor holds in the hand and scans, and what the printer receives.

The QR is read back with zxing-cpp (a real decoder, as a phone would), the ESC/POS job is parsed
byte by byte, and the picture is checked by its pixels: a huge dark number, a visible priority badge.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from kiosk.ticket_render import (
    PRINTER_NOT_READY,
    WIDTH_58MM,
    WIDTH_80MM,
    PrinterError,
    TicketView,
    escpos_bytes,
    new_token,
    print_ticket,
    qr_png,
    render_pdf,
    render_png,
    tracking_url,
    wait_lines,
)
from luot.cli import main
from luot.config import load_config

TOKEN = "q7Rk2VxN0bTz5LmW8sYc3A"  # 22 urlsafe characters = 128 bits, like secrets.token_urlsafe(16)
URL = f"http://127.0.0.1:8080/t/{TOKEN}"
ESC, GS = b"\x1b", b"\x1d"


def make_view(**changes) -> TicketView:
    fields = dict(
        number=1023,
        group_code="ho-tich",
        group_name="Hộ tịch",
        group_name_en="Civil status",
        letter="A",
        counters=[1, 2],
        people_ahead=5,
        estimated_wait_minutes=15,
        issued_at=datetime(2025, 11, 23, 7, 5, tzinfo=UTC),
        priority=False,
        centre_name="Trung tâm Phục vụ hành chính công phường Cửa Nam",
        tracking_url=URL,
        offline=False,
    )
    fields.update(changes)
    return TicketView(**fields)


def qr_codes(image: Image.Image) -> list[zxingcpp.Result]:
    return [r for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]


def dark_rows(image: Image.Image) -> list[float]:
    """Share of dark pixels in each row (0 = white row, 1 = solid black row)."""
    gray = image.convert("L")
    width, height = gray.size
    data = gray.tobytes()
    return [sum(1 for v in data[y * width : (y + 1) * width] if v < 128) / width for y in range(height)]


def longest_run(flags: list[bool]) -> tuple[int, int]:
    """(start, length) of the longest run of True."""
    best, run_start = (0, 0), None
    for index, flag in enumerate(flags + [False]):
        if flag and run_start is None:
            run_start = index
        elif not flag and run_start is not None:
            if index - run_start > best[1]:
                best = (run_start, index - run_start)
            run_start = None
    return best


# -- QR: the URL and nothing else -------------------------------------------------------------------


def test_qr_in_the_ticket_decodes_to_exactly_the_tracking_url_and_nothing_personal() -> None:
    view = make_view()
    codes = qr_codes(render_png(view))
    assert len(codes) == 1, "the ticket must carry exactly one QR code"
    text = codes[0].text
    assert text == URL
    assert codes[0].ec_level == "M"
    assert re.fullmatch(r"http://127\.0\.0\.1:8080/t/[A-Za-z0-9_-]{22}", text)
    for private in ("1023", "Hộ tịch", "ho-tich", "Cửa Nam", "15"):
        assert private not in text


@pytest.mark.parametrize("width", [WIDTH_58MM, WIDTH_80MM])
def test_ticket_qr_is_readable_on_both_paper_widths(width: int) -> None:
    image = render_png(make_view(priority=True, offline=True), width)
    assert image.width == width
    assert [r.text for r in qr_codes(image)] == [URL]


def test_standalone_qr_png_decodes() -> None:
    assert [r.text for r in qr_codes(qr_png(URL))] == [URL]


def test_tracking_tokens_carry_at_least_96_random_bits() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
        assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8 >= 96
    assert tracking_url("http://10.0.0.5:8080/", TOKEN) == f"http://10.0.0.5:8080/t/{TOKEN}"


@pytest.mark.parametrize(
    "bad_url",
    [
        "http://127.0.0.1:8080/t/short",  # fewer than 96 bits
        f"http://127.0.0.1:8080/t/{TOKEN}?name=Nguyen",  # data after the token
        f"http://127.0.0.1:8080/?phone=0912345678/t/{TOKEN}",  # data hidden before it
        f"http://127.0.0.1:8080/ticket/{TOKEN}",
    ],
)
def test_a_url_with_a_short_token_or_extra_data_is_refused(bad_url: str) -> None:
    with pytest.raises(ValueError):
        make_view(tracking_url=bad_url)


def test_issue_time_is_the_centres_local_time_and_must_be_aware() -> None:
    assert make_view().issued_local == "14:05 23/11/2025"  # 07:05 UTC is 14:05 in Hà Nội
    with pytest.raises(ValueError, match="aware"):
        make_view(issued_at=datetime(2025, 11, 23, 14, 5))


# -- the picture --------------------------------------------------------------------------------------


def number_band(image: Image.Image) -> tuple[int, int]:
    """(top, height) of the tallest block of inked rows above the QR code: the ticket number."""
    qr_top = min(p.y for p in (qr_codes(image)[0].position.top_left, qr_codes(image)[0].position.top_right))
    rows = dark_rows(image)[:qr_top]
    return longest_run([share > 0 for share in rows])


def test_the_number_is_huge_and_dark() -> None:
    image = render_png(make_view())
    top, height = number_band(image)
    assert height >= 0.25 * image.width, f"number only {height} px tall"  # >= 18 mm on 80 mm paper
    band = image.crop((0, top, image.width, top + height)).convert("L")
    ink = sum(1 for v in band.tobytes() if v < 128) / (band.width * band.height)
    assert ink >= 0.25, f"number area only {ink:.0%} dark"


def test_ticket_is_black_on_white() -> None:
    image = render_png(make_view(priority=True, offline=True))
    histogram = image.convert("L").histogram()
    extreme = sum(histogram[:32]) + sum(histogram[224:])
    assert extreme / sum(histogram) > 0.97  # almost all pixels pure ink or paper, so 1 bit loses nothing


def test_priority_ticket_shows_a_solid_badge_the_other_does_not() -> None:
    def solid_band(image: Image.Image) -> int:
        return longest_run([share > 0.7 for share in dark_rows(image)])[1]

    plain = render_png(make_view())
    priority = render_png(make_view(priority=True))
    assert solid_band(plain) < 6  # only thin rules
    assert solid_band(priority) >= 40  # the black ƯU TIÊN badge
    assert priority.height > plain.height
    assert number_band(priority)[1] == number_band(plain)[1]


def test_offline_ticket_is_longer_and_still_scans() -> None:
    online, offline = render_png(make_view()), render_png(make_view(offline=True))
    assert offline.height > online.height + 40
    assert [r.text for r in qr_codes(offline)] == [URL]


def test_decomposed_vietnamese_renders_like_composed() -> None:
    composed = make_view(group_name="Bảo trợ xã hội", centre_name="Phường Cửa Nam")
    decomposed = make_view(
        group_name=unicodedata.normalize("NFD", "Bảo trợ xã hội"),
        centre_name=unicodedata.normalize("NFD", "Phường Cửa Nam"),
    )
    assert render_png(composed).tobytes() == render_png(decomposed).tobytes()


def test_stacked_marks_are_not_clipped() -> None:
    from kiosk.ticket_render import _text_block

    block = _text_block("ỄỞỮẶỲ ệở", 576, 40, bold=True)
    rows = dark_rows(block)
    assert rows[0] == 0 and rows[-1] == 0, "ink touches the edge: a mark was cut off"
    assert any(rows[: len(rows) // 4]), "the marks above the capitals are missing"


def test_pdf_is_a_pdf(tmp_path: Path) -> None:
    path = render_pdf(make_view(), tmp_path / "ticket.pdf")
    assert path.read_bytes().startswith(b"%PDF")


# -- ESC/POS ------------------------------------------------------------------------------------------


def raster_headers(job: bytes) -> list[tuple[int, int]]:
    """(width in bytes, height in dots) of each ``GS v 0`` raster image in the job."""
    found = []
    for match in re.finditer(re.escape(GS + b"v0"), job):
        at = match.end()
        width = job[at + 1] | job[at + 2] << 8
        height = job[at + 3] | job[at + 4] << 8
        found.append((width, height))
    return found


def test_escpos_job_is_init_raster_native_qr_and_cut() -> None:
    job = escpos_bytes(make_view())
    assert job.startswith(ESC + b"@")
    assert raster_headers(job), "no GS v 0 raster image"
    qr_at = job.index(GS + b"(k")
    assert job.rfind(ESC + b"a\x01", 0, qr_at) != -1, "alignment must be set to centre before the QR"
    store = GS + b"(k" + (len(URL) + 3).to_bytes(2, "little") + b"1P0" + URL.encode()
    assert store in job, "the native QR must carry exactly the URL"
    assert GS + b"(k\x03\x001Q0" in job, "the QR print command is missing"
    assert job.endswith(GS + b"V\x00"), "the job must end with a full cut"


def test_printer_gets_the_same_picture_as_the_screen_not_inverted() -> None:
    view = make_view(priority=True)
    job = escpos_bytes(view)
    match = re.search(re.escape(GS + b"v0"), job)
    assert match
    width_bytes, height = raster_headers(job)[0]
    start = match.end() + 5
    printed = Image.frombytes("1", (width_bytes * 8, height), job[start : start + width_bytes * height])
    screen = render_png(view).crop((0, 0, WIDTH_80MM, height)).point(lambda v: 255 if v < 128 else 0, mode="1")
    assert printed.tobytes() == screen.tobytes()  # a set bit is a burnt (black) dot


def test_escpos_sends_vietnamese_as_pictures_not_code_page_text() -> None:
    job = escpos_bytes(make_view())
    for text in ("Hộ tịch", "Quầy", "Trung tâm"):
        assert text.encode("utf-8") not in job
        assert text.encode("cp1258", errors="ignore") not in job


def test_58mm_ticket_sends_a_narrower_raster() -> None:
    wide = raster_headers(escpos_bytes(make_view(), width_px=WIDTH_80MM))
    narrow = raster_headers(escpos_bytes(make_view(), profile="POS-5890", width_px=WIDTH_58MM))
    assert {w for w, _ in wide} == {WIDTH_80MM // 8}
    assert {w for w, _ in narrow} == {WIDTH_58MM // 8}


def test_a_ticket_too_wide_for_the_printer_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="384"):
        escpos_bytes(make_view(), profile="POS-5890", width_px=WIDTH_80MM)


# -- printing -------------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_network_printer_raises_a_plain_printer_error() -> None:
    with pytest.raises(PrinterError) as caught:
        print_ticket(make_view(), f"network:127.0.0.1:{closed_port()}")
    assert str(caught.value) == PRINTER_NOT_READY
    assert "Máy in" in str(caught.value) and "Printer not ready" in str(caught.value)
    assert TOKEN not in caught.value.detail


@pytest.mark.parametrize("target", ["file:/nonexistent-dir/lp0", "usb:0x0416:0x5011"])
def test_missing_file_or_usb_printer_raises_printer_error(target: str) -> None:
    with pytest.raises(PrinterError, match="Printer not ready"):
        print_ticket(make_view(), target)


@pytest.mark.parametrize(
    ("target", "options"),
    [("lpt1", {}), ("network:127.0.0.1:notaport", {}), ("none-such", {}),
     ("file:/dev/null", {"profile": "no-such-printer"}), ("file:/dev/null", {"profile": "POS-5890"})],
)  # fmt: skip
def test_a_wrong_printer_setting_is_a_printer_error_naming_the_setting(target: str, options: dict) -> None:
    with pytest.raises(PrinterError, match="Printer setting is wrong"):
        print_ticket(make_view(), target, **options)  # POS-5890 is 58 mm: a 576-dot ticket cannot fit


def test_file_printer_receives_the_job_and_none_prints_nothing(tmp_path: Path) -> None:
    view = make_view()
    device = tmp_path / "lp0"
    sent = print_ticket(view, f"file:{device}")
    assert device.read_bytes() == escpos_bytes(view)
    assert sent == device.stat().st_size
    assert print_ticket(view, "none") == 0


# -- luot ticket -----------------------------------------------------------------------------------------


def test_cli_renders_all_outputs_and_reports_the_decoded_qr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png, pdf, job = tmp_path / "t.png", tmp_path / "t.pdf", tmp_path / "t.bin"
    status = main(
        ["ticket", "--number", "1023", "--group", "ho-tich", "--ahead", "4", "--wait", "12", "--priority",
         "--png", str(png), "--pdf", str(pdf), "--escpos", str(job)]
    )  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert out["number"] == 1023 and out["group"] == "ho-tich"
    token = out["tracking_url"].rsplit("/t/", 1)[1]
    assert out["tracking_url"] == f"{load_config().centre.public_url}/t/{token}" and len(token) >= 16
    assert out["qr_decoded"] == out["tracking_url"]
    assert [r.text for r in qr_codes(Image.open(png))] == [out["tracking_url"]]
    assert pdf.read_bytes().startswith(b"%PDF")
    assert out["escpos_bytes"] == job.stat().st_size and job.read_bytes().startswith(ESC + b"@")
    assert Image.open(png).width == WIDTH_80MM
    assert out["wait_printed"] == "Thời gian chờ dự kiến: khoảng 12 phút"


def test_cli_prints_the_wait_in_the_servers_words(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["ticket", "--number", "1023", "--group", "ho-tich", "--wait", "12",
                   "--wait-text", "khoảng 10-20 phút", "--wait-text-en", "about 10-20 minutes"])
    assert status == 0 and json.loads(capsys.readouterr().out)["wait_printed"] == "Thời gian chờ dự kiến: khoảng 10-20 phút"


def test_cli_58mm_with_a_given_token(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["ticket", "--number", "2001", "--group", "chung-thuc", "--width", "384", "--token", TOKEN])
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert out["qr_decoded"] == out["tracking_url"] == f"{load_config().centre.public_url}/t/{TOKEN}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--number", "1023", "--group", "nope"], "unknown group"),
        (["--number", "2001", "--group", "ho-tich"], "not in group"),
        (["--number", "1023", "--group", "ho-tich", "--token", "abc"], "96 random bits"),
        (["--number", "1023", "--group", "ho-tich", "--profile", "no-such-printer"], "unknown printer profile"),
    ],
)
def test_cli_bad_input_is_a_clear_error(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ticket", *argv]) == 1
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_cli_reports_an_unready_printer_without_crashing(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["ticket", "--number", "1023", "--group", "ho-tich", "--printer", f"network:127.0.0.1:{closed_port()}"])
    out = json.loads(capsys.readouterr().out)
    assert status == 1
    assert out["printer_error"] == PRINTER_NOT_READY
    assert out["qr_decoded"] == out["tracking_url"]


def test_wrapping_breaks_where_the_sense_breaks() -> None:
    from kiosk.ticket_render import _font, _wrap

    font = _font(34, bold=True)
    lines = _wrap("H\u00a0·\u00a0Thủ tục khác, hướng dẫn", font, 330)
    assert len(lines) == 2 and lines[0].startswith("H\u00a0·\u00a0Thủ"), lines  # the letter stays with the name
    lines = _wrap("Thời gian chờ dự kiến: khoảng 15 phút", _font(21), 354)
    assert lines == ["Thời gian chờ dự kiến:", "khoảng 15 phút"]


def test_a_results_ticket_prints_its_dossier_and_appointment_date_and_still_scans(tmp_path) -> None:
    plain = render_png(make_view())
    results = render_png(make_view(returns_dossier="H29-261206-0007", appointment="2026-12-20"))
    assert results.height > plain.height + 60  # the dossier line, the date in bold, its English
    assert [r.text for r in qr_codes(results)] == [URL], "the QR holds the tracking link only, no dossier code"
    results.save(tmp_path / "results-ticket.png")


def test_the_greeters_checklist_is_printed_with_a_box_per_paper() -> None:
    """Issue 16: "Mang theo" on the paper, one tick box per document, in the PNG and the ESC/POS job."""
    papers = ("Tờ khai đăng ký kết hôn (hai bên có thể khai chung một tờ)", "Căn cước của hai bên nam, nữ")
    plain = make_view()
    listed = make_view(procedure="Đăng ký kết hôn", checklist=papers)
    short, long = render_png(plain), render_png(listed)
    assert long.height > short.height + 150
    assert [r.text for r in qr_codes(long)] == [URL]
    extra = long.crop((0, short.height - 40, long.width, long.height))
    boxes = [row for row in range(extra.height) if sum(extra.getpixel((x, row)) < 128 for x in range(20, 60)) > 15]
    assert len(boxes) >= 2 * len(papers), "each paper has a drawn box (its top and bottom edges)"
    assert len(escpos_bytes(listed)) > len(escpos_bytes(plain)) + 2000


def test_the_wait_is_printed_in_the_servers_words_a_range_or_a_warning() -> None:
    """Issue 17: the ticket says what the kiosk's screen and the tracking page say ("khoảng 20-35
    phút", "sau giờ nghỉ trưa, khoảng 13:20"), a warning when closing comes first; the point in
    minutes only without the server's words (offline)."""
    ranged = make_view(wait_text="khoảng 20-35 phút", wait_text_en="about 20-35 minutes")
    assert wait_lines(ranged) == ("Thời gian chờ dự kiến: khoảng 20-35 phút", "wait: about 20-35 minutes")
    late = make_view(wait_text="có thể không kịp trong giờ làm việc hôm nay (khoảng 17:10)",
                     wait_text_en="may not be served before closing today (around 17:10)", after_closing=True)
    assert wait_lines(late)[0].startswith("Lưu ý: có thể không kịp") and "before closing" in wait_lines(late)[1]
    assert wait_lines(make_view()) == ("Thời gian chờ dự kiến: khoảng 15 phút", "about 15 min wait")
    assert wait_lines(make_view(estimated_wait_minutes=None)) is None
    assert render_png(late).height > render_png(make_view()).height  # the longer warning wraps: it is drawn

