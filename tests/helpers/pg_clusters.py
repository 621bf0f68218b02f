"""Throw-away PostgreSQL clusters on this machine (Debian's ``pg_createcluster``), for tests that need
more than one server: logical replication between provinces and the national box.

Each cluster is named ``luottest-<pid>-<n>`` so that clusters left by a killed run are recognised
(their pid is gone) and dropped before new ones are made, while another live run's are left alone.
They listen on a free port (luot/ports.py) and on the usual socket directory; the superuser
``postgres`` connects through the socket without a password, everyone else over TCP with one.
Needs root (pg_createcluster runs initdb as ``postgres``).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import psycopg

from luot.ports import free_port

PREFIX = "luottest-"
SOCKETS = "/var/run/postgresql"
SETTINGS = {  # small and quick: a test cluster holds a few thousand rows
    "wal_level": "logical", "shared_buffers": "16MB", "fsync": "off", "synchronous_commit": "on",
    "full_page_writes": "off", "max_wal_senders": "10", "max_replication_slots": "10",
    "max_logical_replication_workers": "8", "max_worker_processes": "16",
    "wal_retrieve_retry_interval": "500ms",
}


@dataclass(frozen=True)
class Cluster:
    version: str
    name: str
    port: int

    def dsn(self, dbname: str = "postgres") -> str:
        """The superuser, through the socket."""
        return f"host={SOCKETS} port={self.port} user=postgres dbname={dbname}"

    def tcp(self, dbname: str, user: str, password: str) -> str:
        """What another cluster uses to reach this one (a subscription's CONNECTION)."""
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user} password={password}"


def version() -> str:
    versions = sorted(os.listdir("/etc/postgresql"), key=float) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        raise RuntimeError("PostgreSQL is not installed (scripts/setup.sh installs it)")
    return versions[-1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_stale() -> list[str]:
    """Drop the test clusters whose run is gone (a killed pytest). Returns their names."""
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True).stdout
    dropped = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[1].startswith(PREFIX):
            continue
        pid = parts[1][len(PREFIX):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            subprocess.run(["pg_dropcluster", "--stop", parts[0], parts[1]], capture_output=True, check=False)
            dropped.append(parts[1])
    return dropped


def _ready(cluster: Cluster, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(cluster.dsn(), connect_timeout=3).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def create(count: int) -> list[Cluster]:
    """``count`` new running clusters, made side by side (initdb is most of the time)."""
    ver = version()
    tag = f"{PREFIX}{os.getpid()}-{time.monotonic_ns() % 100000}"
    clusters = [Cluster(ver, f"{tag}-{i}", free_port()) for i in range(count)]
    options = [arg for key, value in SETTINGS.items() for arg in ("-o", f"{key}={value}")]
    runs = [(c, subprocess.Popen(
        ["pg_createcluster", ver, c.name, "-p", str(c.port), *options, "--start",
         "--", "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)) for c in clusters]
    failed = []
    for cluster, proc in runs:
        output = proc.communicate(timeout=120)[0]
        if proc.returncode != 0:
            failed.append(f"{cluster.name}: {output.decode(errors='replace')[-500:]}")
    if failed:
        drop(clusters)
        raise RuntimeError("pg_createcluster failed: " + "; ".join(failed))
    for cluster in clusters:
        _ready(cluster)
    return clusters


def drop(clusters: list[Cluster]) -> None:
    """Stopped at once (nothing in a test cluster needs a clean shutdown), the last made first, and
    removed with their configuration, data and log."""
    for cluster in reversed(clusters):
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster.version, cluster.name, "stop", "-m", "immediate"],
                       capture_output=True, check=False)
        subprocess.run(["pg_dropcluster", "--stop", cluster.version, cluster.name], capture_output=True, check=False)


def clusters(count: int) -> Iterator[list[Cluster]]:
    """For a fixture: stale ones dropped, ``count`` made, all dropped afterwards."""
    drop_stale()
    made = create(count)
    try:
        yield made
    finally:
        drop(made)


def log_tail(cluster: Cluster, chars: int = 2000) -> str:
    """The end of a cluster's server log (what the apply worker said), for a failing assertion."""
    path = Path(f"/var/log/postgresql/postgresql-{cluster.version}-{cluster.name}.log")
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""
