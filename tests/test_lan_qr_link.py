"""On a real (namespaced) LAN, a phone opens the link in a ticket's QR code: the server box and the
phone are two network namespaces joined by a veth cable, the server runs the real ``luot server``
with a LAN ``public_url`` on its default port, and the phone fetches the tracking page with curl.
On main before issue 13 the server listened on 127.0.0.1 and printed http://127.0.0.1:8080 links:
this test is the visitor's point of view of that bug."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from luot.config import DEFAULT_CONFIG

ROOT_DIR = Path(__file__).resolve().parents[1]
SERVER_IP, PHONE_IP = "10.213.7.1", "10.213.7.2"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("curl") is None,
                                reason="needs root, ip (iproute2) and curl to build a LAN of namespaces")


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=30)


def curl(namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", namespace, "curl", "-s", "--max-time", "5", *args],
                          capture_output=True, text=True, timeout=30)


def test_a_phone_on_the_lan_opens_the_ticket_qr_link(tmp_path):
    tag = f"lq{os.getpid() % 100000}"
    server_ns, phone_ns = f"{tag}-srv", f"{tag}-phone"
    centre = tmp_path / "centre.toml"
    centre.write_text(DEFAULT_CONFIG.read_text("utf-8").replace("http://192.168.1.10:8080", f"http://{SERVER_IP}:8080"),
                      "utf-8")
    server = None
    try:
        sh("ip", "netns", "add", server_ns)
        sh("ip", "netns", "add", phone_ns)
        sh("ip", "link", "add", f"{tag}a", "type", "veth", "peer", "name", f"{tag}b")
        sh("ip", "link", "set", f"{tag}a", "netns", server_ns)
        sh("ip", "link", "set", f"{tag}b", "netns", phone_ns)
        for namespace, device, address in ((server_ns, f"{tag}a", SERVER_IP), (phone_ns, f"{tag}b", PHONE_IP)):
            sh("ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", device)
            sh("ip", "-n", namespace, "link", "set", device, "up")
            sh("ip", "-n", namespace, "link", "set", "lo", "up")

        log = open(tmp_path / "server.log", "wb")
        server = subprocess.Popen(["ip", "netns", "exec", server_ns, sys.executable, "-m", "luot.cli", "server", "--init",
                                   "--config", str(centre), "--data", str(tmp_path / "var"), "--no-mqtt"],
                                  stdout=log, stderr=subprocess.STDOUT, cwd=ROOT_DIR)
        deadline = time.monotonic() + 60
        while curl(phone_ns, "-f", f"http://{SERVER_IP}:8080/health").returncode != 0:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the phone never reached the server"
            time.sleep(0.2)

        # The kiosk (on the server box here) takes a ticket; its QR code carries tracking_url.
        secret = json.loads((tmp_path / "var" / "secrets.json").read_text())["kiosk-1"]
        answer = curl(server_ns, "-f", "-X", "POST", "http://127.0.0.1:8080/api/v1/tickets",
                      "-H", f"Authorization: Bearer kiosk-1:{secret}", "-H", "Content-Type: application/json",
                      "-d", '{"group": "ho-tich"}')
        assert answer.returncode == 0, answer.stderr
        ticket = json.loads(answer.stdout)
        assert ticket["tracking_url"].startswith(f"http://{SERVER_IP}:8080/t/")

        page = curl(phone_ns, "-w", "\n%{http_code}", ticket["tracking_url"])
        body, status = page.stdout.rsplit("\n", 1)
        assert status == "200" and str(ticket["number"]) in body
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        for namespace in (server_ns, phone_ns):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)
