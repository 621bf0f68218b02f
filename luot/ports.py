"""Choosing a free TCP port that stays free until it is used.

Asking the kernel for port 0 hands out a port from its ephemeral range, the same range it takes
the local port of every outgoing connection from. On a busy box (a test run, a demo beside a
browser), an outgoing connection could take that port between our choice and the moment Mosquitto
or the web server binds it to 0.0.0.0, and the start failed with "address already in use" (seen in
the region tests, twice in one run). Ports below the ephemeral range are never taken that way, so
we pick there, at random, and check that nothing is bound to the port on any address.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10000


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux default 32768-60999)."""
    try:
        low, high = (int(x) for x in EPHEMERAL_RANGE_FILE.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port(attempts: int = 200) -> int:
    """A TCP port that nothing is bound to on any address, outside the ephemeral range."""
    low, high = ephemeral_range()
    candidates = range(LOWEST, low) if low - LOWEST >= 1000 else range(high + 1, 65536)
    for port in random.sample(candidates, min(attempts, len(candidates))):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("0.0.0.0", port))  # no SO_REUSEADDR: any socket on this port, on any address, refuses
            except OSError:
                continue
            return port
    raise OSError("no free TCP port found outside the ephemeral range")
