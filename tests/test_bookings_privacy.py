"""A booked phone never leaves the server (issue 15, item 5), end to end on a running centre with its
Mosquitto broker: a citizen takes a remote number with a one-time code (through the notifier into
Gammu's spool), an officer books an appointment for another phone, the kiosk checks the remote
number in and a counter calls it. Then nothing of either phone (the number, its keyed hash, its
sealed form), of the network address's keyed hash, or of the booking's check-in code and token is
in any MQTT topic or message, in the server's log records, in the manager's event log, or in the
province exports; and the QR is exactly the tracking link."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx

from server.devices import qr_svg
from tests.helpers.centre import ManualClock, device_auth, running_centre, staff_auth
from tests.helpers.mqtt import BrokerHandle
from tests.test_bookings_http import MONDAY_0830, PHONE, centre_config, code_sent_to

OTHER_PHONE = "0987 654 321"


async def test_a_booked_phone_is_in_no_topic_log_event_export_or_qr(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    clock = ManualClock(MONDAY_0830)
    async with running_centre(tmp_path, centre_config(tmp_path), mqtt=True, clock=clock) as centre, \
            httpx.AsyncClient(base_url=centre.base_url) as http:
        broker = BrokerHandle(centre.broker.kind, centre.mqtt_host, centre.mqtt_port, centre.config,
                              centre.credentials, centre.options.data_dir, centre.broker)
        try:
            watcher = broker.probe("manager-1")
            watcher.subscribe(f"luot/{centre.config.centre.id}/#")
            officer = await staff_auth(centre)
            manager = await staff_auth(centre, "quanly3", "manager")
            kiosk = device_auth(centre, "kiosk-1")

            assert (await http.post("/api/v1/bookings/code", json={"phone": PHONE})).status_code == 202
            code = await code_sent_to(tmp_path / "gammu" / "spool" / "outbox", {})
            made = await http.post("/api/v1/bookings", json={"phone": PHONE, "code": code, "group": "ho-tich", "kind": "remote"})
            assert made.status_code == 201, made.text
            remote = made.json()
            slot = (await http.get("/api/v1/bookings/slots", params={"group": "chung-thuc"})).json()["slots"][0]["slot"]
            staff_made = await http.post("/api/v1/bookings/staff", headers=officer, json={
                "phone": OTHER_PHONE, "group": "chung-thuc", "kind": "appointment", "slot": slot})
            assert staff_made.status_code == 201, staff_made.text
            appointment = staff_made.json()
            checked = await http.post("/api/v1/bookings/check-in", json={"code": remote["code"]}, headers=kiosk)
            assert checked.status_code == 200, checked.text
            for step in ("open", "call-next"):
                assert (await http.post(f"/api/v1/counters/1/{step}", headers=officer)).status_code == 200
            await watcher.wait_for(lambda m: b'"ticket.called"' in m.payload)

            vault = centre.app.state.vault
            rows = await (await centre.storage.db.execute("SELECT sealed_phone FROM booking_contacts")).fetchall()
            sealed = [r[0] for r in rows]
            assert len(sealed) == 2 and {vault.open(s) for s in sealed} == {"+84912345678", "+84987654321"}
            secrets = {
                "phone digits": ["912345678", "987654321"],
                "phone keys": [vault.key(PHONE), vault.key(OTHER_PHONE)],
                "sealed phones": sealed,
                "address key": [vault.keyed("address", "127.0.0.1")],
                "check-in codes": [remote["code"], appointment["code"]],
                "tokens": [remote["token"], appointment["token"]],
            }
            events = (await http.get("/api/v1/events", params={"limit": 5000}, headers=manager)).json()["events"]
            assert {e["type"] for e in events} >= {"booking.made", "booking.checked_in", "ticket.called"}
            feed = await http.get("/api/v1/export/feed", headers=manager)
            csv = await http.get("/api/v1/export/daily.csv", headers=manager)
            assert feed.status_code == csv.status_code == 200
            places = {
                "MQTT": "\n".join(f"{m.topic} {m.payload.decode('utf-8', 'replace')}" for m in watcher.received()),
                "logs": caplog.text,
                "event log": json.dumps(events, ensure_ascii=False),
                "exports": feed.text + csv.text,
            }
            assert remote["ticket_id"] in places["MQTT"]  # the watcher saw the booked ticket, without its keys
            for place, text in places.items():
                for what, values in secrets.items():
                    for value in values:
                        assert value not in text, f"{what} found in {place}"

            # the QR: exactly the tracking link, which holds the token and nothing of the phone
            assert remote["tracking_url"] == f"{centre.config.centre.public_url.rstrip('/')}/t/{remote['token']}"
            drawn = await http.get(f"/dat-so/qr/{appointment['token']}.svg")
            assert drawn.status_code == 200 and drawn.text == qr_svg(appointment["tracking_url"])
        finally:
            for probe in broker.probes:
                probe.close()
