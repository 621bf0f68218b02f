"""Ticket QR links must open on a visitor's phone: ``luot server`` refuses, in Vietnamese and
English, a ``public_url`` or listening address that only this machine can reach, unless the centre
says it is one box; ``--port`` and the link agree. And every command finds the same database."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from luot.config import DEFAULT_CONFIG, ConfigError, load_config, parse_config
from luot.reachability import check
from server.app import free_port
from tests.helpers.centre import device_auth
from tests.helpers.process import ServerProcess

ROOT_DIR = Path(__file__).resolve().parents[1]


def centre(public_url: str | None = None, single_box: bool = False, **http: object):
    data = tomllib.loads(DEFAULT_CONFIG.read_text("utf-8"))
    if public_url is not None:
        data["centre"]["public_url"] = public_url
    if single_box:
        data["centre"]["single_box"] = True
    data["http"].update(http)
    return parse_config(data, "centre.toml")


def refusal(config, host: str = "0.0.0.0", port: int = 8080) -> str:
    with pytest.raises(ConfigError) as caught:
        check(config, host, port)
    vi, en = str(caught.value).splitlines()
    assert "mã QR" in vi or "điện thoại" in vi, vi
    return en


def test_the_sample_centre_is_ready_for_a_lan_as_shipped():
    config = load_config()
    assert config.http.host == "0.0.0.0" and not config.centre.single_box
    assert check(config, config.http.host, config.http.port).config.centre.public_url == "http://192.168.1.10:8080"
    text = DEFAULT_CONFIG.read_text("utf-8")
    assert "luot setup" not in text
    for word in ("Quận", "quận", "district", "huyện"):
        assert word not in text


@pytest.mark.parametrize("url, reason", [
    ("http://127.0.0.1:8080", "is this machine itself"),
    ("http://localhost:8080", "is this machine itself"),
    ("http://[::1]:8080", "is this machine itself"),
    ("http://0.0.0.0:8080", "not an address other machines can reach"),
    ("http://169.254.10.1:8080", "not an address other machines can reach"),
    ("http://no-such-box.invalid:8080", "cannot resolve"),
])
def test_a_link_only_this_machine_can_open_is_refused(url, reason):
    assert reason in refusal(centre(url))
    # ...unless every device runs on this one machine.
    assert check(centre(url, single_box=True), "127.0.0.1", 8080).config.centre.public_url == url


def test_lan_addresses_are_accepted():
    for url in ("http://10.0.5.2:8080", "http://172.16.0.9:8080", "http://192.168.100.4:8080"):
        assert check(centre(url), "0.0.0.0", 8080).notes == ()


def test_listening_on_loopback_is_refused_for_a_centre_with_devices():
    assert "would listen only on 127.0.0.1" in refusal(centre(host="127.0.0.1"), host="127.0.0.1")
    assert check(centre(single_box=True, host="127.0.0.1"), "127.0.0.1", 8080)


def test_the_port_of_the_link_is_the_port_served():
    moved = check(centre(), "0.0.0.0", 9250)
    assert moved.config.centre.public_url == "http://192.168.1.10:9250" and "9250" in moved.notes[0]
    # A link naming some other port than the configured one cannot be fixed by guessing.
    assert "names port 9000 but the server listens on port 8080" in refusal(centre("http://192.168.1.10:9000"))
    # https: a TLS proxy in front answers on its own port.
    assert check(centre("https://10.0.5.2"), "0.0.0.0", 8080).notes == ()


def test_luot_server_refuses_a_loopback_link_with_a_plain_message(tmp_path):
    bad = tmp_path / "centre.toml"
    bad.write_text(DEFAULT_CONFIG.read_text("utf-8").replace('"http://192.168.1.10:8080"', '"http://127.0.0.1:8080"'))
    result = subprocess.run([sys.executable, "-m", "luot.cli", "server", "--config", str(bad), "--data", str(tmp_path / "var"),
                             "--no-mqtt"], capture_output=True, text=True, timeout=60, cwd=ROOT_DIR)
    assert result.returncode == 1
    assert "mã QR trên phiếu không mở được" in result.stderr and "ticket QR codes would open nothing" in result.stderr
    assert not (tmp_path / "var").exists(), "refused before creating anything"


def test_luot_server_port_override_reaches_the_qr_link(tmp_path):
    server = ServerProcess(tmp_path / "var", port=free_port()).start()
    try:
        ticket = httpx.post(server.url + "/api/v1/tickets", json={"group": "ho-tich"},
                            headers=device_auth(tmp_path / "var", "kiosk-1"), timeout=10).json()
        assert ticket["tracking_url"].startswith(f"http://192.168.1.10:{server.port}/t/")
        assert f"QR links  http://192.168.1.10:{server.port}/t/" in server.log.read_text()
    finally:
        server.stop()


def test_luot_user_add_writes_the_servers_database_and_never_a_second_one(tmp_path):
    data = tmp_path / "centre-data"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    add = [sys.executable, "-m", "luot.cli", "user", "add", "canbo9", "--password", "matkhau-123"]
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR)}
    # No server has run: refused, and no database appears anywhere.
    refused = subprocess.run(add, capture_output=True, text=True, timeout=60, cwd=elsewhere, env={**env, "LUOT_DATA": str(data)})
    assert refused.returncode == 1 and "No centre database" in refused.stderr
    assert not data.exists() and not list(elsewhere.rglob("*.sqlite3"))

    server = ServerProcess(data).start()
    try:
        done = subprocess.run(add, capture_output=True, text=True, timeout=60, cwd=elsewhere, env={**env, "LUOT_DATA": str(data)})
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["database"] == str((data / "luot.sqlite3").resolve())
        login = httpx.post(server.url + "/api/v1/login", json={"username": "canbo9", "password": "matkhau-123"}, timeout=10)
        assert login.status_code == 200, login.text
    finally:
        server.stop()
    assert not list(elsewhere.rglob("*.sqlite3"))


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare for a private /etc/hosts")
def test_names_are_judged_by_what_they_resolve_to(tmp_path):
    """A name resolving to a LAN address is accepted; one resolving only to this box (Debian's
    127.0.1.1 for the box's own name) is refused. /etc/hosts is replaced in a private mount
    namespace, so the machine's own file is never touched."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.44.0.7 luot-box.lan\n127.0.1.1 selfname\n")
    program = (
        "from luot.reachability import check\n"
        "from luot.config import ConfigError\n"
        "from tests.test_reachability import centre\n"
        "print(check(centre('http://luot-box.lan:8080'), '0.0.0.0', 8080).config.centre.public_url)\n"
        "try:\n"
        "    check(centre('http://selfname:8080'), '0.0.0.0', 8080)\n"
        "except ConfigError as error:\n"
        "    print(str(error).splitlines()[1])\n")
    result = subprocess.run(["unshare", "--mount", "sh", "-c", f'mount --bind "{hosts}" /etc/hosts && exec "$0" -c "$1"',
                             sys.executable, program], capture_output=True, text=True, timeout=60, cwd=ROOT_DIR,
                            env={**os.environ, "PYTHONPATH": str(ROOT_DIR)})
    assert result.returncode == 0, result.stderr
    accepted, refused = result.stdout.splitlines()
    assert accepted == "http://luot-box.lan:8080"
    assert "resolves only to this machine (127.0.1.1)" in refused and "fix /etc/hosts" in refused
