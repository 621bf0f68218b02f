"""A centre's LAN on one machine: one network namespace per box, a bridge in a "switch" namespace.

Why namespaces: the proof that a centre works across machines needs separate network stacks (the
server's broker really listens on its LAN address, a kiosk's cable can be pulled, a phone reaches
the server only through the switch), and namespaces give exactly that on one CI machine, as root,
without touching the host's own interfaces. Every name carries the test process's pid, so two runs
never meet; the addresses (10.77.0.0/24) exist only inside these namespaces and there is no default
route, so nothing can leave them.

Pieces:
* :class:`Lan` creates the switch and the boxes and removes everything in ``close()`` (processes in
  its namespaces first, then the namespaces), also when the test failed;
* :class:`Box` runs a program "on that machine" (``ip netns exec``) or a Python function in a
  thread that has entered the box's network namespace (``setns``), and pulls its cable;
* :class:`LineDriver` talks JSON lines to a driver process in a box (the display, the kiosk, the
  browsers: tests/helpers/display_driver.py, lan_kiosk.py, lan_browser.py);
* :class:`CentreServer` is ``luot server`` on the server box (start, kill -9, start again);
* :func:`enrol_device` and :func:`revoke_device` do what the technician does: a one-time code from
  `luot device add`, claimed by the device over the LAN; `luot device revoke`.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

from tests.helpers.line_driver import JsonLinePeer

ROOT = Path(__file__).resolve().parents[2]
SUBNET = "10.77.0"  # private, and only ever inside the namespaces below
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def lan_unavailable() -> str | None:
    """Why this machine cannot build the LAN (None when it can): root and ``ip`` are needed."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces (CI runs as root)"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip` command (apt-get install iproute2)"
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a program on a box: no proxy (there is nothing beyond the LAN), unbuffered."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.pop("DISPLAY", None)
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT), **extra)
    return env


class Box:
    """One machine of the centre: a namespace with one cable (``lan0``) to the switch."""

    def __init__(self, lan: "Lan", name: str, host: int) -> None:
        self.lan, self.name, self.ip = lan, name, f"{SUBNET}.{host}"
        self.ns = f"{lan.prefix}-{name}"
        self._executor: ThreadPoolExecutor | None = None

    def argv(self, command: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *command]

    def popen(self, command: list[str], log: Path, env: dict[str, str] | None = None,
              stdin: Any = subprocess.DEVNULL, stdout: Any = None) -> subprocess.Popen[bytes]:
        """Start ``command`` on this box (``ip netns exec`` execs it: the pid is the program's own)."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as sink:
            proc = subprocess.Popen(self.argv(command), stdin=stdin, stdout=stdout or sink, stderr=sink,
                                    env=env or clean_env(), cwd=ROOT)
        self.lan.processes.append(proc)
        return proc

    def run(self, command: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(command), capture_output=True, text=True, timeout=timeout,
                              env=clean_env(), cwd=ROOT)

    def call(self, function: Callable[..., T], *args: Any, timeout: float = 60.0) -> T:
        """Run ``function(*args)`` in this box's network (a thread that entered its namespace):
        sockets it opens are this box's, so an HTTP request really crosses the switch."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"netns-{self.name}",
                                                initializer=_enter_netns, initargs=(self.ns,))
        return self._executor.submit(function, *args).result(timeout)

    def connections(self, ip: str, port: int) -> int:
        """How many TCP connections this box has established to ``ip:port`` (as ``ss`` sees them)."""
        done = self.run(["ss", "-Htn", "state", "established", "dst", f"{ip}:{port}"], timeout=10)
        return len([line for line in done.stdout.splitlines() if line.strip()])

    def cable(self, connected: bool) -> None:
        """Plug or pull this box's network cable (its end of the veth pair goes down or up)."""
        _ip("-n", self.ns, "link", "set", "lan0", "up" if connected else "down")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


def _enter_netns(ns: str) -> None:
    """Thread initializer: move this thread (only) into the namespace ``ns``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns} failed")
    finally:
        os.close(fd)


class Lan:
    """A switch (a bridge in its own namespace) and the boxes cabled to it."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or f"luot{os.getpid()}"
        self.switch = f"{self.prefix}-sw"
        self.boxes: list[Box] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self.namespaces: list[str] = []

    def __enter__(self) -> "Lan":
        remove_stale_lans()
        try:
            self._add_ns(self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    def _add_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def add_box(self, name: str, host: int) -> Box:
        box = Box(self, name, host)
        port = f"p-{name}"[:15]
        self._add_ns(box.ns)
        _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "lan0", "netns", box.ns)
        _ip("-n", self.switch, "link", "set", port, "master", "br0")
        _ip("-n", self.switch, "link", "set", port, "up")
        _ip("-n", box.ns, "addr", "add", f"{box.ip}/24", "dev", "lan0")
        _ip("-n", box.ns, "link", "set", "lan0", "up")
        self.boxes.append(box)
        return box

    def close(self) -> None:
        """Stop what runs on the boxes (politely, then kill -9), then delete every namespace."""
        for box in self.boxes:
            box.close()
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 5
        for proc in self.processes:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for ns in reversed(self.namespaces):
            # anything still in a namespace was started by this test (a browser, a broker)
            for pid in self.pids(ns):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces.clear()

    @staticmethod
    def pids(ns: str) -> list[int]:
        done = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        return [int(p) for p in done.stdout.split()]


def remove_stale_lans() -> list[str]:
    """Delete the namespaces (and end what runs in them) of earlier runs of this harness whose test
    process is gone (killed before its ``finally``): names ``luot<pid>-<box>`` with a dead pid."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")
    stale = []
    for line in listed:
        match = re.match(r"^(luot(\d+)-[a-z]+)\b", line.strip())
        if match and not Path(f"/proc/{match.group(2)}").exists():
            stale.append(match.group(1))
    for ns in stale:
        for pid in Lan.pids(ns):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    return stale


class Timings:
    """Wall-clock time of each step of a drill, printed as a table (``pytest -s`` shows it)."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.rows: list[tuple[str, float, float]] = []

    def step(self, name: str) -> None:
        now = time.monotonic()
        self.rows.append((name, now - self.last, now - self.start))
        self.last = now
        print(f"  [{now - self.start:7.1f} s] {name} ({self.rows[-1][1]:.2f} s)", flush=True)

    def table(self) -> str:
        width = max((len(n) for n, *_ in self.rows), default=10)
        lines = [f"{'step':<{width}}  {'took s':>7}  {'at s':>7}"]
        lines += [f"{n:<{width}}  {d:7.2f}  {t:7.2f}" for n, d, t in self.rows]
        return "\n".join(lines)


def wait_for(predicate: Callable[[], T], timeout: float, what: str, every: float = 0.2) -> T:
    """Poll ``predicate`` until it returns something true; its last error or value explains a timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except Exception as error:  # noqa: BLE001 - a box may be unreachable for a while
            last = error
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen in {timeout} s (last: {last!r})")
        time.sleep(every)


class Watch:
    """Poll ``predicate`` on a thread from now on; ``seen`` is the monotonic time it first held.

    For a moment that must be timed while the test is busy elsewhere (the revoked display dropping
    off the broker while the server restarts)."""

    def __init__(self, predicate: Callable[[], bool], every: float = 0.1, limit: float = 120.0) -> None:
        self.started = time.monotonic()
        self.seen: float | None = None
        self._stop = threading.Event()

        def run() -> None:
            while not self._stop.is_set() and time.monotonic() - self.started < limit:
                try:
                    if predicate():
                        self.seen = time.monotonic()
                        return
                except Exception:  # noqa: BLE001 - keep polling
                    pass
                self._stop.wait(every)

        self._thread = threading.Thread(target=run, daemon=True, name="watch")
        self._thread.start()

    def after(self, timeout: float) -> float:
        """Seconds from the start to the moment, waiting up to ``timeout`` for it."""
        self._thread.join(timeout)
        self._stop.set()
        if self.seen is None:
            raise AssertionError(f"not seen within {timeout} s")
        return self.seen - self.started


class LineDriver(JsonLinePeer):
    """A driver program on a box: one JSON command on stdin, one JSON answer on stdout."""

    def __init__(self, box: Box, module: str, options: dict[str, Any], log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.box = box
        super().__init__(box.popen([sys.executable, "-m", module, json.dumps(options)], log, env=env,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE), box.name, log)

    def wait_until(self, cmd: str, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str,
                   answer_timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        """Repeat ``cmd`` until its answer satisfies ``predicate`` within ``timeout`` seconds."""
        seen: dict[str, Any] = {}
        per_answer = answer_timeout

        def check() -> bool:
            seen.update(self.command(cmd, timeout=per_answer, **fields))
            return predicate(seen)

        try:
            wait_for(check, timeout, what)
        except AssertionError as error:
            raise AssertionError(f"{self.box.name}: {error}; it shows {json.dumps(seen, ensure_ascii=False)[:1500]}") from None
        return dict(seen)

    def close(self) -> None:
        self.quit()


def http(box: Box, method: str, url: str, **kwargs: Any) -> Any:
    """One HTTP request made from ``box`` (through the switch); returns the httpx response."""
    import httpx

    def request() -> httpx.Response:
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            return client.request(method, url, **kwargs)

    return box.call(request)


# ----------------------------------------------------------------------------------- the server
class CentreServer:
    """``luot server`` on the server box, with its own data directory (kept across restarts)."""

    def __init__(self, box: Box, config: Path, data: Path, http_port: int, mqtt_port: int) -> None:
        self.box, self.config, self.data = box, config, data
        self.http_port, self.mqtt_port = http_port, mqtt_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.parent / "server.log"

    @property
    def url(self) -> str:
        return f"http://{self.box.ip}:{self.http_port}"

    def start(self, timeout: float = 60.0, new: bool = False) -> "CentreServer":
        """Start ``luot server``; ``new`` for a centre's very first start (it creates the database)."""
        command = [sys.executable, "-m", "luot.cli", "server", "--config", str(self.config), "--data", str(self.data)]
        self.proc = self.box.popen(command + (new_centre_flags() if new else []), self.log)

        def healthy() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"luot server exited with {self.proc.returncode}: {self.tail()}")
            answer = http(self.box, "GET", self.url + "/health")
            return answer.status_code == 200 and answer.json()["mqtt"]

        try:
            wait_for(healthy, timeout, f"luot server healthy on {self.url} with its MQTT link up")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.tail()}") from None
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def luot(self, *args: str) -> dict[str, Any]:
        """A ``luot`` command on the server box (for the technician's commands); its JSON answer."""
        done = self.box.run([sys.executable, "-m", "luot.cli", *args])
        if done.returncode != 0:
            raise RuntimeError(f"luot {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
        return json.loads(done.stdout)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""


def new_centre_flags() -> list[str]:
    """What a centre's first start needs: ``--init`` once luot server refuses to start on a missing
    database without it (the backups branch); nothing before."""
    done = subprocess.run([sys.executable, "-m", "luot.cli", "server", "--help"], capture_output=True, text=True,
                          cwd=ROOT, env=clean_env())
    return ["--init"] if "--init" in done.stdout else []


def centre_file(sample: Path, out: Path, server_ip: str, http_port: int, mqtt_port: int) -> Path:
    """The sample centre adapted to this LAN: the public URL on the server's LAN address (a QR code
    must name an address a phone can reach), its broker bound to that address only, the web server
    on every interface (the default)."""
    text = sample.read_text("utf-8")
    text = re.sub(r'(?m)^public_url = .*$', f'public_url = "http://{server_ip}:{http_port}"', text)
    text = re.sub(r'(?ms)^\[mqtt\].*?(?=^\[)', f'[mqtt]\nport = {mqtt_port}\nbind = "{server_ip}"\n\n', text)
    text = re.sub(r'(?ms)^\[http\].*?(?=^\[)', f'[http]\nport = {http_port}\n\n', text)  # host: every interface
    out.write_text(text, "utf-8")
    return out


# ----------------------------------------------------------------------------------- enrolment
@dataclass(frozen=True)
class Identity:
    """What a device box knows after enrolment: who it is, its secrets, where its centre is."""

    device_id: str
    http_secret: str  # Authorization: Bearer <device_id>:<http_secret>
    mqtt_secret: str
    mqtt_host: str
    mqtt_port: int
    data: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.device_id}:{self.http_secret}"}


def enrol_device(server: CentreServer, box: Box, role: str, device_data: Path) -> Identity:
    """Give a new kiosk or display on ``box`` its identity, the way a technician does.

    `luot device add ID --role ROLE` on the server box prints a one-time code; the device claims it
    over the LAN (``luot.credentials.enrol``, what `luot kiosk|display --enrol URL CODE` does
    first) and keeps its credentials in its data directory. The centre file is copied to the device
    too (its layout: groups, counters).
    """
    from luot.credentials import enrol

    device_data.mkdir(parents=True, exist_ok=True)
    shutil.copy(server.config, device_data / "centre.toml")
    device_id = f"{role}-lan"
    added = server.luot("device", "add", device_id, "--role", role, "--url", server.url,
                        "--config", str(server.config), "--data", str(server.data))
    identity = box.call(enrol, added["url"], added["code"], device_data)
    return Identity(identity.device_id, identity.http_token, identity.mqtt_password, identity.mqtt_host,
                    identity.mqtt_port, device_data)


def revoke_device(server: CentreServer, device_id: str) -> None:
    """Take a device's rights away (a stolen or replaced screen): `luot device revoke ID`, which
    the running server applies (broker reload, HTTP refusal) without a restart."""
    server.luot("device", "revoke", device_id, "--config", str(server.config), "--data", str(server.data))


def brokers_of(server: CentreServer) -> list[int]:
    """Pids of the Mosquitto processes running with this server's broker files."""
    found = []
    for pid in Lan.pids(server.box.ns):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if command and command[0].endswith(b"mosquitto") and str(server.data).encode() in b" ".join(command) \
                and not _gone(pid):
            found.append(pid)
    return found


def _gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for its new parent to reap it counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
