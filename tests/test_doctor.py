"""`luot doctor` on a real centre (SQLite file, uvicorn, Mosquitto): healthy, then broken four ways."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from luot.config import DEFAULT_CONFIG, load_config
from luot.credentials import SERVER_USER
from luot.mqtt_client import QOS, new_client
from luot.protocol import Topics
from server.app import CentreRuntime, RuntimeOptions
from server.doctor import judge_clock, judge_disk, judge_passwords, mosquitto_listener, verify_mosquitto_hash
from server.broker_setup import mosquitto_hash
from server.engine import utc_now
from tests.helpers.centre import ManualClock, device_auth
from tests.helpers.mqtt import free_port

ROOT = Path(__file__).resolve().parent.parent
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def centre_file(tmp_path: Path, http_port: int) -> Path:
    """The sample centre, its public_url on the port the test's server listens on."""
    text = DEFAULT_CONFIG.read_text("utf-8")
    text = text.replace('public_url = "http://192.168.1.10:8080"', f'public_url = "http://127.0.0.1:{http_port}"')
    text = text.replace('bind = "0.0.0.0"', 'bind = "127.0.0.1"')
    assert f":{http_port}" in text
    path = tmp_path / "centre.toml"
    path.write_text(text, "utf-8")
    return path


async def start_centre(tmp_path: Path, mqtt: bool = True, clock=utc_now) -> tuple[CentreRuntime, Path]:
    port = free_port()
    conf = centre_file(tmp_path, port)
    runtime = CentreRuntime(load_config(conf), RuntimeOptions(data_dir=tmp_path / "var", http_port=port, mqtt=mqtt,
                                                              broker="mosquitto", mqtt_port=0, clock=clock, init=True))
    await runtime.start()
    async with httpx.AsyncClient(base_url=runtime.base_url) as http:
        (await http.post("/api/v1/tickets", json={"group": "ho-tich"}, headers=device_auth(runtime, "kiosk-1"))).raise_for_status()
    return runtime, conf


async def doctor(conf: Path, data: Path, *extra: str) -> tuple[int, str]:
    """Run `luot doctor` as the technician does, off the test's loop (the centre keeps serving)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "luot.cli", "doctor", "--config", str(conf), "--data", str(data), *extra,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


async def doctor_json(conf: Path, data: Path, *extra: str) -> tuple[int, dict[str, dict]]:
    code, text = await doctor(conf, data, "--json", *extra)
    report = json.loads(text)
    assert report["ok"] == (code == 0)
    return code, {check["key"]: check for check in report["checks"]}


def queued_for_server(runtime: CentreRuntime) -> list[bytes]:
    """Log in as the server, resuming its persistent session, and collect what the broker had kept."""
    got: list[bytes] = []
    client = new_client(SERVER_USER, runtime.credentials.password(SERVER_USER), persistent=True, reconnect=(1, 5))
    client.on_message = lambda _c, _u, message: got.append(message.payload)
    client.connect(runtime.mqtt_host, runtime.mqtt_port)
    client.loop_start()
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    client.disconnect()
    client.loop_stop()
    return got


def printer(tmp_path: Path) -> str:
    device = tmp_path / "lp0"
    device.write_bytes(b"")
    return f"file:{device}"


@pytest.mark.asyncio
async def test_a_running_centre_passes_and_a_stopped_broker_fails_with_its_fix(tmp_path):
    runtime, conf = await start_centre(tmp_path)
    data = tmp_path / "var"
    try:
        assert await runtime.link.wait_connected(10)
        code, checks = await doctor_json(conf, data, "--printer", printer(tmp_path))
        assert code == 0, json.dumps(checks, ensure_ascii=False, indent=1)
        for key in ("config", "broker", "passwords", "disk", "database", "clock", "printer", "versions"):
            assert checks[key]["status"] == "ok", checks[key]
        assert checks["broker"]["facts"]["port"] == runtime.mqtt_port
        assert checks["broker"]["facts"]["server_login"] == "live (from /health)"
        assert checks["passwords"]["facts"]["users"] == 1 + len(runtime.config.devices)
        # public_url answers, but 127.0.0.1 is no address a citizen's phone can open
        assert checks["http"]["status"] == "warn" and "LAN" in checks["http"]["fix_en"]
        assert checks["audio"]["status"] in ("ok", "warn")  # no sound card is a warning: WAVs still render
        assert checks["audio"]["facts"]["wav_bytes"] > 44
        assert checks["versions"]["facts"]["mosquitto"] and checks["versions"]["facts"]["sqlite"]

        code, text = await doctor(conf, data, "--printer", printer(tmp_path))
        assert code == 0
        # two doctor runs left the live server's session alone: it logged in once, nobody took it over
        broker_log = (runtime.broker.directory / "mosquitto.log").read_text()
        assert broker_log.count("as server (") == 1 and "already connected" not in broker_log
        assert broker_log.count("not authorised") == 2 and runtime.link.connected
        assert "✔ Cấu hình hợp lệ" in text and "Configuration valid" in text and "0 failed" in text

        # the server's own MQTT link gone, the broker still up: the doctor logs in as `server` itself
        await runtime.link.stop()
        deadline = time.monotonic() + 20
        async with httpx.AsyncClient(base_url=runtime.base_url) as http:
            while (await http.get("/health")).json()["mqtt"]:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
        # a pad's rating sent meanwhile waits in the server's session, and must still be there after the doctor
        topics = Topics(runtime.config.centre.id)
        pad = new_client("pad-1", runtime.credentials.password("pad-1"), persistent=False, reconnect=(1, 5))
        pad.connect(runtime.mqtt_host, runtime.mqtt_port)
        pad.loop_start()
        pad.publish(topics.feedback("pad-1"), b"queued-while-away", qos=QOS).wait_for_publish(5)
        pad.disconnect()
        pad.loop_stop()
        code, checks = await doctor_json(conf, data)
        assert checks["broker"]["status"] == "ok" and checks["broker"]["facts"]["server_login"] == "checked"
        assert await asyncio.to_thread(queued_for_server, runtime) == [b"queued-while-away"]

        await runtime.broker.stop()
        code, checks = await doctor_json(conf, data)
        assert code == 1
        broker = checks["broker"]
        assert broker["status"] == "fail" and str(runtime.mqtt_port) in broker["message_en"]
        assert "luot server" in broker["fix_en"] and "luot server" in broker["fix"]
        assert checks["database"]["status"] == "ok"
        code, text = await doctor(conf, data)
        assert code == 1 and "✘ Broker MQTT không chạy" in text and "→ Fix: Restart `luot server`" in text
    finally:
        await runtime.stop()


@pytest.mark.asyncio
async def test_a_damaged_database_fails_quick_check(tmp_path):
    runtime, conf = await start_centre(tmp_path, mqtt=False)
    await runtime.stop()
    database = tmp_path / "var" / Path(runtime.config.storage.path).name
    code, checks = await doctor_json(conf, tmp_path / "var")
    assert checks["database"]["status"] == "ok"
    assert not Path(f"{database}-wal").exists() or Path(f"{database}-wal").stat().st_size == 0
    pages = database.stat().st_size // 4096
    assert pages >= 4
    with database.open("r+b") as handle:  # scribble over the middle pages, as a failing SD card does
        for page in range(2, pages):
            handle.seek(page * 4096 + 100)
            handle.write(b"\xde\xad\xbe\xef" * 200)
    code, checks = await doctor_json(conf, tmp_path / "var")
    assert code == 1
    check = checks["database"]
    assert check["status"] == "fail" and "damaged" in check["message_en"] and "backup" in check["fix_en"]


async def test_storage_trouble_reported_by_the_server_fails_the_http_check(tmp_path):
    """/health answers 503 "storage-trouble" (here: a disk threshold above any disk): the doctor says
    the server is there and what is wrong with its storage, not that nothing answers."""
    port = free_port()
    conf = centre_file(tmp_path, port)
    config = load_config(conf)
    config = config.model_copy(update={"storage": config.storage.model_copy(update={"min_free_mb": 10**9})})
    runtime = CentreRuntime(config, RuntimeOptions(data_dir=tmp_path / "var", http_port=port, mqtt=False, init=True))
    await runtime.start()
    try:
        code, checks = await doctor_json(conf, tmp_path / "var")
        assert code == 1
        http = checks["http"]
        assert http["status"] == "fail" and "storage trouble" in http["message_en"] and "disk nearly full" in http["message_en"]
        assert "sự cố lưu trữ" in http["message"] and "luot restore" in http["fix_en"]
    finally:
        await runtime.stop()


@pytest.mark.asyncio
async def test_a_clock_behind_the_last_event_fails(tmp_path):
    ahead = ManualClock(utc_now() + timedelta(hours=3))  # the log was written by a clock 3 h fast
    runtime, conf = await start_centre(tmp_path, mqtt=False, clock=ahead)
    try:
        code, checks = await doctor_json(conf, tmp_path / "var")
        assert code == 1
        clock = checks["clock"]
        assert clock["status"] == "fail" and "behind" in clock["message_en"] and "timedatectl" in clock["fix"]
        assert 170 <= -clock["facts"]["hours_after_last_event"] * 60 <= 181
    finally:
        await runtime.stop()


def test_clock_rules():
    last = datetime(2026, 12, 4, 9, 0, tzinfo=timezone.utc)  # Friday 16:00 in Hanoi
    assert judge_clock(last + timedelta(hours=1), last, ZONE).status == "ok"
    assert judge_clock(last + timedelta(hours=65), last, ZONE).status == "ok"  # Monday morning after a weekend
    jumped = judge_clock(last + timedelta(days=30), last, ZONE)
    assert jumped.status == "warn" and jumped.fix_en
    assert judge_clock(last - timedelta(seconds=1), last, ZONE).status == "fail"
    assert judge_clock(last, None, ZONE).status == "ok"


def test_disk_rules():
    gib = 1024**3
    assert judge_disk(Path("/"), 100 * gib, 50 * gib).status == "ok"
    assert judge_disk(Path("/"), 100 * gib, 5 * gib).status == "warn"  # 5 %
    assert judge_disk(Path("/"), 4 * gib, gib // 2).status == "warn"  # under 1 GiB
    low = judge_disk(Path("/"), 100 * gib, gib)  # 1 %
    assert low.status == "fail" and low.facts["free_percent"] == 1.0 and low.fix


def test_password_file_rules(tmp_path):
    secrets = {"server": "s3cret", "kiosk-1": "k1"}
    lines = {"server": mosquitto_hash("s3cret"), "kiosk-1": mosquitto_hash("k1")}
    assert verify_mosquitto_hash("k1", lines["kiosk-1"]) and not verify_mosquitto_hash("k2", lines["kiosk-1"])
    wanted = ["server", "kiosk-1", "pad-9"]
    missing = judge_passwords(wanted, secrets, lines, tmp_path / "passwd", verify_mosquitto_hash)
    assert missing.status == "fail" and missing.facts["missing"] == ["pad-9"]
    stale = judge_passwords(["server", "kiosk-1"], {**secrets, "kiosk-1": "rotated"}, lines, tmp_path / "passwd",
                            verify_mosquitto_hash)
    assert stale.status == "fail" and stale.facts["mismatched"] == ["kiosk-1"]
    assert judge_passwords(["server", "kiosk-1"], secrets, lines, tmp_path / "passwd", verify_mosquitto_hash).status == "ok"


def test_broker_port_is_read_from_the_generated_configuration(tmp_path):
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("user root\nlistener 41234 0.0.0.0\nallow_anonymous false\n")
    assert mosquitto_listener(conf) == ("127.0.0.1", 41234)
    assert mosquitto_listener(tmp_path / "absent.conf") is None


@contextmanager
def lan(prefix: str):
    """Two network namespaces joined by a cable: the centre's server box and a phone on its LAN
    (10.213.x.0/24, no route out). Deleted afterwards, whatever happens."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.fail("this test builds a LAN with `ip netns` and needs root (docs: platform findings)")
    box, phone = f"{prefix}-box", f"{prefix}-phone"
    subnet = f"10.213.{os.getpid() % 250}"
    commands = [
        ["ip", "netns", "add", box], ["ip", "netns", "add", phone],
        ["ip", "link", "add", f"{prefix}b", "type", "veth", "peer", "name", f"{prefix}p"],
        ["ip", "link", "set", f"{prefix}b", "netns", box], ["ip", "link", "set", f"{prefix}p", "netns", phone],
        ["ip", "-n", box, "addr", "add", f"{subnet}.10/24", "dev", f"{prefix}b"],
        ["ip", "-n", phone, "addr", "add", f"{subnet}.50/24", "dev", f"{prefix}p"],
        *(["ip", "-n", ns, "link", "set", dev, "up"] for ns, dev in ((box, "lo"), (box, f"{prefix}b"),
                                                                      (phone, "lo"), (phone, f"{prefix}p"))),
    ]
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        yield box, phone, f"{subnet}.10"
    finally:
        for ns in (box, phone):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


async def in_namespace(ns: str, *argv: str, timeout: float = 120) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec("ip", "netns", "exec", ns, *argv, cwd=ROOT,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.asyncio
async def test_on_a_box_with_a_lan_address_every_check_passes(tmp_path):
    """`luot server` on a box whose public_url is its LAN address, the doctor run on that box:
    nothing fails and nothing warns but the missing sound card (this machine has none)."""
    with lan(f"ldoc{os.getpid() % 10000}") as (box, phone, address):
        text = DEFAULT_CONFIG.read_text("utf-8")
        text = text.replace('public_url = "http://192.168.1.10:8080"', f'public_url = "http://{address}:8080"')
        assert address in text and 'host = "0.0.0.0"' in text
        conf = tmp_path / "centre.toml"
        conf.write_text(text, "utf-8")
        data = tmp_path / "var"
        log = (tmp_path / "server.log").open("wb")
        server = subprocess.Popen(["ip", "netns", "exec", box, sys.executable, "-m", "luot.cli", "server", "--init",
                                   "--config", str(conf), "--data", str(data)], cwd=ROOT, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while True:  # the phone reaches the box across the cable, as a citizen's phone would
                code, answer = await in_namespace(phone, "curl", "-sf", "--max-time", "2", f"http://{address}:8080/health")
                if code == 0 and json.loads(answer)["mqtt"]:
                    break
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                await asyncio.sleep(0.5)
            secrets = json.loads((data / "secrets.json").read_text())
            code, ticket = await in_namespace(phone, "curl", "-sf", "-X", "POST", "-H", "Content-Type: application/json",
                                              "-H", f"Authorization: Bearer kiosk-1:{secrets['kiosk-1']}",
                                              "-d", '{"group": "ho-tich"}', f"http://{address}:8080/api/v1/tickets")
            assert code == 0, ticket
            code, output = await in_namespace(box, sys.executable, "-m", "luot.cli", "doctor", "--config", str(conf),
                                              "--data", str(data), "--printer", printer(tmp_path), "--json")
            report = json.loads(output)
            checks = {check["key"]: check for check in report["checks"]}
            assert code == 0 and report["ok"], output
            for key, check in checks.items():
                if key != "audio":
                    assert check["status"] == "ok", check
            assert checks["http"]["facts"]["url"] == f"http://{address}:8080/health"
            assert checks["broker"]["facts"]["port"] == 18830
            assert checks["audio"]["status"] == ("ok" if checks["audio"]["facts"]["sound_cards"] else "warn")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
            log.close()
