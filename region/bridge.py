"""Bridge and regional broker set-up, generated from the centre file and from centres.toml.

Centre side (:func:`write_centre_bridge`): a Mosquitto bridge section the centre's broker includes.
It forwards the centre's ``events/#``, ``device/+/availability`` and ``server/availability`` OUT to
the regional broker with the prefix kept (``luot/<centre>/...``), brings ``state/notice`` IN from
the region, keeps a persistent session on both ends (``cleansession false``) under one client id
per centre, and queues what it cannot send while the region is unreachable.

Queue sizing (``[region] max_queued_messages``, default 60,000). Messages crossing the bridge per
ticket: issued 1, called 2 (``events/ticket`` and ``events/call``), serving 1, finished 1, about 0.5
recalls x 2, plus counter events and availability: about 7, rounded up to 8. We plan for 1,500
tickets a day at one centre (about twice the busiest Hanoi ward), so 12,000 messages a busy day;
x5 covers a whole working week offline (a remote commune waiting for its line to be repaired):
60,000. At about 600 bytes a queued message in Mosquitto's memory that is about 36 MB. Whatever
still overflows is not lost: the aggregator reads the centre's event log over HTTP by sequence
number (:mod:`region.ingest`).

Region side (:func:`write_regional_broker`): one MQTT user per centre (its bridge's secret), an ACL
that lets centre X write only ``luot/X/#`` (and read only its own ``state/notice``), and the
aggregator reading ``luot/#`` (writing only notices).

Open files (issue 19): every connected bridge holds one socket in Mosquitto, and Debian's
``mosquitto.service`` keeps the default limit of 1,024 open files, so a regional broker stopped
accepting centres at about 1,000 (seen: 1,023 descriptors, lag p99 5.8 s at 1,100). Mosquitto has
no configuration key for it: the limit belongs to the process. :func:`write_regional_broker`
therefore also writes a systemd unit (``luot-region-broker.service``) and a drop-in for Debian's own
unit (``mosquitto.service.d/luot-nofile.conf``), both with ``LimitNOFILE`` from
:func:`nofile_needed`, and states the figure in the generated mosquitto.conf.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from luot.config import CentreConfig
from luot.credentials import Credentials, write_private
from luot.protocol import ROOT, Topics
from region.tls import check_ca, check_pair, handshake
from server.broker_setup import Rule, mosquitto_hash, render_acl

log = logging.getLogger("luot.bridge")

BRIDGE_SECRET_KEY = "@region-bridge"
"""Key of the bridge's secret in the centre's secrets file; '@' can never be a device id, so this
secret is no HTTP credential."""
BRIDGE_DIR, BRIDGE_CONF, CREDENTIALS_NAME = "bridge.d", "region.conf", "region-credentials.json"
REGION_MAX_QUEUED = 500_000
"""Regional broker queue per client: the aggregator's persistent session while it restarts. 126
centres at the morning peak publish about 40 messages a second in all (bench/bench_region.py), so
500,000 is over three hours of peak traffic (about 300 MB); beyond it the HTTP catch-up fills in."""


NOFILE_FLOOR = 8192
"""Never less: room for about 4,000 bridges, so even all 3,321 wards of the country on one test box
fit (a province of the 2025 map has at most a few hundred)."""


def nofile_minimum(centres: int) -> int:
    """Open files the regional broker cannot do with less: a socket per bridge and the aggregator,
    twice over (a reconnect storm holds old and new sockets at once), plus Mosquitto's own files.
    ``luot doctor --centres`` warns below it (region/doctor.py)."""
    return 2 * (centres + 1) + 64


def nofile_needed(centres: int) -> int:
    """The limit the generated units set: :func:`nofile_minimum` rounded up to a multiple of 1,024
    and at least :data:`NOFILE_FLOOR`."""
    return max(NOFILE_FLOOR, -(-nofile_minimum(centres) // 1024) * 1024)


@dataclass(frozen=True)
class RegionTarget:
    host: str
    port: int


def parse_target(text: str) -> RegionTarget:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"--region {text!r}: expected host:port, e.g. region.example.vn:8883")
    return RegionTarget(host, int(port))


def ensure_bridge_secret(credentials: Credentials) -> str:
    """The bridge's secret on the regional broker, created (and saved, mode 0600) on first use."""
    if BRIDGE_SECRET_KEY not in credentials.secrets:
        credentials.secrets[BRIDGE_SECRET_KEY] = secrets.token_urlsafe(18)
        path = credentials.path
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(credentials.secrets, handle, indent=2, sort_keys=True)
        os.replace(tmp, path)
    return credentials.secrets[BRIDGE_SECRET_KEY]


def bridge_username(config: CentreConfig) -> str:
    assert config.region is not None
    return config.region.username or config.centre.id


def render_bridge(config: CentreConfig, secret: str, target: RegionTarget | None = None) -> str:
    """The bridge section for the centre's mosquitto.conf (it holds a secret: write it 0600)."""
    region = config.region
    if region is None:
        raise ValueError("the centre file has no [region] table; add one (see docs/region.md) or pass --region")
    host, port = (target.host, target.port) if target else (region.host, region.port)
    centre = config.centre.id
    topics = Topics(centre)
    user = bridge_username(config)
    lines = [
        f"# Luot bridge: centre {centre} -> regional broker {host}:{port}. Generated by `luot bridge-config`",
        "# (region/bridge.py) from the centre file; regenerate rather than edit. Holds a secret: mode 0600.",
        "",
        "# A day or more offline: see region/bridge.py for the arithmetic (8 messages a ticket x 1,500 tickets",
        "# a busy day x 5 days). Beyond it the region reads the centre's event log over HTTP, so nothing is lost.",
        f"max_queued_messages {region.max_queued_messages}",
        "",
        f"connection luot-region-{centre}",
        f"address {host}:{port}",
        "bridge_protocol_version mqttv311",
        # one client id per centre; the regional broker also forces client id = username
        f"remote_clientid {user}",
        f"local_clientid luot-bridge-{centre}",
        f"remote_username {user}",
        f"remote_password {secret}",
        # persistent sessions at both ends: queued QoS 1 messages survive a reconnect and a restart
        "cleansession false",
        "local_cleansession false",
        "start_type automatic",
        f"restart_timeout {region.reconnect_min_seconds} {region.reconnect_max_seconds}",
        "keepalive_interval 30",
        "try_private true",
        # the region sees the link: 1 while up, 0 (retained, the bridge's last will) when it drops
        "notifications true",
        f"notification_topic {topics.bridge_availability}",
        "",
        f"topic {ROOT}/{centre}/events/# out 1",
        f"topic {topics.device_availability_all} out 1",
        f"topic {topics.server_availability} out 1",
        f"topic {topics.notice_state} in 1",
    ]
    if region.ca_file:
        # checked now: Mosquitto reads them only when the bridge connects, and says why not only in its log
        ca = check_ca("[region] ca_file", region.ca_file)
        # bridge_insecure false: the broker's certificate must also name the host above
        lines += ["", f"bridge_cafile {ca}", "bridge_insecure false"]
        if region.cert_file:
            assert region.key_file is not None  # the centre file's validation pairs them
            cert, key = check_pair("[region] cert_file", region.cert_file, "[region] key_file", region.key_file)
            lines += [f"bridge_certfile {cert}", f"bridge_keyfile {key}"]
    return "\n".join(lines) + "\n"


def write_centre_bridge(config: CentreConfig, credentials: Credentials, out_dir: str | Path,
                        target: RegionTarget | None = None) -> dict[str, Path]:
    """Write ``bridge.d/region.conf`` (to include in the centre's broker) and the credentials file
    the regional box needs (bridge secret, API secret of the region's manager device)."""
    assert config.region is not None
    out = Path(out_dir).resolve()
    (out / BRIDGE_DIR).mkdir(parents=True, exist_ok=True)
    secret = ensure_bridge_secret(credentials)
    conf = out / BRIDGE_DIR / BRIDGE_CONF
    write_private(conf, render_bridge(config, secret, target))
    api_device = config.region.api_device
    if api_device not in credentials.secrets:
        raise ValueError(f"no secret for device {api_device!r}; run luot.credentials.load_or_create first")
    creds = out / CREDENTIALS_NAME
    write_private(creds, json.dumps({
        "centre": config.centre.id, "mqtt_username": bridge_username(config), "mqtt_password": secret,
        "api_device": api_device, "api_secret": credentials.password(api_device),
    }, indent=2) + "\n")
    return {"bridge_conf": conf, "bridge_dir": conf.parent, "credentials": creds}


def include_bridge(conf: Path, config: CentreConfig, credentials: Credentials) -> Path | None:
    """Add the region bridge to a generated centre mosquitto.conf when the centre has ``[region]``.

    With TLS, the regional broker is tried first (a handshake with ``ca_file``, a few seconds at
    most): Mosquitto 2.0.11 can hang, at full CPU and deaf to the centre's own kiosks and displays,
    retrying a bridge whose TLS handshake fails (reproduced: docs/region.md), so a bridge
    that could only fail is left out until the next start, with the reason logged. An unreachable
    region proves nothing and keeps the bridge. The credentials file is written either way."""
    region = config.region
    if region is None:
        return None
    files = write_centre_bridge(config, credentials, conf.parent)
    if region.ca_file:
        # the files were checked when the bridge was written just above
        outcome, why = handshake(region.host, region.port, region.ca_file, region.cert_file, region.key_file)
        if outcome in ("untrusted", "failed"):
            log.error("region bridge left out until the next start: %s:%s with [region] ca_file %s: %s. "
                      "(Mosquitto 2.0.11 can hang retrying a bridge whose TLS handshake fails; docs/region.md.) "
                      "The region still reads this centre's events over HTTP.",
                      region.host, region.port, region.ca_file, why)
            return None
    with open(conf, "a", encoding="utf-8") as handle:
        handle.write(f"\n# --- region bridge (centre file [region]) ---\ninclude_dir {files['bridge_dir']}\n")
    return files["bridge_conf"]


# ------------------------------------------------------------------------------- region side
def regional_rules(centre_users: dict[str, str], aggregator: str) -> dict[str, list[Rule]]:
    """centre id -> its MQTT username; the result is the regional broker's whole ACL."""
    rules: dict[str, list[Rule]] = {aggregator: [Rule("read", f"{ROOT}/#"), Rule("write", f"{ROOT}/+/state/notice")]}
    for centre, user in centre_users.items():
        if user == aggregator or user in rules:
            raise ValueError(f"MQTT user {user!r} of centre {centre} is used twice")
        rules[user] = [Rule("write", f"{ROOT}/{centre}/#"), Rule("read", Topics(centre).notice_state)]
    return rules


REGION_CONF = """# Mosquitto 2.0 configuration of the regional broker. Generated by `luot bridge-config --centres`
# (region/bridge.py); regenerate rather than edit.
{user_line}
listener {port} {bind}
{tls}
allow_anonymous false
password_file {passwd}
acl_file {acl}
# client id = username: a centre cannot take over another centre's bridge session
use_username_as_clientid true
# {centres} centres: a socket each. The process needs an open-file limit of at least {nofile}
# (Debian's default is 1,024: about 1,000 centres, then refusals): start it with the generated
# luot-region-broker.service, or install mosquitto.service.d/luot-nofile.conf for Debian's unit.
max_connections -1

persistence true
persistence_location {persistence}
persistence_file mosquitto.db
autosave_interval 60
# a centre whose bridge stays away a week loses its session (the HTTP catch-up still fills the gap)
persistent_client_expiration 7d

# the aggregator's persistent session while it restarts: over 3 hours of 126 centres' peak traffic
max_queued_messages {max_queued}
max_queued_bytes 0
max_inflight_messages 100
max_packet_size 262144

log_dest file {log}
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
log_timestamp true
log_timestamp_format %Y-%m-%dT%H:%M:%S
"""


def write_regional_broker(centre_users: dict[str, str], centre_secrets: dict[str, str], aggregator_secret: str,
                          out_dir: str | Path, port: int, bind: str = "127.0.0.1", run_as_root: bool = False,
                          tls: dict[str, str] | None = None, max_queued: int = REGION_MAX_QUEUED) -> Path:
    """mosquitto.conf, passwd and acl of the regional broker in ``out_dir``; returns the conf path.

    ``centre_users``: centre id -> MQTT username; ``centre_secrets``: username -> secret.
    ``tls``: ``{"cafile", "certfile", "keyfile"}`` for a listener on a real network (then it speaks
    only TLS); the files are checked and written as absolute paths.
    """
    from region.settings import AGGREGATOR_USER

    if not 1 <= port <= 65535:
        raise ValueError(f"MQTT port {port} is not between 1 and 65535")
    rules = regional_rules(centre_users, AGGREGATOR_USER)
    passwords = {AGGREGATOR_USER: aggregator_secret, **centre_secrets}
    missing = [user for user in rules if user not in passwords]
    if missing:
        raise ValueError(f"no secret for MQTT user(s) {', '.join(missing)}")
    out = Path(out_dir).resolve()
    if any(ch.isspace() for ch in str(out)):
        raise ValueError(f"{out}: Mosquitto cannot read paths with spaces in its configuration")
    (out / "persistence").mkdir(parents=True, exist_ok=True)
    write_private(out / "passwd", "".join(f"{user}:{mosquitto_hash(passwords[user])}\n" for user in rules))
    write_private(out / "acl", render_acl(rules))
    tls_lines = ""
    if tls:
        if set(tls) != {"cafile", "certfile", "keyfile"}:
            raise ValueError(f"tls: expected cafile, certfile and keyfile, got {', '.join(sorted(tls))}")
        ca = check_ca("--tls-ca", tls["cafile"])
        cert, key = check_pair("--tls-cert", tls["certfile"], "--tls-key", tls["keyfile"])
        # require_certificate false: centres log in with their password; a client certificate is not asked for
        tls_lines = f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\nrequire_certificate false"
    conf = out / "mosquitto.conf"
    nofile = nofile_needed(len(centre_users))
    write_private(conf, REGION_CONF.format(
        user_line="user root" if run_as_root else "", port=port, bind=bind, tls=tls_lines,
        passwd=out / "passwd", acl=out / "acl", persistence=out / "persistence", log=out / "mosquitto.log",
        max_queued=max_queued, centres=len(centre_users), nofile=nofile))
    write_broker_units(conf, nofile)
    return conf


BROKER_UNIT = """[Unit]
Description=Luot regional MQTT broker (Mosquitto, {centres_note})
Documentation=file:///usr/share/doc/luot/region.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={mosquitto} -c {conf}
ExecReload=/bin/kill -HUP $MAINPID
Restart=always
RestartSec=2
# a socket per connected centre bridge (region/bridge.py nofile_needed); Debian's default is 1,024
LimitNOFILE={nofile}
StandardOutput=journal
StandardError=journal

[Install]
WantedBy=multi-user.target
"""

BROKER_DROP_IN = """# Generated by `luot bridge-config --centres` (region/bridge.py). For a regional broker run by
# Debian's mosquitto.service: copy to /etc/systemd/system/mosquitto.service.d/ and run
# `systemctl daemon-reload && systemctl restart mosquitto`. Debian's default limit, 1,024 open files,
# stops a regional broker at about 1,000 centres.
[Service]
LimitNOFILE={nofile}
"""


def write_broker_units(conf: Path, nofile: int, mosquitto: str = "/usr/sbin/mosquitto") -> dict[str, Path]:
    """The systemd unit and the drop-in for Debian's unit, beside the regional mosquitto.conf."""
    unit = conf.parent / "luot-region-broker.service"
    unit.write_text(BROKER_UNIT.format(mosquitto=mosquitto, conf=conf, nofile=nofile,
                                       centres_note=f"open-file limit {nofile}"), encoding="utf-8")
    drop_in_dir = conf.parent / "mosquitto.service.d"
    drop_in_dir.mkdir(exist_ok=True)
    drop_in = drop_in_dir / "luot-nofile.conf"
    drop_in.write_text(BROKER_DROP_IN.format(nofile=nofile), encoding="utf-8")
    return {"unit": unit, "drop_in": drop_in}


def write_regional_broker_for(region: "Region", out_dir: str | Path, port: int, bind: str = "127.0.0.1",  # noqa: F821
                              run_as_root: bool = False, tls: dict[str, str] | None = None) -> Path:
    """The regional broker for every centre listed in centres.toml."""
    from region.settings import AGGREGATOR_USER

    users = {c.id: c.mqtt_username for c in region.centres.values()}
    secrets_by_user = {c.mqtt_username: c.mqtt_password for c in region.centres.values()}
    return write_regional_broker(users, secrets_by_user, region.secrets[AGGREGATOR_USER], out_dir, port, bind,
                                 run_as_root, tls)
