"""``luot ticket --number 1023 --group ho-tich``: render one ticket to PNG/PDF/ESC-POS and print JSON.

The QR code is decoded back from the rendered image with zxing-cpp and reported as ``qr_decoded``,
so an operator (or a test) sees at once that the printed code is readable and holds only the URL.
"""

from __future__ import annotations

HELP = "render a queue ticket to PNG, PDF and ESC/POS (JSON)"

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--number", type=int, required=True, help="ticket number, e.g. 1023")
    parser.add_argument("--group", required=True, help="procedure group code, e.g. ho-tich")
    parser.add_argument("--config", help="centre TOML file (default: the shipped sample centre)")
    parser.add_argument("--ahead", type=int, default=0, help="people waiting before this ticket")
    parser.add_argument("--wait", type=int, default=None, help="estimated wait in minutes (left out: not printed)")
    parser.add_argument("--wait-text", help="the wait in the server's words, printed instead of --wait "
                                            "(e.g. \"khoảng 20-35 phút\", \"sau giờ nghỉ trưa, khoảng 13:20\")")
    parser.add_argument("--wait-text-en", help="the same in English, for the ticket's English line")
    parser.add_argument("--priority", action="store_true", help="priority ticket (ƯU TIÊN badge)")
    parser.add_argument("--offline", action="store_true", help="issued while the kiosk was offline")
    parser.add_argument("--token", help="tracking token (default: a fresh 128-bit one)")
    parser.add_argument("--width", type=int, default=576, help="dots across: 576 for 80 mm, 384 for 58 mm paper")
    parser.add_argument("--profile", default="default", help="python-escpos printer profile, e.g. TM-T20II, POS-5890")
    parser.add_argument("--procedure", help="catalogue procedure id (kiosk/procedure_catalogue.toml): print its "
                                               "\"Mang theo\" checklist, as after the kiosk greeter named it")
    parser.add_argument("--png", help="write the ticket image here")
    parser.add_argument("--pdf", help="write a one-page PDF here")
    parser.add_argument("--escpos", help="write the ESC/POS print job here")
    parser.add_argument("--printer", help="also print: file:/dev/usb/lp0, network:HOST:9100, usb:0xVID:0xPID or none")


def _decode_qr(image) -> str | None:  # image: PIL.Image.Image
    """The text of the QR code in the ticket image, or None when unreadable (or zxing-cpp missing)."""
    try:
        import zxingcpp
    except ImportError:
        return None
    found = [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]
    return found[0] if len(found) == 1 else None


def run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from kiosk.ticket_render import (
        PrinterError,
        TicketView,
        escpos_bytes,
        new_token,
        print_ticket,
        render_png,
        save_pdf,
        tracking_url,
        wait_lines,
    )
    from luot.config import load_config

    config = load_config(args.config)
    try:
        group = config.group(args.group)
    except KeyError:
        known = ", ".join(g.code for g in config.groups)
        print(f"unknown group {args.group!r}; known groups: {known}", file=sys.stderr)
        return 1
    if not group.first_number <= args.number <= group.last_number:
        print(
            f"number {args.number} is not in group {group.code!r} ({group.first_number}-{group.last_number})",
            file=sys.stderr,
        )
        return 1
    if args.ahead < 0 or (args.wait is not None and args.wait < 0) or not 200 <= args.width <= 2000:
        print("--ahead and --wait must be >= 0 and --width between 200 and 2000 dots", file=sys.stderr)
        return 1

    procedure, checklist = "", ()
    if args.procedure:
        from kiosk.procedures import Catalogue

        entry = Catalogue.load().entries.get(args.procedure)
        if entry is None or entry.outside:
            print(f"unknown procedure {args.procedure!r}; ids are in kiosk/procedure_catalogue.toml", file=sys.stderr)
            return 1
        procedure, checklist = entry.name, entry.documents
    try:
        view = TicketView(
            number=args.number,
            group_code=group.code,
            group_name=group.name,
            group_name_en=group.name_en,
            letter=group.letter,
            counters=[c.number for c in config.counters if group.code in c.groups],
            people_ahead=args.ahead,
            estimated_wait_minutes=args.wait,
            issued_at=datetime.now(UTC),
            priority=args.priority,
            centre_name=config.centre.name,
            tracking_url=tracking_url(config.centre.public_url, args.token or new_token()),
            offline=args.offline,
            timezone=config.centre.timezone,
            procedure=procedure,
            checklist=tuple(checklist),
            wait_text=args.wait_text,
            wait_text_en=args.wait_text_en,
        )
        image = render_png(view, args.width)
        job = escpos_bytes(view, profile=args.profile, width_px=args.width)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1

    if args.png:
        image.save(args.png, "PNG")
    if args.pdf:
        save_pdf(image, args.pdf)
    if args.escpos:
        with open(args.escpos, "wb") as out:
            out.write(job)

    result = {
        "number": view.number,
        "group": view.group_code,
        "tracking_url": view.tracking_url,
        "png": args.png,
        "pdf": args.pdf,
        "escpos": args.escpos,
        "escpos_bytes": len(job),
        "wait_printed": (wait_lines(view) or (None,))[0],
        "qr_decoded": _decode_qr(image),
    }
    status = 0
    if args.printer:
        try:
            result["printed_bytes"] = print_ticket(view, args.printer, profile=args.profile, width_px=args.width)
        except PrinterError as error:
            result["printer_error"] = str(error)
            print(f"{error} ({error.detail})", file=sys.stderr)
            status = 1
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return status
