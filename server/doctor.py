"""``luot doctor``'s checks: is this server box ready to run its centre, and if not, what to do.

Each check returns a :class:`Check` (✔ ok, ! warning, ✘ failure) with a Vietnamese and an English
sentence, the facts it saw, and for anything not ok the fix a technician can carry out. The
judging is pure (``judge_*`` take plain values and the time), so the rules are tested without a
machine in a particular state; the ``check_*`` functions only gather the facts (a file, a socket,
a subprocess) and hand them to a judge.

Nothing here changes the centre: the database is opened read-only, and the broker check never
takes over a live MQTT session (see :func:`check_broker`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Literal
from zoneinfo import ZoneInfo

from luot.config import CentreConfig

Status = Literal["ok", "warn", "fail"]
MARKS: dict[str, str] = {"ok": "✔", "warn": "!", "fail": "✘"}

DISK_FAIL_BYTES, DISK_WARN_BYTES = 200 * 1024**2, 1024**3
DISK_FAIL_PERCENT, DISK_WARN_PERCENT = 2.0, 10.0
CLOCK_GAP_HOURS = 96.0
"""A longer gap across days is worth a look (a clock jumped?) but not fatal: Tết closes a centre for days."""


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    key: str
    status: Status
    message: str
    message_en: str
    fix: str = ""
    fix_en: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ok(key: str, message: str, message_en: str, **facts: Any) -> Check:
    return Check(key, "ok", message, message_en, facts=facts)


def warn(key: str, message: str, message_en: str, fix: str, fix_en: str, **facts: Any) -> Check:
    return Check(key, "warn", message, message_en, fix, fix_en, facts)


def fail(key: str, message: str, message_en: str, fix: str, fix_en: str, **facts: Any) -> Check:
    return Check(key, "fail", message, message_en, fix, fix_en, facts)


# ------------------------------------------------------------------------------ where things are
@dataclass(frozen=True)
class CentreFiles:
    """The files of one centre's data directory, named as ``luot server`` names them."""

    data_dir: Path
    database: Path

    @property
    def secrets(self) -> Path:
        return self.data_dir / "secrets.json"

    @property
    def mosquitto_dir(self) -> Path:
        return self.data_dir / "broker" / "mosquitto"

    @property
    def amqtt_dir(self) -> Path:
        return self.data_dir / "broker" / "amqtt"


# ------------------------------------------------------------------------------ HTTP
def _is_loopback(url: str) -> bool:
    host = re.sub(r"^https?://", "", url).split("/")[0].rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def check_http(config: CentreConfig, timeout: float = 5.0) -> tuple[Check, dict[str, Any] | None]:
    """GET public_url + /health: what a phone scanning a ticket's QR code reaches. Also returns
    the health answer, which the broker check reads (is the server's own MQTT link up?)."""
    url = config.centre.public_url + "/health"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the LAN path itself, never a proxy
    try:
        try:
            with direct.open(url, timeout=timeout) as answer:
                health = json.loads(answer.read().decode("utf-8"))
        except urllib.error.HTTPError as refusal:  # 503 "storage-trouble": the server is there, its storage is not sound
            if refusal.code != 503:
                raise
            health = json.loads(refusal.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return fail("http", f"Không truy cập được máy chủ tại {url}: {reason}",
                    f"The server does not answer at {url}: {reason}",
                    "Chạy `luot server` (hoặc `make centre`); nếu đang chạy, kiểm tra [centre] public_url và "
                    "[http] host (0.0.0.0 để máy khác trong mạng LAN truy cập được), tường lửa.",
                    "Start `luot server` (or `make centre`); if it runs, check [centre] public_url and [http] host "
                    "(0.0.0.0 so the LAN can reach it) and the firewall.", url=url), None
    if health.get("centre") != config.centre.id:
        return fail("http", f"{url} trả lời nhưng là trung tâm khác ({health.get('centre')!r})",
                    f"{url} answers for another centre ({health.get('centre')!r})",
                    "Sửa [centre] public_url cho đúng địa chỉ máy chủ của trung tâm này.",
                    "Point [centre] public_url at this centre's server.", url=url, health=health), health
    trouble = (health.get("storage") or {}).get("problems") or []
    if health.get("status", "ok") != "ok" and trouble:
        return fail("http", f"Máy chủ trả lời tại {url} nhưng báo sự cố lưu trữ: "
                    + "; ".join(p["message"] for p in trouble),
                    f"The server answers at {url} but reports storage trouble: "
                    + "; ".join(p["message_en"] for p in trouble),
                    "Giải phóng ổ đĩa của thư mục dữ liệu, xem nhật ký máy chủ (journalctl -u luot-server) và "
                    "docs/backup.md; nếu cơ sở dữ liệu hỏng, khôi phục từ bản sao lưu (luot restore).",
                    "Free space on the data directory's disk, read the server's log (journalctl -u luot-server) "
                    "and docs/backup.md; if the database is damaged, restore a backup (luot restore).",
                    url=url, health=health), health
    if _is_loopback(config.centre.public_url):
        return warn("http", f"Máy chủ trả lời tại {url}, nhưng đó là địa chỉ nội bộ của máy này",
                    f"The server answers at {url}, but that address is this machine's loopback",
                    "Điện thoại của công dân quét mã QR sẽ không mở được: đặt [centre] public_url là địa chỉ LAN, "
                    "ví dụ http://192.168.1.10:8080.",
                    "Citizens' phones scanning the QR cannot open it: set [centre] public_url to the LAN address, "
                    "e.g. http://192.168.1.10:8080.", url=url, health=health), health
    return ok("http", f"Máy chủ trả lời tại {url}", f"The server answers at {url}", url=url, health=health), health


# ------------------------------------------------------------------------------ broker
def mosquitto_listener(conf: Path) -> tuple[str, int] | None:
    """(host to connect to, port) from a generated mosquitto.conf's ``listener PORT BIND`` line."""
    try:
        text = conf.read_text("utf-8")
    except OSError:
        return None
    match = re.search(r"^listener\s+(\d+)(?:\s+(\S+))?", text, re.M)
    if not match:
        return None
    bind = match.group(2) or "127.0.0.1"
    return ("127.0.0.1" if bind in ("0.0.0.0", "::") else bind), int(match.group(1))


def broker_address(config: CentreConfig, files: CentreFiles, port: int | None = None) -> tuple[str, int]:
    """Where the centre's broker listens: the configured external broker, else the one ``luot server``
    started (its generated configuration says the port it really used), else the configured port."""
    if config.mqtt.host:
        return config.mqtt.host, port or config.mqtt.port
    if port:
        return "127.0.0.1", port
    return mosquitto_listener(files.mosquitto_dir / "mosquitto.conf") or ("127.0.0.1", config.mqtt.port)


def mqtt_connack(host: str, port: int, user: str, password: str, timeout: float = 5.0, *,
                 keep_session: bool = False, tls: bool = False) -> int | str:
    """Log in once and hang up; the CONNACK return code (0 = accepted) or why no answer came.

    ``keep_session``: connect without cleaning the user's persistent session and without
    acknowledging anything the broker hands over, so every queued message stays for its owner.
    """
    from luot.mqtt_client import new_client

    answer: list[int] = []
    done = threading.Event()
    client = new_client(user, password, persistent=keep_session, reconnect=(1, 1), manual_ack=True, tls=tls)

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        answer.append(int(getattr(reason, "value", reason)))
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
    except OSError as error:
        return f"{type(error).__name__}: {error.strerror or error}"
    client.loop_start()
    try:
        if not done.wait(timeout):
            return f"no CONNACK within {timeout:.0f} s"
        return answer[0]
    finally:
        client.disconnect()
        client.loop_stop()


def check_broker(config: CentreConfig, files: CentreFiles, secret: str | None, health: dict[str, Any] | None,
                 port: int | None = None) -> Check:
    """Is the broker up, does it refuse a wrong password, and does it accept the server's?

    Mosquitto makes the client id the username (use_username_as_clientid), so logging in as
    ``server`` while the server is connected would take over the server's own session. When the
    server's /health says its MQTT link is up, that live login *is* the proof, and the doctor does
    not log in as the server again; it only checks that a wrong password is refused.
    """
    from luot.credentials import SERVER_USER

    host, port = broker_address(config, files, port)
    fix_down = ("Khởi động lại `luot server` (nó tự chạy Mosquitto); xem nhật ký "
                f"{files.mosquitto_dir / 'mosquitto.log'}; kiểm tra cổng [mqtt] port không bị chương trình khác chiếm.")
    fix_down_en = ("Restart `luot server` (it starts Mosquitto itself); read "
                   f"{files.mosquitto_dir / 'mosquitto.log'}; check nothing else holds the [mqtt] port.")
    if config.mqtt.host:
        fix_down = f"Khởi động broker tại {host}:{port} (systemctl start mosquitto) và kiểm tra mạng."
        fix_down_en = f"Start the broker at {host}:{port} (systemctl start mosquitto) and check the network."
    tls = config.mqtt.tls
    refused = mqtt_connack(host, port, SERVER_USER, "doctor-wrong-password-" + os.urandom(6).hex(), tls=tls)
    facts: dict[str, Any] = {"host": host, "port": port}
    if isinstance(refused, str):
        return fail("broker", f"Broker MQTT không chạy tại {host}:{port} ({refused})",
                    f"No MQTT broker at {host}:{port} ({refused})", fix_down, fix_down_en, **facts)
    if refused == 0:
        return fail("broker", f"Broker tại {host}:{port} nhận cả mật khẩu sai",
                    f"The broker at {host}:{port} accepts a wrong password",
                    "Dùng cấu hình do Luot sinh ra (allow_anonymous false, password_file): `luot broker-config`.",
                    "Use the configuration Luot generates (allow_anonymous false, password_file): `luot broker-config`.",
                    **facts)
    if health is not None and health.get("mqtt"):
        return ok("broker", f"Broker chạy tại {host}:{port}; máy chủ đang đăng nhập với tài khoản `server`; mật khẩu sai bị từ chối",
                  f"Broker up at {host}:{port}; the server is logged in as `server`; a wrong password is refused",
                  **facts, server_login="live (from /health)")
    if secret is None:
        return fail("broker", "Không có mật khẩu MQTT của máy chủ trong secrets.json",
                    "No MQTT secret for the server in secrets.json",
                    f"Chạy `luot server --data {files.data_dir}` một lần để tạo {files.secrets}.",
                    f"Run `luot server --data {files.data_dir}` once to create {files.secrets}.", **facts)
    accepted = mqtt_connack(host, port, SERVER_USER, secret, keep_session=True, tls=tls)
    if accepted != 0:
        return fail("broker", f"Broker từ chối tài khoản `server` (mã {accepted})",
                    f"The broker refuses the `server` login (code {accepted})",
                    "Mật khẩu trong broker khác secrets.json: khởi động lại `luot server` để sinh lại tệp mật khẩu.",
                    "The broker's password file disagrees with secrets.json: restart `luot server` to regenerate it.",
                    **facts)
    return ok("broker", f"Broker chạy tại {host}:{port}; tài khoản `server` đăng nhập được",
              f"Broker up at {host}:{port}; the `server` login works", **facts, server_login="checked")


def verify_mosquitto_hash(password: str, stored: str) -> bool:
    """Check a ``$7$`` (PBKDF2-SHA512) line of a Mosquitto 2.0 password file."""
    parts = stored.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    iterations, salt, digest = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
    return hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations) == digest


def judge_passwords(wanted: list[str], secrets: dict[str, str], lines: dict[str, str], source: Path,
                    verify: Any) -> Check:
    """Every identity the centre needs is in the broker's password file, with the secret it will send."""
    missing = [user for user in wanted if user not in lines]
    no_secret = [user for user in wanted if user in lines and user not in secrets]
    wrong = [user for user in wanted if user in lines and user in secrets and not verify(secrets[user], lines[user])]
    facts = {"file": str(source), "users": len(wanted), "missing": missing, "mismatched": wrong + no_secret}
    if missing or wrong or no_secret:
        names = ", ".join(missing + wrong + no_secret)
        return fail("passwords", f"Tệp mật khẩu broker thiếu hoặc sai cho: {names}",
                    f"Broker password file lacks or mismatches: {names}",
                    "Khởi động lại `luot server`: nó thêm mật khẩu cho mọi thiết bị trong cấu hình và sinh lại tệp.",
                    "Restart `luot server`: it adds a secret for every configured device and regenerates the file.",
                    **facts)
    return ok("passwords", f"Tệp mật khẩu broker có đủ {len(wanted)} tài khoản (máy chủ và mọi thiết bị)",
              f"Broker password file lists all {len(wanted)} identities (server and every device)", **facts)


def check_passwords(config: CentreConfig, files: CentreFiles) -> Check:
    from luot.credentials import SERVER_USER, Credentials
    from server.devices import DeviceRegistry, RegistryError

    wanted = [SERVER_USER, *(d.id for d in config.devices)]
    if files.secrets.exists():  # the broker admits the registry's devices: declared not revoked, and enrolled
        try:
            secrets_now = json.loads(files.secrets.read_text("utf-8"))
            registry = DeviceRegistry(config, Credentials(files.secrets, secrets_now), files.data_dir)
            wanted = [SERVER_USER, *(d.id for d in registry.active_devices())]
            enrolled = registry.mqtt_credentials().secrets
        except (OSError, ValueError, RegistryError):
            enrolled = {}
    else:
        enrolled = {}
    if config.mqtt.host:
        return warn("passwords", f"Broker bên ngoài ({config.mqtt.host}): không kiểm tra được tệp mật khẩu",
                    f"External broker ({config.mqtt.host}): its password file is not checked here",
                    f"Trên máy broker, bảo đảm có đủ tài khoản: {', '.join(wanted)} (`luot broker-config`).",
                    f"On the broker's machine make sure these users exist: {', '.join(wanted)} (`luot broker-config`).")
    try:
        secrets = json.loads(files.secrets.read_text("utf-8"))
    except (OSError, ValueError) as error:
        return fail("passwords", f"Không đọc được {files.secrets}: {error}", f"Cannot read {files.secrets}: {error}",
                    f"Chạy `luot server --data {files.data_dir}` một lần để tạo tệp.",
                    f"Run `luot server --data {files.data_dir}` once to create it.")
    for passwd, verify in ((files.mosquitto_dir / "passwd", verify_mosquitto_hash), (files.amqtt_dir / "passwd", _verify_argon2)):
        if passwd.exists():
            try:
                lines = dict(line.split(":", 1) for line in passwd.read_text("utf-8").splitlines() if ":" in line)
            except OSError as error:
                return fail("passwords", f"Không đọc được {passwd}: {error}", f"Cannot read {passwd}: {error}",
                            "Chạy doctor với quyền của người chạy máy chủ (sudo).", "Run the doctor as the server's user (sudo).")
            return judge_passwords(wanted, {**secrets, **enrolled}, lines, passwd, verify)
    return fail("passwords", f"Không có tệp mật khẩu broker trong {files.data_dir / 'broker'}",
                f"No broker password file under {files.data_dir / 'broker'}",
                f"Chạy `luot server --data {files.data_dir}`: nó sinh cấu hình broker; hoặc kiểm tra --data.",
                f"Run `luot server --data {files.data_dir}` (it writes the broker files), or check --data.")


def _verify_argon2(password: str, stored: str) -> bool:
    from pwdlib.hashers.argon2 import Argon2Hasher

    return bool(Argon2Hasher().verify(password, stored))


# ------------------------------------------------------------------------------ disk and database
def judge_disk(path: Path, total: int, free: int) -> Check:
    percent = 100.0 * free / total if total else 0.0
    facts = {"path": str(path), "free_bytes": free, "total_bytes": total, "free_percent": round(percent, 1)}
    text = f"{free / 1024**3:.1f} GiB ({percent:.0f}%)"
    fix = "Giải phóng dung lượng: xoá tệp cũ ngoài thư mục dữ liệu, sao lưu rồi chuyển bản sao lưu đi nơi khác."
    fix_en = "Free some space: remove old files outside the data directory, move backups elsewhere."
    if free < DISK_FAIL_BYTES or percent < DISK_FAIL_PERCENT:
        return fail("disk", f"Ổ đĩa gần đầy: còn {text}", f"Disk nearly full: {text} free", fix, fix_en, **facts)
    if free < DISK_WARN_BYTES or percent < DISK_WARN_PERCENT:
        return warn("disk", f"Ổ đĩa sắp đầy: còn {text}", f"Disk filling up: {text} free", fix, fix_en, **facts)
    return ok("disk", f"Ổ đĩa còn trống {text}", f"Disk: {text} free", **facts)


def check_disk(files: CentreFiles) -> Check:
    path = files.data_dir if files.data_dir.exists() else Path(os.path.abspath(files.data_dir)).parent
    usage = shutil.disk_usage(path)
    return judge_disk(path, usage.total, usage.free)


def read_database(path: Path) -> tuple[str, datetime | None]:
    """(quick_check's verdict, time of the last stored event); read-only, never creates the file."""
    if not path.is_file():
        raise FileNotFoundError(str(path))
    with closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=10)) as db:
        verdict = "\n".join(str(row[0]) for row in db.execute("PRAGMA quick_check").fetchall())
        row = db.execute("SELECT at FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    return verdict, datetime.fromisoformat(row[0]) if row else None


def check_database(files: CentreFiles) -> tuple[Check, datetime | None]:
    path = files.database
    try:
        verdict, last = read_database(path)
    except FileNotFoundError:
        return fail("database", f"Không có cơ sở dữ liệu {path}", f"No database at {path}",
                    "Kiểm tra --data (thư mục mà `luot server` dùng) và [storage] path.",
                    "Check --data (the directory `luot server` uses) and [storage] path.", path=str(path)), None
    except sqlite3.Error as error:
        verdict, last = f"{type(error).__name__}: {error}", None
    if verdict != "ok":
        return fail("database", f"Cơ sở dữ liệu hỏng: {verdict.splitlines()[0]}", f"Database damaged: {verdict.splitlines()[0]}",
                    f"Dừng máy chủ, giữ lại bản {path.name} hỏng, khôi phục bản sao lưu gần nhất; "
                    f"`sqlite3 {path} .recover` cứu được phần còn đọc được.",
                    f"Stop the server, keep the damaged {path.name}, restore the latest backup; "
                    f"`sqlite3 {path} .recover` salvages what is still readable.", path=str(path), quick_check=verdict), None
    return ok("database", f"Cơ sở dữ liệu nguyên vẹn (quick_check: ok), {path}",
              f"Database intact (quick_check: ok), {path}", path=str(path)), last


# ------------------------------------------------------------------------------ clock
def judge_clock(now: datetime, last_event: datetime | None, zone: ZoneInfo, max_gap_hours: float = CLOCK_GAP_HOURS) -> Check:
    """The clock must not be behind the log (numbers and waits would go backwards); a jump of more
    than ``max_gap_hours`` into a later day is flagged for a look."""
    facts = {"now": now.isoformat(), "last_event": last_event.isoformat() if last_event else None}
    if last_event is None:
        return ok("clock", "Chưa có sự kiện nào để so giờ", "No stored event to compare the clock with", **facts)
    gap = now - last_event
    hours = gap.total_seconds() / 3600
    facts["hours_after_last_event"] = round(hours, 2)
    if gap < timedelta(0):
        return fail("clock", f"Đồng hồ máy đang chậm hơn sự kiện cuối cùng {-hours * 60:.0f} phút",
                    f"The clock is {-hours * 60:.0f} min behind the last stored event",
                    "Chỉnh giờ hệ thống (`timedatectl set-ntp true` hoặc `date -s`), rồi mới khởi động máy chủ.",
                    "Set the system time (`timedatectl set-ntp true` or `date -s`) before starting the server.", **facts)
    crossed = now.astimezone(zone).date() != last_event.astimezone(zone).date()
    if crossed and hours > max_gap_hours:
        return warn("clock", f"Đồng hồ đi trước sự kiện cuối cùng {hours:.0f} giờ, sang ngày khác",
                    f"The clock is {hours:.0f} h after the last stored event, on a later day",
                    "Nếu trung tâm vẫn làm việc trong khoảng đó thì đồng hồ đã nhảy: kiểm tra NTP và giờ BIOS.",
                    "If the centre worked in between, the clock jumped: check NTP and the BIOS clock.", **facts)
    return ok("clock", f"Đồng hồ hợp lý ({hours:.1f} giờ sau sự kiện cuối cùng)",
              f"Clock sane ({hours:.1f} h after the last stored event)", **facts)


# ------------------------------------------------------------------------------ printer and audio
def check_printer(target: str, timeout: float = 3.0) -> Check:
    """The kiosk's printer target (the same strings as ``luot kiosk --printer``) can be written to."""
    kind, _, rest = target.strip().partition(":")
    facts = {"target": target}
    settings = ("Dùng dạng file:/dev/usb/lp0, network:192.168.1.50:9100, usb:0x0416:0x5011 hoặc none.",
                "Use file:/dev/usb/lp0, network:192.168.1.50:9100, usb:0x0416:0x5011 or none.")
    if kind.lower() == "none":
        return warn("printer", "Không khai báo máy in: vé chỉ hiện trên màn hình", "No printer given: tickets show on screen only",
                    "Nếu ki-ốt ở máy này có máy in, chạy lại với --printer (giống `luot kiosk --printer`).",
                    "If this machine's kiosk has a printer, run again with --printer (as for `luot kiosk`).", **facts)
    if kind == "file" and rest:
        path = Path(rest)
        if path.exists() and os.access(path, os.W_OK):
            return ok("printer", f"Máy in {path} có và ghi được", f"Printer {path} exists and is writable", **facts)
        why = "không có" if not path.exists() else "không ghi được"
        why_en = "does not exist" if not path.exists() else "is not writable"
        return fail("printer", f"Máy in {path} {why}", f"Printer {path} {why_en}",
                    "Cắm cáp USB và bật máy in; kiểm tra `ls -l /dev/usb/`; thêm người dùng vào nhóm lp.",
                    "Plug in and power the printer; check `ls -l /dev/usb/`; add the user to group lp.", **facts)
    if kind == "network" and rest:
        host, _, port = rest.rpartition(":")
        if not host:
            host, port = rest, "9100"
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                pass
        except (OSError, ValueError) as error:
            return fail("printer", f"Máy in mạng {host}:{port} không trả lời ({error})",
                        f"Network printer {host}:{port} does not answer ({error})",
                        "Bật máy in, kiểm tra cáp mạng và địa chỉ IP in trên phiếu tự kiểm tra của máy in.",
                        "Power the printer, check its cable and the IP address on its self-test slip.", **facts)
        return ok("printer", f"Máy in mạng {host}:{port} nhận kết nối", f"Network printer {host}:{port} accepts connections", **facts)
    if kind == "usb" and rest:
        vendor, _, product = rest.partition(":")
        try:
            import usb.core  # pyusb

            found = usb.core.find(idVendor=int(vendor, 16), idProduct=int(product, 16))
        except Exception as error:  # noqa: BLE001 - no libusb backend, bad ids: all mean "cannot print"
            return fail("printer", f"Không dò được máy in USB {rest}: {error}", f"Cannot look for USB printer {rest}: {error}",
                        "Cài libusb-1.0-0 và pyusb; kiểm tra mã vendor:product bằng `lsusb`.",
                        "Install libusb-1.0-0 and pyusb; check vendor:product with `lsusb`.", **facts)
        if found is None:
            return fail("printer", f"Không thấy máy in USB {rest}", f"USB printer {rest} not found",
                        "Cắm cáp USB, bật máy in; `lsusb` phải liệt kê nó.", "Plug in and power the printer; `lsusb` must list it.",
                        **facts)
        return ok("printer", f"Có máy in USB {rest}", f"USB printer {rest} present", **facts)
    return fail("printer", f"Cài đặt máy in không hiểu được: {target!r}", f"Printer setting not understood: {target!r}",
                *settings, **facts)


def _run(argv: list[str], timeout: float = 10.0) -> tuple[int, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        return 127, str(error)
    return done.returncode, (done.stdout + done.stderr).strip()


def judge_audio(espeak: str | None, rendered_bytes: int, aplay_listing: str | None) -> Check:
    """Voice needs espeak-ng (it renders the announcements to WAV); a sound card is only needed to be heard."""
    cards = [line for line in (aplay_listing or "").splitlines() if line.startswith("card ")]
    facts = {"espeak_ng": espeak, "wav_bytes": rendered_bytes, "sound_cards": cards}
    if espeak is None or rendered_bytes <= 44:
        return fail("audio", "Không tạo được tiếng đọc (espeak-ng)", "Cannot render speech (espeak-ng)",
                    "Cài espeak-ng: `apt install espeak-ng`.", "Install espeak-ng: `apt install espeak-ng`.", **facts)
    if not cards:
        return warn("audio", "Tạo được tiếng đọc (WAV) nhưng máy không có card âm thanh",
                    "Speech renders to WAV, but there is no sound card",
                    "Cắm loa/card âm thanh USB nếu máy này phát thông báo; `aplay -l` phải liệt kê nó.",
                    "Attach speakers or a USB sound card if this machine announces; `aplay -l` must list it.", **facts)
    return ok("audio", f"Tạo được tiếng đọc; card âm thanh: {cards[0]}", f"Speech renders; sound card: {cards[0]}", **facts)


def check_audio() -> Check:
    espeak = shutil.which("espeak-ng")
    size = 0
    if espeak:
        with tempfile.TemporaryDirectory(prefix="luot-doctor-") as tmp:
            wav = Path(tmp) / "test.wav"
            _run([espeak, "-v", "vi", "-w", str(wav), "Mời công dân"])
            size = wav.stat().st_size if wav.exists() else 0
    aplay = shutil.which("aplay")
    listing = _run([aplay, "-l"])[1] if aplay else None
    return judge_audio(espeak, size, listing)


# ------------------------------------------------------------------------------ versions
def versions() -> dict[str, str | None]:
    from importlib import metadata

    from server.broker import find_mosquitto

    def first_line(argv: list[str], pattern: str) -> str | None:
        if not argv[0]:
            return None
        code, text = _run(argv)
        match = re.search(pattern, text)
        return match.group(1) if match else None

    try:
        luot = metadata.version("luot")
    except metadata.PackageNotFoundError:
        luot = _pyproject_version()
    return {
        "luot": luot,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "mosquitto": first_line([find_mosquitto() or "", "-h"], r"mosquitto version (\S+)"),
        "espeak-ng": first_line([shutil.which("espeak-ng") or "", "--version"], r"text-to-speech: (\S+)"),
    }


def _pyproject_version() -> str | None:
    import tomllib

    try:
        data = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("project", {}).get("version")


def judge_versions(found: dict[str, str | None], need_mosquitto: bool) -> Check:
    text = ", ".join(f"{name} {version or '—'}" for name, version in found.items())
    missing = [name for name, version in found.items() if version is None and (name != "mosquitto" or need_mosquitto)]
    if missing:
        return warn("versions", f"Phiên bản: {text}; thiếu {', '.join(missing)}", f"Versions: {text}; missing {', '.join(missing)}",
                    f"Chạy `make centre` (scripts/setup.sh cài {', '.join(missing)}).",
                    f"Run `make centre` (scripts/setup.sh installs {', '.join(missing)}).", **found)
    return ok("versions", f"Phiên bản: {text}", f"Versions: {text}", **found)


# ------------------------------------------------------------------------------ report
def render(checks: list[Check]) -> str:
    """The checklist a technician reads: one line per check, the fix under each one not ok."""
    lines = []
    for check in checks:
        lines.append(f"{MARKS[check.status]} {check.message}")
        lines.append(f"    {check.message_en}")
        if check.status != "ok" and check.fix:
            lines.append(f"    → Cách sửa: {check.fix}")
            lines.append(f"    → Fix: {check.fix_en}")
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    lines.append("")
    lines.append(f"{'✘' if failed else '✔'} {failed} lỗi, {warned} cảnh báo / {failed} failed, {warned} warnings")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ all of it
def check_config(path: str | None) -> tuple[Check, CentreConfig | None]:
    from luot.config import DEFAULT_CONFIG, ConfigError, load_config

    source = path or str(DEFAULT_CONFIG)
    try:
        config = load_config(path)
    except ConfigError as error:
        return fail("config", f"Cấu hình không dùng được: {source}", f"Configuration unusable: {source}",
                    f"Sửa các mục dưới đây (`luot check-config {source}` giải thích từng mục):\n{error}",
                    f"Fix the keys below (`luot check-config {source}` explains each):\n{error}", path=source), None
    return ok("config", f"Cấu hình hợp lệ: {config.centre.name} ({source})",
              f"Configuration valid: {config.centre.name_en or config.centre.id} ({source})", path=source), config


def diagnose(config_path: str | None, locate: Callable[[CentreConfig], CentreFiles], *, printer: str = "none",
             mqtt_port: int | None = None, now: datetime, max_gap_hours: float = CLOCK_GAP_HOURS) -> list[Check]:
    """Every check, in the order a technician would fix things. ``locate(config)`` names the
    centre's files (:class:`CentreFiles`), the way ``luot server`` does."""
    from luot.credentials import SERVER_USER

    config_check, config = check_config(config_path)
    checks = [config_check]
    if config is not None:
        files: CentreFiles = locate(config)
        http, health = check_http(config)
        checks.append(http)
        secret = None
        try:
            secret = json.loads(files.secrets.read_text("utf-8")).get(SERVER_USER)
        except (OSError, ValueError):
            pass
        checks.append(check_broker(config, files, secret, health, mqtt_port))
        checks.append(check_passwords(config, files))
        checks.append(check_disk(files))
        database, last_event = check_database(files)
        checks.append(database)
        checks.append(judge_clock(now, last_event, config.zone, max_gap_hours))
    checks.append(check_printer(printer))
    checks.append(check_audio())
    checks.append(judge_versions(versions(), need_mosquitto=config is None or not config.mqtt.host))
    return checks
