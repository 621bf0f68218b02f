"""``luot install --role server|kiosk|display|pad``: set up a centre box to run Luot at boot.

What it does, in order (docs/install.md):

1. the system user ``luot`` (no login shell; device boxes add it to the screen, input, sound and
   printer groups through the unit's ``SupplementaryGroups``);
2. ``/etc/luot/centre.toml`` from ``--config`` (default: the sample centre) unless one is there,
   with ``[storage] path`` set to ``/var/lib/luot/luot.sqlite3`` so every ``luot`` command on the
   box finds the same database; device boxes also get ``/etc/luot/device.env``;
3. ``/var/lib/luot`` (the data directory, owned by ``luot``);
4. the systemd unit ``luot-<role>.service`` from ``assets/`` with this checkout's ``luot``
   (Restart=always, LimitNOFILE, INFO logs to the journal), then ``systemctl enable --now``.

``--root DIR`` installs into a scratch root: files are written under ``DIR`` and the commands
that change the system (useradd, chown, systemctl) are printed, not run. They run only when the
root is ``/``, which needs root. The result is printed as JSON.
"""

from __future__ import annotations

HELP = "set up this box as a centre server or a kiosk/display/pad box (systemd units, user, directories)"

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("server", "kiosk", "display", "pad")
USER = "luot"
ASSETS = Path(__file__).resolve().parents[2] / "assets"
SHIPPED_LUOT = "/opt/luot/.venv/bin/luot"
"""The luot path written in the shipped units; replaced by this checkout's at install."""
ETC = Path("/etc/luot")
DATA = Path("/var/lib/luot")
UNITS = Path("/etc/systemd/system")
CONFIG_NAME, DEVICE_ENV = "centre.toml", "device.env"


class InstallError(RuntimeError):
    """The box cannot be set up as asked; the message is in Vietnamese then English."""


def unit_name(role: str) -> str:
    return f"luot-{role}.service"


def default_luot() -> str:
    """The ``luot`` entry point of the Python running this command (the checkout's virtualenv)."""
    beside = Path(sys.executable).with_name("luot")
    return str(beside) if beside.exists() else SHIPPED_LUOT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", choices=ROLES, required=True, help="what this box is")
    parser.add_argument("--root", default="/", help="install into this directory instead of / (files only; "
                                                     "system commands are printed, not run)")
    parser.add_argument("--config", help="centre file to install as /etc/luot/centre.toml (default: the sample centre)")
    parser.add_argument("--force", action="store_true", help="replace an existing /etc/luot/centre.toml and device.env")
    parser.add_argument("--device", help="device id of a kiosk/display/pad box (default: the first device of that role)")
    parser.add_argument("--server", help="centre server URL for a device box (default: [centre] public_url)")
    parser.add_argument("--mqtt", metavar="HOST:PORT", help="broker for a device box (default: the server's host "
                                                            "and [mqtt] port, or [mqtt] host)")
    parser.add_argument("--luot", default=None, help="path of the luot program the units run (default: this one)")
    parser.add_argument("--no-start", action="store_true", help="enable the unit but do not start it now")


@dataclass
class Plan:
    """What an install or uninstall does: files to write (path under the root -> text, mode),
    directories to make, paths to remove, and the system commands."""

    root: Path
    files: dict[Path, tuple[str, int]] = field(default_factory=dict)
    directories: list[Path] = field(default_factory=list)
    remove: list[Path] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)

    def at(self, path: Path) -> Path:
        """``path`` (absolute, as on the box) inside the root."""
        return self.root / path.relative_to("/")


def with_storage_path(text: str, path: Path) -> str:
    """The centre file with ``[storage] path`` set to ``path`` (comments and layout kept)."""
    line = f'path = "{path}"'
    section = re.search(r"(?m)^\[storage\][^\n]*\n", text)
    if section is None:
        return text.rstrip("\n") + f"\n\n[storage]\n{line}\n"
    end = re.search(r"(?m)^\[", text[section.end():])
    body_end = section.end() + end.start() if end else len(text)
    body = text[section.end():body_end]
    if re.search(r"(?m)^path\s*=", body):
        body = re.sub(r'(?m)^path\s*=\s*"[^"\n]*"', line, body, count=1)
    else:
        body = line + "\n" + body
    return text[:section.end()] + body + text[body_end:]


def _device_env(config, args: argparse.Namespace) -> str:
    from urllib.parse import urlsplit

    role = args.role
    candidates = [d.id for d in config.devices if d.role == role]
    device = args.device or (candidates[0] if candidates else None)
    if device is None:
        raise InstallError(f"Tệp trung tâm không có thiết bị nào role = \"{role}\"; thêm vào [[devices]] hoặc dùng --device.\n"
                           f"The centre file has no device with role = \"{role}\"; add one to [[devices]] or give --device.")
    try:
        known = config.device(device)
    except KeyError:
        raise InstallError(f"Thiết bị {device!r} không có trong [[devices]] của tệp trung tâm.\n"
                           f"Device {device!r} is not in the centre file's [[devices]].") from None
    if known.role != role:
        raise InstallError(f"Thiết bị {device!r} có role {known.role!r}, không phải {role!r}.\n"
                           f"Device {device!r} has role {known.role!r}, not {role!r}.")
    server = (args.server or config.centre.public_url).rstrip("/")
    mqtt = args.mqtt or f"{config.mqtt.host or urlsplit(server).hostname}:{config.mqtt.port}"
    return (f"# Written by `luot install --role {role}`: which device this box is and where its centre is.\n"
            f"LUOT_DEVICE={device}\nLUOT_SERVER={server}\nLUOT_MQTT={mqtt}\n")


def plan_install(args: argparse.Namespace) -> Plan:
    import tomllib

    from luot.config import DEFAULT_CONFIG, load_config, parse_config

    plan = Plan(Path(args.root))
    source = Path(args.config) if args.config else DEFAULT_CONFIG
    load_config(source)  # refuse a broken centre file before touching anything
    target = plan.at(ETC / CONFIG_NAME)
    if target.exists() and not args.force:
        text = target.read_text("utf-8")
    else:
        text = with_storage_path(source.read_text("utf-8"), DATA / "luot.sqlite3")
        plan.files[target] = (text, 0o644)
    config = parse_config(tomllib.loads(text), str(ETC / CONFIG_NAME))
    if args.role != "server":
        env_target = plan.at(ETC / DEVICE_ENV)
        if args.force or not env_target.exists():
            plan.files[env_target] = (_device_env(config, args), 0o644)
    luot = args.luot or default_luot()
    unit = (ASSETS / unit_name(args.role)).read_text("utf-8").replace(SHIPPED_LUOT, luot)
    plan.files[plan.at(UNITS / unit_name(args.role))] = (unit, 0o644)
    plan.directories += [plan.at(ETC), plan.at(DATA), plan.at(UNITS)]
    plan.commands += [
        ["useradd", "--system", "--user-group", "--home-dir", str(DATA), "--shell", "/usr/sbin/nologin", USER],
        *([[luot, "server", "--init-only", "--config", str(ETC / CONFIG_NAME)]] if args.role == "server" else []),
        ["chown", "-R", f"{USER}:{USER}", str(DATA)],  # after --init-only: the new database is the service user's
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", *([] if args.no_start else ["--now"]), unit_name(args.role)],
    ]
    return plan


def user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def apply(plan: Plan, live: bool) -> list[list[str]]:
    """Write the plan's files; run its commands when ``live`` (root is /). Returns those run."""
    for directory in plan.directories:
        directory.mkdir(parents=True, exist_ok=True)
    plan.at(DATA).chmod(0o750)
    for path, (text, mode) in plan.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, "utf-8")
        tmp.chmod(mode)
        os.replace(tmp, path)
    if not live:
        return []
    ran = []
    for command in plan.commands:
        if command[0] == "useradd" and user_exists(USER):
            continue
        subprocess.run(command, check=True)
        ran.append(command)
    return ran


def must_be_root(live: bool) -> None:
    if live and os.geteuid() != 0:
        raise InstallError("Cần quyền root để cài vào / (chạy bằng sudo), hoặc dùng --root THƯ_MỤC để thử.\n"
                           "Installing into / needs root (use sudo), or try it with --root DIR.")


def report(plan: Plan, role: str, ran: list[list[str]], live: bool, **extra: object) -> None:
    print(json.dumps({
        "ok": True, "role": role, "root": str(plan.root),
        "files": sorted(str(p) for p in plan.files), "ran": live,
        "commands": [shlex.join(c) for c in (ran if live else plan.commands)], **extra,
    }, ensure_ascii=False, indent=2))


def run(args: argparse.Namespace) -> int:
    live = Path(args.root).resolve() == Path("/")
    try:
        must_be_root(live)
        plan = plan_install(args)
        ran = apply(plan, live)
    except InstallError as error:
        print(error, file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print(f"Lệnh thất bại / a command failed: {shlex.join(error.cmd)} (exit {error.returncode})", file=sys.stderr)
        return 1
    report(plan, args.role, ran, live, unit=unit_name(args.role))
    return 0
