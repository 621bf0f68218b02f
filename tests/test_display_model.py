"""The display model alone: MQTT messages in, what the hall sees and hears out (no Kivy, no broker)."""

from __future__ import annotations

from datetime import datetime, timezone

from display.model import FLASH_SECONDS, DisplayModel, notice_pages
from luot.config import load_config
from luot.protocol import Topics, encode

CONFIG = load_config()
TOPICS = Topics(CONFIG.centre.id)


def state(kind: str, data: dict) -> bytes:
    return encode(kind, data, id="s-" + kind, at="2026-11-24T02:06:00+00:00", centre=CONFIG.centre.id)


def call(event_id: str, number: int, counter: int, kind: str = "ticket.called", n: int = 1) -> bytes:
    return encode(kind, {"ticket_id": "t" + str(number), "number": number, "group": "chung-thuc", "counter": counter,
                         "call": n}, id=event_id, at="2026-11-24T02:06:00+00:00", centre=CONFIG.centre.id)


def counter_state(counter: int, status: str, number: int | None) -> bytes:
    return state("state.counter", {"counter": counter, "name": f"Quầy {counter}", "status": status, "groups": [],
                                   "officer": "cb", "number": number, "group": "chung-thuc" if number else None,
                                   "ticket_status": None, "ticket_id": None, "last_ticket_id": None})


def queue_state(waiting: dict[str, int]) -> bytes:
    return state("state.queue", {"day": "2026-11-24", "waiting_total": sum(waiting.values()), "counters": [],
                                 "groups": {code: {"waiting": n, "priority_waiting": 0, "longest_wait_minutes": 0.0}
                                            for code, n in waiting.items()}})


def calls_state(*calls: tuple[str, int, int]) -> bytes:
    return state("state.calls", {"calls": [{"number": number, "group": "chung-thuc", "counter": counter,
                                            "at": "2026-11-24T02:06:00+00:00", "call": 1, "event_id": event_id}
                                           for event_id, number, counter in calls]})


def test_retained_state_fills_the_screen_and_only_open_counters_show() -> None:
    model = DisplayModel(CONFIG)
    assert model.open_counters == [] and model.newest_call is None
    for update in (
        model.apply(TOPICS.counter_state(3), counter_state(3, "calling", 2001), retained=True),
        model.apply(TOPICS.counter_state(4), counter_state(4, "serving", 3001), retained=True),
        model.apply(TOPICS.counter_state(5), counter_state(5, "closed", None), retained=True),
        model.apply(TOPICS.queue_state, queue_state({"ho-tich": 4, "cu-tru": 2}), retained=True),
        model.apply(TOPICS.recent_calls_state, calls_state(("e2", 3001, 4), ("e1", 2001, 3)), retained=True),
        model.apply(TOPICS.notice_state, state("state.notice", {"vi": "Xin chào", "en": "Welcome"}), retained=True),
    ):
        assert update.changed and update.announce == []  # a replay is shown, never spoken
    assert [(c.counter, c.number, c.status) for c in model.open_counters] == [(3, 2001, "calling"), (4, 3001, "serving")]
    assert model.groups["ho-tich"].waiting == 4 and model.groups["cu-tru"].waiting == 2 and model.waiting_total == 6
    assert model.groups["ho-tich"].name == "Hộ tịch"
    assert [(c.number, c.counter) for c in model.recent_calls] == [(3001, 4), (2001, 3)]
    assert (model.notice_vi, model.notice_en) == ("Xin chào", "Welcome")


def test_a_live_call_is_announced_once_a_recall_again_and_it_flashes() -> None:
    model = DisplayModel(CONFIG)
    first = model.apply(TOPICS.call_events, call("e1", 1023, 3), now_monotonic=100.0)
    assert [(c.number, c.counter) for c in first.announce] == [(1023, 3)]
    assert model.flashing(100.0 + FLASH_SECONDS - 0.1) and not model.flashing(100.0 + FLASH_SECONDS + 0.1)
    assert model.counters[3].number == 1023 and model.counters[3].status == "calling"
    duplicate = model.apply(TOPICS.call_events, call("e1", 1023, 3), now_monotonic=101.0)  # QoS 1 redelivery
    assert duplicate.announce == [] and not duplicate.changed
    recall = model.apply(TOPICS.call_events, call("e2", 1023, 3, "ticket.recalled", 2), now_monotonic=102.0)
    assert [c.event_id for c in recall.announce] == ["e2"]
    assert [c.event_id for c in model.recent_calls] == ["e2", "e1"] and model.newest_call.call == 2


def test_calls_learnt_from_the_retained_replay_are_never_announced() -> None:
    model = DisplayModel(CONFIG)
    model.apply(TOPICS.recent_calls_state, calls_state(("e7", 2005, 2)), retained=True)
    late_copy = model.apply(TOPICS.call_events, call("e7", 2005, 2))
    assert late_copy.announce == []
    assert model.newest_call is not None and model.newest_call.number == 2005
    fresh = model.apply(TOPICS.call_events, call("e8", 2006, 2))
    assert [c.number for c in fresh.announce] == [2006]


def test_bad_payloads_are_ignored_and_the_screen_keeps_its_state() -> None:
    model = DisplayModel(CONFIG)
    model.apply(TOPICS.counter_state(3), counter_state(3, "calling", 2001))
    bad = [
        (TOPICS.counter_state(3), b"not json"),
        (TOPICS.counter_state(3), b"\xff\xfe"),
        (TOPICS.counter_state(3), b'{"v": 2, "kind": "state.counter", "data": {}}'),
        (TOPICS.counter_state(3), encode("state.counter", {"counter": "three", "status": "idle"})),
        (TOPICS.queue_state, encode("state.queue", {"groups": [1, 2]})),
        (TOPICS.call_events, encode("ticket.called", {"number": 12}, id="x")),
        (TOPICS.server_availability, b"maybe"),
    ]
    for topic, payload in bad:
        assert model.apply(topic, payload).announce == []
    assert model.rejected == len(bad)
    assert [(c.counter, c.number) for c in model.open_counters] == [(3, 2001)]
    unknown = model.apply(TOPICS.call_events, encode("ticket.teleported", {"x": 1}, id="y"))
    assert not unknown.changed and model.rejected == len(bad)  # unknown kinds: ignored, not errors


def test_badge_says_connection_lost_then_server_offline() -> None:
    model = DisplayModel(CONFIG)
    assert model.badge == ("Mất kết nối", "Connection lost")  # not connected yet
    model.set_connected(True)
    assert model.badge is None
    model.apply(TOPICS.server_availability, b"offline", retained=True)
    assert model.badge is not None and model.badge[0].startswith("Máy chủ ngừng hoạt động")
    model.apply(TOPICS.server_availability, b"online")
    assert model.badge is None
    assert model.set_connected(False).changed and model.badge[0] == "Mất kết nối"


def test_clock_is_the_centres_local_time_computed_on_each_call() -> None:
    model = DisplayModel(CONFIG)
    assert model.clock_text(datetime(2026, 11, 24, 2, 6, tzinfo=timezone.utc)) == ("09:06", "Thứ Ba, 24/11/2026")
    assert model.clock_text(datetime(2026, 11, 29, 17, 0, tzinfo=timezone.utc)) == ("00:00", "Thứ Hai, 30/11/2026")


def test_counter_mode_follows_its_own_counter() -> None:
    model = DisplayModel(CONFIG, counter=1)
    model.apply(TOPICS.counter_state(1), counter_state(1, "serving", 1004))
    model.apply(TOPICS.counter_state(2), counter_state(2, "calling", 1005))
    assert model.own_counter is not None and (model.own_counter.number, model.own_counter.status) == (1004, "serving")


def test_a_long_notice_is_cut_into_lines_of_whole_words_never_mixing_languages() -> None:
    fits = lambda line: len(line) <= 20  # noqa: E731 - a screen 20 letters wide
    vi = "Công dân ưu tiên xin báo tại quầy hướng dẫn."
    pages = notice_pages([vi, "Priority citizens please tell the help desk."], fits)
    assert pages == ["Công dân ưu tiên xin", "báo tại quầy hướng", "dẫn.",
                     "Priority citizens", "please tell the help", "desk."]
    assert " ".join(pages[:3]) == vi and all(fits(page) for page in pages)
    assert notice_pages(["Xin chào", "Welcome"], fits) == ["Xin chào", "Welcome"]
    assert notice_pages(["Siêu-dài-không-có-chỗ-ngắt ok"], fits) == ["Siêu-dài-không-có-chỗ-ngắt", "ok"]  # shortened on screen
    assert notice_pages([], fits) == [] and notice_pages(["   "], fits) == []
