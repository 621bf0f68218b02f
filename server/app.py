"""Wiring of one centre: storage, engine, broker, MQTT link and HTTP server in one process.

:class:`CentreRuntime` is what ``luot server`` and ``luot demo`` run, and what integration tests
start in-process on free ports. It adds nothing of its own: it only connects the adapters.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import uvicorn

from luot.config import CentreConfig
from luot.ports import free_port
from luot.credentials import SERVER_USER, Credentials, load_or_create
from luot.paths import database_file
from server.accounts import Accounts, one_time_password
from server.api import create_app
from server.backup import BackupScheduler, DatabaseLock, private_directory
from server.devices import DeviceRegistry
from server.engine import QueueError, utc_now
from server.http_limits import EdgeProtocol, raise_open_files_limit
from server.ratings import rate
from server.service import CentreService
from server.storage import Storage

log = logging.getLogger("luot.server")


@dataclass
class RuntimeOptions:
    data_dir: Path = Path("var")
    http_host: str | None = None
    http_port: int | None = None
    mqtt: bool = True
    broker: str = "auto"  # "auto": external when configured, else Mosquitto if installed, else amqtt
    mqtt_port: int | None = None
    clock: Callable[[], datetime] = utc_now
    db_path: Path | None = None
    init: bool = False  # create a new centre's database if there is none (luot server --init, the demo, tests)


@dataclass
class CentreRuntime:
    config: CentreConfig
    options: RuntimeOptions = field(default_factory=RuntimeOptions)
    credentials: Credentials | None = None
    storage: Storage | None = None
    accounts: Accounts | None = None
    service: CentreService | None = None
    broker: Any = None
    link: Any = None
    http: uvicorn.Server | None = None
    http_port: int = 0
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 0
    notes: list[str] = field(default_factory=list)
    backups: BackupScheduler | None = None
    _lock: DatabaseLock | None = None
    registry: DeviceRegistry | None = None
    access: Any = None
    _http_task: asyncio.Task[None] | None = None
    exporter: Any = None  # server/export.py WebhookPusher when [export] webhook_url is set

    async def start(self) -> "CentreRuntime":
        options, config = self.options, self.config
        private_directory(options.data_dir)  # database, backups and secrets: the service user only
        db_path = options.db_path or database_file(options.data_dir, config)
        self._lock = DatabaseLock(db_path).acquire()  # one server per database; `luot restore` checks it
        self.credentials = load_or_create(config, options.data_dir / "secrets.json")
        if config.region is not None:  # before the registry copies the secrets (region/bridge.py)
            from region.bridge import ensure_bridge_secret

            ensure_bridge_secret(self.credentials)
        self.registry = DeviceRegistry(config, self.credentials, options.data_dir)
        self.storage = await Storage.open(db_path, config.zone, create=options.init)
        self.accounts = Accounts(self.storage, config.staff)
        await self.accounts.prepare()  # the login guard's stored locks hold from the first request
        self.service = await CentreService.start(config, self.storage, options.clock)
        await self._ensure_first_manager()
        self.backups = BackupScheduler(config, options.data_dir)
        self.backups.start()
        if options.mqtt:
            await self._start_mqtt()
        from server.device_access import DeviceAccess

        self.access = DeviceAccess(self.registry, self.broker, self.link)
        await self.access.start()
        await self._start_http()
        if config.export.webhook_url:
            from server.export import start_webhook

            self.exporter = start_webhook(config, self.storage, options.data_dir)
        log.info("centre %s ready: listening on %s:%d, QR links %s", config.centre.id, self._http_host(),
                 self.http_port, config.centre.public_url)
        return self

    def _http_host(self) -> str:
        return self.options.http_host or self.config.http.host

    async def _ensure_first_manager(self) -> None:
        """A fresh centre gets one manager account; its password is written once for the operator."""
        assert self.accounts is not None
        if await self.accounts.count_users("manager"):
            return
        password = one_time_password()
        await self.accounts.add_user("quanly", "Quản lý trung tâm", "manager", password, must_change=True)
        note = self.options.data_dir / "first-login.txt"
        note.write_text(f"username: quanly\npassword: {password}\n", encoding="utf-8")
        note.chmod(0o600)
        self.notes.append(f"Tài khoản quản lý đầu tiên / first manager account: quanly (mật khẩu trong {note})")

    async def _start_mqtt(self) -> None:
        from server.broker import start_broker
        from server.mqtt_link import MqttLink

        assert self.credentials is not None and self.service is not None and self.registry is not None
        config = self.config
        if config.mqtt.host and self.options.broker == "auto":
            self.mqtt_host, self.mqtt_port = config.mqtt.host, config.mqtt.port
        else:
            port = self.options.mqtt_port if self.options.mqtt_port is not None else config.mqtt.port
            if port == 0:
                port = free_port()
            kind = None if self.options.broker == "auto" else self.options.broker
            # The devices that may use MQTT now: the centre file's minus revoked ones, plus enrolled ones.
            self.broker = await start_broker(self.registry.mqtt_config(), self.registry.mqtt_credentials(),
                                             self.options.data_dir / "broker", port, kind=kind, bind=config.mqtt.bind)
            self.mqtt_host, self.mqtt_port = self.broker.host, port  # the address it listens on ([mqtt] bind)
        self.link = MqttLink(config, self.mqtt_host, self.mqtt_port, SERVER_USER,
                             self.credentials.password(SERVER_USER), on_inbound=self._inbound,
                             engine=self.service.engine, clock=self.service.now)
        await self.link.start()
        self.service.listeners.append(lambda events, now: self.link.publish_committed(events, self.service.engine, now))

    async def _inbound(self, kind: str, device_id: str, data: Any) -> None:
        """A satisfaction tap or an assistance request from a device, already validated."""
        assert self.service is not None and self.registry is not None
        device = self.registry.active(device_id)
        if device is None:
            log.warning("message from unknown or revoked device %r ignored", device_id)
            return
        try:
            if kind == "feedback":
                if device.role != "pad":
                    log.warning("feedback from %s (role %s) ignored: only pads rate", device_id, device.role)
                    return
                await rate(self.service, data.ticket_id, data.rating, device=device.id, counter=device.counter,
                           scale=data.scale, reasons=data.reasons, source="pad", actor=device.id)
            elif kind == "assistance":
                await self.service.run(lambda e, now: (None, e.request_assistance(
                    device.id, data.request_id, data.reason, now, device.counter)), actor=device.id)
        except QueueError as error:
            log.warning("%s from %s refused: %s", kind, device_id, error.message_en)

    async def _start_http(self) -> None:
        assert self.service is not None and self.credentials is not None
        app = create_app(self.service, self.credentials, self.link, self.registry, accounts=self.accounts)
        app.state.backups = self.backups  # for /health: server.backup.storage_health
        app.state.access = self.access  # enrolment and revocation routes apply the registry at once
        # Where enrolling devices are sent: the centre file's broker, else ours (host None: the one they reach us at).
        app.state.mqtt_address = (self.config.mqtt.host, self.mqtt_port) if self.options.mqtt else None
        self.app = app
        await app.state.bookings.load_contacts()  # "your turn is near" for bookings made before a restart
        app.state.bookings.start()  # lapses remote numbers whose grace passed (server/booking_service.py)
        app.state.notifier.start()  # sends one-time codes and turn messages from the outbox
        port = self.options.http_port if self.options.http_port is not None else self.config.http.port
        # proxy_headers off: the login guard keys on the socket's peer address, which a caller
        # cannot forge the way it can write X-Forwarded-For (and the middleware costs every request).
        server_config = uvicorn.Config(app, host=self._http_host(), port=port, log_level="warning",
                                       lifespan="off", access_log=False, proxy_headers=False,
                                       http=EdgeProtocol)
        raise_open_files_limit()
        self.http = uvicorn.Server(server_config)
        # Signals: uvicorn (>= 0.29) swaps in its own SIGINT/SIGTERM handlers only while serve() runs
        # on the main thread; `luot server` and `luot demo` install theirs (loop.add_signal_handler)
        # after start() returns, so theirs decide, and stop() ends the server.
        self._http_task = asyncio.create_task(self.http.serve(), name="luot-http")
        while not self.http.started:
            if self._http_task.done():
                error = self._http_task.exception()
                raise RuntimeError(f"the web server could not start on port {port}: {error or 'port in use?'}")
            await asyncio.sleep(0.01)
        self.http_port = self.http.servers[0].sockets[0].getsockname()[1]

    @property
    def base_url(self) -> str:
        """Where programs on this box reach the web server (loopback when it listens on every
        interface: ``http://0.0.0.0:8080`` is not an address a client can open)."""
        host = self._http_host()
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "[::1]"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.http_port}"

    async def stop(self) -> None:
        supervisor = getattr(self.broker, "supervisor", None)
        if supervisor is not None:  # a broker ending from here on is part of the shutdown
            supervisor.stop_watching()
        live = getattr(getattr(getattr(self, "app", None), "state", None), "live", None)
        if live is not None:
            live.close()  # end the pages' event streams, or the HTTP server waits for them
        if self.http is not None:
            self.http.should_exit = True
            if self._http_task:
                await asyncio.wait([self._http_task], timeout=5)
        state = getattr(getattr(self, "app", None), "state", None)
        if state is not None:
            await state.bookings.stop()
            await state.notifier.stop()
        if self.exporter is not None:
            await self.exporter.stop()
        if self.access is not None:
            await self.access.stop()
        if self.link is not None:
            await self.link.stop()
        if self.broker is not None:
            await self.broker.stop()
        if self.backups is not None:
            await self.backups.stop()
        if self.storage is not None:
            await self.storage.close()
        if state is not None:
            state.codes.close()
            state.notifier.close()
        if self._lock is not None:
            self._lock.release()


