"""Measure WAV files with sox, independently of the code under test (what a listener would notice)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def sox_stat(path: str | Path, start: float | None = None, length: float | None = None) -> dict[str, float]:
    """``sox FILE -n [trim START LENGTH] stat`` as a dict: "length", "rms", "max", "freq", ..."""
    command = ["sox", str(path), "-n"]
    if start is not None:
        command += ["trim", str(start)] + ([str(length)] if length is not None else [])
    command.append("stat")
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    names = {
        "Length (seconds)": "length",
        "RMS     amplitude": "rms",
        "Maximum amplitude": "max",
        "Rough   frequency": "freq",
        "Samples read": "samples",
    }
    stats: dict[str, float] = {}
    for line in done.stderr.splitlines():
        match = re.match(r"^(.+?):\s+(-?[\d.]+)$", line.strip())
        if match and match.group(1) in names:
            stats[names[match.group(1)]] = float(match.group(2))
    return stats


def sox_info(path: str | Path) -> tuple[int, int, int]:
    """(sample rate, channels, bits) as sox reads them from the file header."""
    rate, channels, bits = (
        int(subprocess.run(["soxi", flag, str(path)], capture_output=True, text=True, check=True).stdout.strip())
        for flag in ("-r", "-c", "-b")
    )
    return rate, channels, bits
