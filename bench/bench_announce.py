"""Time from ``Announcer.submit()`` to the announcement WAV being ready (its first sample can play).

Prints p50/p99 over N calls, one at a time (latency a citizen waits after the officer presses
"call") and as a burst (calls queued behind each other). Figures are printed, never asserted.

    .venv/bin/python bench/bench_announce.py [--calls 30] [--english] [--repeat 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from display.announcer import Announcer  # noqa: E402
from luot.config import VoiceSettings  # noqa: E402
from luot.speech import wav_seconds  # noqa: E402


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _report(label: str, millis: list[float]) -> None:
    print(f"{label:<28} n={len(millis):3d}  p50={statistics.median(millis):7.1f} ms  "
          f"p99={_percentile(millis, 0.99):7.1f} ms  max={max(millis):7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--english", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    settings = VoiceSettings(english=args.english, repeat=args.repeat)
    with tempfile.TemporaryDirectory(prefix="bench-announce-") as work:
        started = time.perf_counter()
        announcer = Announcer(settings, work, player=lambda _wav: False)  # no sound card: render only
        print(f"announcer start-up (engine, chime): {1000 * (time.perf_counter() - started):.1f} ms")
        try:
            for index in range(args.calls):  # one at a time
                announcer.submit(f"single-{index}", 1000 + index, 1 + index % 12)
                announcer.wait_idle()
            for index in range(args.calls):  # all at once
                announcer.submit(f"burst-{index}", 2000 + index, 1 + index % 12)
            announcer.wait_idle(timeout=600)
        finally:
            announcer.close()
        history = announcer.history
        single = [1000 * (a.ready - a.submitted) for a in history if a.event_id.startswith("single-")]
        burst = [1000 * (a.ready - a.submitted) for a in history if a.event_id.startswith("burst-")]
        render = [1000 * (a.ready - a.started) for a in history]
        failed = [a for a in history if a.error]
        audio = [wav_seconds(a.wav) for a in history if a.wav]
    _report("submit -> WAV ready (single)", single)
    _report("submit -> WAV ready (burst)", burst)
    _report("render only", render)
    print(f"announcement length: p50={statistics.median(audio):.2f} s; failures: {len(failed)}")


if __name__ == "__main__":
    main()
