"""``luot announce --number N --counter C``: render the hall announcement (chime + speech) to a WAV,
try to play it, and print JSON {"text", "wav", "seconds", "played"}.

Lets an operator hear (or fetch) exactly what the hall display would say with the centre's voice
settings, without running a display.
"""

from __future__ import annotations

HELP = "render a hall announcement (chime + speech) to a WAV (JSON)"

import argparse
import json
import sys
import tempfile
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--number", type=int, required=True, help="ticket number, e.g. 1023")
    parser.add_argument("--counter", type=int, required=True, help="counter number, e.g. 3")
    parser.add_argument("--english", action="store_true", help="also say it in English (overrides the config)")
    parser.add_argument("--out", help="WAV file to write (default: var/announcements/announce-N-C.wav)")
    parser.add_argument("--config", help="centre TOML file whose [voice] settings to use (default: the sample centre)")


def run(args: argparse.Namespace) -> int:
    from display.announcer import AnnouncementRenderer, announcement_text
    from luot.config import ConfigError, load_config
    from luot.speech import SpeechError, play, wav_seconds
    from luot.vinumber import read_number

    try:
        settings = load_config(args.config).voice
        read_number(args.number)
        read_number(args.counter)
    except (ConfigError, ValueError) as error:
        print(f"luot announce: {error}", file=sys.stderr)
        return 1
    if args.english:
        settings = settings.model_copy(update={"english": True})
    out = Path(args.out or f"var/announcements/announce-{args.number}-{args.counter}.wav").resolve()
    try:
        with tempfile.TemporaryDirectory(prefix="luot-announce-") as work:
            AnnouncementRenderer(settings, Path(work)).render(args.number, args.counter, out)
    except (OSError, SpeechError, ValueError) as error:
        print(f"luot announce: cannot render {out}: {error}", file=sys.stderr)
        return 1
    result = {
        "text": announcement_text(args.number, args.counter, settings.english),
        "wav": str(out),
        "seconds": round(wav_seconds(out), 3),
        "played": play(out),
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0
