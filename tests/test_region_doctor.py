"""Issue 19: `luot doctor --centres` warns when the regional broker may open fewer files than its
centres need (a real Mosquitto started with a low limit, read from /proc, and the unit files)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from region.bridge import nofile_minimum, write_regional_broker
from region.doctor import Limit, diagnose_region, judge_broker_nofile
from server.broker import find_mosquitto
from tests.helpers.region import ROOT, accepts, free_port, wait_until, write_centres_toml

CENTRES = 600
"""Over 1,024 descriptors' worth (2 per bridge): Debian's default limit is too low for them."""


def test_the_rule_counts_every_limit_found() -> None:
    need = nofile_minimum(CENTRES)
    assert need > 1024
    low = judge_broker_nofile(CENTRES, [Limit("unit a", 8192), Limit("process 7", 1024)])
    assert low.status == "warn" and "process 7: 1024" in low.message_en and str(need) in low.message_en
    assert judge_broker_nofile(CENTRES, [Limit("unit a", need), Limit("process 7", None)]).status == "ok"  # None: unlimited
    assert judge_broker_nofile(CENTRES, []).status == "warn"  # nothing to check is no all-clear
    assert judge_broker_nofile(100, [Limit("process 7", 1024)]).status == "ok"


def _broker(conf: Path, port: int, soft: int) -> subprocess.Popen[bytes]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    mosquitto = find_mosquitto()
    assert mosquitto
    proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=limit)
    wait_until(lambda: accepts(port), 10, "the regional broker")
    return proc


def test_doctor_warns_about_a_running_broker_below_its_centres(tmp_path: Path) -> None:
    ids = {f"c{i:04d}": f"secret-{i}" for i in range(CENTRES)}
    port = free_port()
    conf = write_regional_broker({c: c for c in ids}, ids, "agg", tmp_path / "broker", port, run_as_root=os.geteuid() == 0)
    toml = write_centres_toml(tmp_path / "centres.toml", [(c, "http://127.0.0.1:9", tmp_path / f"{c}.json") for c in ids])
    systemd = tmp_path / "systemd"  # no units installed on this "machine"
    proc = _broker(conf, port, 1024)  # as Debian's mosquitto.service starts it
    try:
        [check] = diagnose_region(toml, conf, systemd_dir=systemd)
        assert check.status == "warn", check
        assert check.facts["limits"][f"process {proc.pid} ({conf})"] == 1024
        assert check.facts["limits"][f"unit {conf.parent / 'luot-region-broker.service'}"] >= nofile_minimum(CENTRES)
        # the command line says it too, and finds the broker by its generated configuration
        done = subprocess.run([sys.executable, "-m", "luot.cli", "doctor", "--centres", str(toml), "--json"],
                              capture_output=True, text=True, timeout=60, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        report = json.loads(done.stdout)
        [cli_check] = report["checks"]
        assert cli_check["status"] == "warn" and f"process {proc.pid}" in cli_check["message_en"], cli_check
        # a drop-in installed for Debian's unit with too low a value is named as well
        (systemd / "mosquitto.service.d").mkdir(parents=True)
        (systemd / "mosquitto.service.d" / "old.conf").write_text("[Service]\nLimitNOFILE=1000:4096\n")
        [check] = diagnose_region(toml, conf, systemd_dir=systemd)
        assert f"unit {systemd / 'mosquitto.service.d' / 'old.conf'}: 1000" in check.message_en
        (systemd / "mosquitto.service.d" / "old.conf").unlink()
    finally:
        proc.terminate()
        proc.wait(10)
    proc = _broker(conf, port, nofile_minimum(CENTRES))  # started by the generated unit's limit
    try:
        [check] = diagnose_region(toml, conf, systemd_dir=systemd)
        assert check.status == "ok", check
        assert check.facts["limits"][f"process {proc.pid} ({conf})"] == nofile_minimum(CENTRES)
    finally:
        proc.terminate()
        proc.wait(10)
