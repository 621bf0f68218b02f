"""``luot doctor --centres``: is this regional box's broker allowed enough open files for its centres?

Every connected centre bridge holds a socket in the regional Mosquitto, and Debian's
``mosquitto.service`` keeps the default soft limit of 1,024 open files: a province broker run that
way stops accepting centres at about 1,000, and nothing says so but a refused bridge in a centre's
log (issue 19). `luot bridge-config --centres` writes a unit and a drop-in with a sized
``LimitNOFILE`` (:func:`region.bridge.nofile_needed`), but an operator may start Debian's unit
without the drop-in, start Mosquitto by hand from a shell, or add centres after generating them.

The doctor reads the limit where it is in force: each running regional Mosquitto's
``/proc/<pid>/limits`` (the soft limit, the one that refuses), and ``LimitNOFILE`` of the units
systemd would start it with. The judging (:func:`judge_broker_nofile`) is pure; the rest only
gathers facts, never changes anything.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from region.bridge import nofile_minimum
from server.doctor import Check, fail, ok, warn

SYSTEMD_DIR = Path("/etc/systemd/system")
REGIONAL_MARK = "configuration of the regional broker"
"""Words of the generated regional mosquitto.conf's first line (region/bridge.py REGION_CONF)."""


@dataclass(frozen=True)
class Limit:
    """One open-file limit found: where (a process or a unit file) and its value (None: unlimited)."""

    source: str
    value: int | None


def count_centres(centres_toml: Path) -> int:
    """The centres listed in the region's centres.toml (their credentials files are not needed)."""
    data = tomllib.loads(centres_toml.read_text("utf-8"))
    return len(data.get("centres") or [])


def _soft_limit(text: str) -> int | None:
    """``Max open files`` soft value of a /proc/<pid>/limits text (None: unlimited or absent)."""
    match = re.search(r"^Max open files\s+(\S+)", text, re.M)
    return int(match.group(1)) if match and match.group(1).isdigit() else None


def _unit_limit(text: str) -> int | None | str:
    """The last ``LimitNOFILE=`` of a unit file: its soft part ("soft:hard" or one value); "" if none."""
    found = re.findall(r"^\s*LimitNOFILE\s*=\s*(\S+)", text, re.M)
    if not found:
        return ""
    soft = found[-1].split(":")[0]
    return int(soft) if soft.isdigit() else None  # "infinity"


def _conf_of(argv: list[str]) -> Path | None:
    for flag, value in zip(argv, argv[1:]):
        if flag in ("-c", "--config-file"):
            return Path(value)
    return None


def running_brokers(proc: Path = Path("/proc"), conf: Path | None = None) -> list[Limit]:
    """The soft open-file limit of each running Mosquitto that serves the region: started with
    ``conf`` when given, else with a generated regional configuration."""
    found = []
    for entry in proc.iterdir() if proc.is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode("utf-8", "replace").split("\0")
            if not argv or Path(argv[0]).name != "mosquitto":
                continue
            started_with = _conf_of(argv)
            if conf is not None:
                if started_with is None or (entry / "cwd" / started_with).resolve() != conf.resolve():
                    continue
            elif started_with is None or REGIONAL_MARK not in (entry / "cwd" / started_with).read_text("utf-8", "replace")[:300]:
                continue
            limits = (entry / "limits").read_text()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        found.append(Limit(f"process {entry.name} ({started_with})", _soft_limit(limits)))
    return found


def unit_limits(conf: Path | None, systemd_dir: Path = SYSTEMD_DIR) -> list[Limit]:
    """``LimitNOFILE`` of the units that would start the regional broker: the generated unit beside
    ``conf``, and the installed luot-region-broker.service and mosquitto.service drop-ins."""
    files = [systemd_dir / "luot-region-broker.service", *sorted((systemd_dir / "mosquitto.service.d").glob("*.conf"))]
    if conf is not None:
        files.insert(0, conf.parent / "luot-region-broker.service")
    found = []
    for file in files:
        try:
            value = _unit_limit(file.read_text("utf-8"))
        except OSError:
            continue
        if value != "":
            found.append(Limit(f"unit {file}", value if isinstance(value, int) else None))
    return found


def judge_broker_nofile(centres: int, limits: list[Limit]) -> Check:
    """Warn about every limit below what ``centres`` bridges need (region.bridge.nofile_minimum)."""
    need = nofile_minimum(centres)
    facts = {"centres": centres, "needed": need, "limits": {l.source: l.value for l in limits}}
    low = [l for l in limits if l.value is not None and l.value < need]
    fix = ("Tạo lại cấu hình (`luot bridge-config --centres ...`), cài luot-region-broker.service (hoặc chép "
           "mosquitto.service.d/luot-nofile.conf vào /etc/systemd/system/mosquitto.service.d/), rồi "
           "`systemctl daemon-reload` và khởi động lại broker.")
    fix_en = ("Regenerate (`luot bridge-config --centres ...`), install luot-region-broker.service (or copy "
              "mosquitto.service.d/luot-nofile.conf to /etc/systemd/system/mosquitto.service.d/), then "
              "`systemctl daemon-reload` and restart the broker.")
    if low:
        where = "; ".join(f"{l.source}: {l.value}" for l in low)
        return warn("region-broker-files",
                    f"Broker tỉnh chỉ được mở {min(l.value or 0 for l in low)} tệp, cần ít nhất {need} cho {centres} trung tâm "
                    f"({where}): các trung tâm vượt quá sẽ bị từ chối kết nối.",
                    f"The regional broker may open only {min(l.value or 0 for l in low)} files; its {centres} centres need "
                    f"at least {need} ({where}): centres beyond it are refused.", fix, fix_en, **facts)
    if not limits:
        return warn("region-broker-files",
                    f"Không thấy broker tỉnh đang chạy hay unit systemd nào để kiểm tra giới hạn tệp ({centres} trung tâm cần {need}).",
                    f"No running regional broker and no systemd unit found to check its open-file limit "
                    f"({centres} centres need {need}).", fix, fix_en, **facts)
    return ok("region-broker-files",
              f"Broker tỉnh được mở đủ tệp cho {centres} trung tâm (cần {need}).",
              f"The regional broker's open-file limit covers its {centres} centres (needs {need}).", **facts)


def diagnose_region(centres_toml: Path, conf: Path | None = None, proc: Path = Path("/proc"),
                    systemd_dir: Path = SYSTEMD_DIR) -> list[Check]:
    """The regional box's checks (today: the broker's open files)."""
    try:
        centres = count_centres(centres_toml)
    except (OSError, tomllib.TOMLDecodeError) as error:
        return [fail("region-centres", f"Không đọc được {centres_toml}: {error}", f"Cannot read {centres_toml}: {error}",
                     "Kiểm tra đường dẫn --centres (tệp centres.toml của tỉnh).",
                     "Check the --centres path (the region's centres.toml).")]
    return [judge_broker_nofile(centres, running_brokers(proc, conf) + unit_limits(conf, systemd_dir))]
