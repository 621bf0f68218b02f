"""The province link over TLS, as a real province runs it across a WAN: a throw-away CA signs the
regional broker's certificate (for 127.0.0.1), the regional Mosquitto runs the generated
configuration with its TLS listener, centres run the generated bridge with ``[region] ca_file``, and
the aggregator connects with ``--tls-ca``. All real processes, as in tests/test_region.py."""

from __future__ import annotations

import asyncio
import json
import os
import random
import ssl
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from luot.cli import main as luot_main
from luot.config import DEFAULT_CONFIG, CentreConfig
from luot.credentials import load_or_create
from region.bridge import write_centre_bridge
from server.app import CentreRuntime, RuntimeOptions
from server.broker import find_mosquitto
from tests.helpers.centre import running_centre
from tests.helpers.region import (Aggregator, RegionalBroker, bridges_up, centre_config, free_port, log_ids, pg_ids,
                                  traffic, until, write_centres_toml)
from tests.helpers.tls import issue_server_cert, make_ca


def mqtt_connect(port: int, user: str, password: str, ca: Path | None, timeout: float = 3.0) -> str:
    """Connect a fresh MQTT client (TLS when ``ca`` is given) and say what happened: "accepted",
    "refused: <reason>" (CONNACK with an error) or "no answer" (no CONNACK at all)."""
    outcome: list[str] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv311)
    client.username_pw_set(user, password)
    if ca is not None:
        client.tls_set(ca_certs=str(ca))

    def on_connect(c: mqtt.Client, userdata: object, flags: object, reason: object, properties: object) -> None:
        outcome.append("accepted" if not reason.is_failure else f"refused: {reason}")  # type: ignore[attr-defined]
        done.set()

    def on_disconnect(c: mqtt.Client, userdata: object, flags: object, reason: object, properties: object) -> None:
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect("127.0.0.1", port, keepalive=5)
    except (OSError, ssl.SSLError) as error:
        return f"no answer ({type(error).__name__})"
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome[0] if outcome else "no answer"


def provisioned(directory: Path, config: CentreConfig) -> Path:
    """What the province gets from a centre before its server first starts: ``luot bridge-config``'s
    region-credentials.json (the centre's secrets file made then is the one its server uses)."""
    credentials = load_or_create(config, directory / "var" / "secrets.json")
    return write_centre_bridge(config, credentials, directory / "bridge-config")["credentials"]


def external_broker(directory: Path, bridge_dir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """A bare Mosquitto including a bridge directory written by ``luot bridge-config``, as a centre
    with its own broker would; returns the process and its log file."""
    mosquitto = find_mosquitto()
    assert mosquitto, "mosquitto is not installed"
    log = directory / "mosquitto.log"
    conf = directory / "mosquitto.conf"
    conf.write_text(f"{'user root' if os.geteuid() == 0 else ''}\nlistener {free_port()} 127.0.0.1\n"
                    f"allow_anonymous true\nlog_dest file {log}\ninclude_dir {bridge_dir}\n")
    return subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), log


def text(path: Path) -> str:
    return path.read_text("utf-8", errors="replace") if path.exists() else ""


async def test_events_reach_the_region_over_tls_and_only_where_the_ca_says(tmp_path: Path, pg: str,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(11)
    pki = tmp_path / "pki"
    province = make_ca(pki, "province")
    region_cert = issue_server_cert(province, pki, "region")
    impostor = make_ca(pki, "impostor")  # a CA the regional broker's certificate does not come from
    region_port = free_port()
    # hn-a trusts the province CA; hn-b was handed another CA, so to hn-b this broker is an impostor
    a_cfg = centre_config("hn-a", region_port, ca_file=str(province.crt))
    b_cfg = centre_config("hn-b", region_port, ca_file=str(impostor.crt))
    toml = write_centres_toml(tmp_path / "centres.toml", [("hn-a", "http://127.0.0.1:9", provisioned(tmp_path / "a", a_cfg)),
                                                          ("hn-b", "http://127.0.0.1:9", provisioned(tmp_path / "b", b_cfg))])
    broker = RegionalBroker(toml, tmp_path / "region-broker", region_port,
                            tls={"cafile": str(province.crt), "certfile": str(region_cert.crt),
                                 "keyfile": str(region_cert.key)}).start()
    # catch-up off (0): whatever reaches PostgreSQL came over MQTT, i.e. through the TLS listener
    agg = Aggregator(pg, toml, region_port, tmp_path / "agg.log", catch_up=0, tls_ca=province.crt)
    external: subprocess.Popen[bytes] | None = None
    try:
        await asyncio.to_thread(agg.start)
        async with running_centre(tmp_path / "a", a_cfg, mqtt=True, broker="mosquitto") as a, \
                running_centre(tmp_path / "b", b_cfg, mqtt=True, broker="mosquitto") as b:
            await until(lambda: bridges_up(pg, "hn-a"), 15, "hn-a's bridge to announce itself over TLS")
            await traffic(a, 6, 3, rng)
            await traffic(b, 6, 3, rng)
            want = await log_ids(a, published_only=True)
            assert len(want) >= 12
            await until(lambda: want <= set(pg_ids(pg, "hn-a")), 15, "hn-a's events in PostgreSQL")
            with psycopg.connect(pg) as conn:
                vias = {r[0] for r in conn.execute("SELECT DISTINCT via FROM events WHERE centre = 'hn-a'")}
            assert vias == {"mqtt"}
            assert "cannot connect" not in agg.log.read_text()

            # hn-b tried the region at start, with its CA: not trusted, so no bridge (Mosquitto 2.0.11 can
            # hang retrying one), the reason logged; it keeps serving its own kiosks; nothing reaches the region
            assert (f"region bridge left out until the next start: 127.0.0.1:{region_port} with [region] ca_file "
                    f"{impostor.crt}: the broker's certificate is not trusted") in caplog.text
            kiosk = next(d.id for d in b.config.devices if d.role == "kiosk")
            assert b.mqtt_port is not None and b.credentials is not None
            assert mqtt_connect(b.mqtt_port, kiosk, b.credentials.password(kiosk), None) == "accepted"
            assert pg_ids(pg, "hn-b") == [] and not bridges_up(pg, "hn-b")

        # the bridge file itself, in a broker of the centre's own (luot bridge-config's output), refuses
        # the impostor: Mosquitto says why, the region saw a failed handshake, not a login
        external, external_log = external_broker(tmp_path / "b" / "bridge-config", tmp_path / "b" / "bridge-config" / "bridge.d")
        await until(lambda: "certificate verify failed" in text(external_log), 10, "the bridge to refuse the certificate")
        assert "unknown ca" in broker.log_text() and not bridges_up(pg, "hn-b")

        # the listener speaks nothing but TLS: hn-b's own (good) credentials get no answer over plain
        # TCP, and are accepted over TLS with the province CA
        secret = json.loads((tmp_path / "b" / "bridge-config" / "region-credentials.json").read_text())["mqtt_password"]
        assert mqtt_connect(region_port, "hn-b", secret, None).startswith("no answer")
        assert mqtt_connect(region_port, "hn-b", secret, province.crt) == "accepted"

        # an aggregator started with the wrong CA, or none, says so in its log (paho alone retries silently)
        for ca, told in [(impostor.crt, "TLS: the broker's certificate is not trusted"), (None, "the broker speaks TLS: give --tls-ca")]:
            wrong = Aggregator(pg, toml, region_port, tmp_path / f"agg-{ca.stem if ca else 'plain'}.log", catch_up=0, tls_ca=ca)
            await asyncio.to_thread(wrong.start)
            try:
                line = await until(lambda w=wrong: next((x for x in w.log.read_text().splitlines() if "cannot connect" in x), None),
                                   10, f"the aggregator with CA {ca} to complain")
            finally:
                wrong.stop()
            assert f"cannot connect to the regional broker 127.0.0.1:{region_port} (retrying): {told}" in line, line
    finally:
        if external is not None:
            external.kill()  # not SIGTERM: after a failed TLS bridge handshake Mosquitto 2.0.11 may spin, deaf to it
            external.wait()
        agg.stop()
        broker.stop()


# ------------------------------------------------------------------ bad TLS files: refused at start, by name
def sample_centre_toml(path: Path, region: str) -> Path:
    """The shipped sample centre with a [region] table (and the region's manager device)."""
    text = DEFAULT_CONFIG.read_text("utf-8")
    path.write_text(f'{text}\n[[devices]]\nid = "region"\nrole = "manager"\n\n[region]\n{region}\n', encoding="utf-8")
    return path


def luot(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = luot_main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    province = make_ca(d, "province")
    region = issue_server_cert(province, d, "region")
    other = issue_server_cert(province, d, "other")
    locked = d / "locked.key"
    subprocess.run(["openssl", "pkey", "-in", str(region.key), "-aes256", "-passout", "pass:secret", "-out", str(locked)],
                   check=True, capture_output=True)
    return {"ca": province.crt, "crt": region.crt, "key": region.key, "other_key": other.key, "locked_key": locked}


async def test_a_centre_whose_ca_file_is_missing_does_not_start_and_says_which_file(tmp_path: Path) -> None:
    # before: the centre ran, its bridge never connected, and only Mosquitto's own log said why.
    # `luot server` logs "the centre could not start: <this message>" and exits 1 (luot/commands/server.py)
    config = centre_config("hn-a", free_port(), ca_file=str(tmp_path / "region-ca.crt"))
    runtime = CentreRuntime(config, RuntimeOptions(data_dir=tmp_path / "var", http_port=0, mqtt=True,
                                                   broker="mosquitto", mqtt_port=0, init=True))
    try:
        with pytest.raises(ValueError) as refused:
            await runtime.start()
    finally:
        await runtime.stop()
    assert str(refused.value) == f"[region] ca_file {tmp_path / 'region-ca.crt'}: no such file"


def test_bridge_config_checks_the_files_and_writes_absolute_paths(tmp_path: Path, pki: dict[str, Path],
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(pki["ca"].parent)
    out = tmp_path / "bridge"
    common = ["bridge-config", "--secrets", str(tmp_path / "secrets.json"), "--out", str(out), "--config"]
    good = sample_centre_toml(tmp_path / "good.toml", f'host = "vung.example.vn"\nca_file = "{pki["ca"].name}"\n'
                                                      f'cert_file = "{pki["crt"].name}"\nkey_file = "{pki["key"].name}"')
    code, said = luot([*common, str(good)], capsys)
    assert code == 0, said
    conf = (out / "bridge.d" / "region.conf").read_text()
    # relative names are resolved where luot ran; Mosquitto would read them from its own directory
    assert f"bridge_cafile {pki['ca']}\n" in conf and f"bridge_keyfile {pki['key']}\n" in conf

    cases = [
        (f'ca_file = "{pki["key"]}"', f"[region] ca_file {pki['key']}: holds no PEM certificate"),
        (f'ca_file = "{pki["ca"]}"\ncert_file = "{pki["crt"]}"\nkey_file = "{pki["other_key"]}"',
         f"[region] key_file {pki['other_key']} is not the private key of [region] cert_file {pki['crt']}"),
        (f'ca_file = "{pki["ca"]}"\ncert_file = "{pki["crt"]}"\nkey_file = "{pki["locked_key"]}"',
         "the key is protected by a passphrase, which Mosquitto cannot ask for"),
    ]
    for region, told in cases:
        code, said = luot([*common, str(sample_centre_toml(tmp_path / "bad.toml", f'host = "vung.example.vn"\n{region}'))], capsys)
        assert code == 1 and told in said, said


def test_regional_broker_and_aggregator_check_their_tls_files(tmp_path: Path, pki: dict[str, Path],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    creds = tmp_path / "hn-a.json"
    creds.write_text(json.dumps({"centre": "hn-a", "mqtt_username": "hn-a", "mqtt_password": "x",
                                 "api_device": "region", "api_secret": "y"}))
    toml = write_centres_toml(tmp_path / "centres.toml", [("hn-a", "http://127.0.0.1:9", creds)])
    broker = ["bridge-config", "--centres", str(toml), "--out", str(tmp_path / "rb"), "--tls-ca", str(pki["ca"]),
              "--tls-cert", str(pki["crt"])]
    code, said = luot([*broker, "--tls-key", str(pki["other_key"])], capsys)
    assert code == 1 and f"--tls-key {pki['other_key']} is not the private key of --tls-cert {pki['crt']}" in said
    assert not (tmp_path / "rb" / "mosquitto.conf").exists()
    code, said = luot([*broker, "--tls-key", str(pki["key"])], capsys)
    assert code == 0, said
    assert f"cafile {pki['ca']}\ncertfile {pki['crt']}\nkeyfile {pki['key']}\n" in (tmp_path / "rb" / "mosquitto.conf").read_text()

    missing = tmp_path / "ca.crt"
    code, said = luot(["region", "--pg", "dbname=never-reached", "--mqtt", "127.0.0.1:8883", "--centres", str(toml),
                       "--tls-ca", str(missing)], capsys)
    assert code == 1 and f"luot region: --tls-ca {missing}: no such file" in said
