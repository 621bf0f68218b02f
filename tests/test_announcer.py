"""The hall announcer with real espeak-ng audio: what a citizen in the hall would hear."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests.soxstat import sox_info, sox_stat

from display.announcer import Announcer, announcement_text
from luot.config import VoiceSettings
from luot.speech import play

ROOT = Path(__file__).resolve().parent.parent
SILENCE_RMS = 0.01


class Speaker:
    """Stands in for a sound card (this machine has none): takes real time, like playback does,
    and records its own play intervals so overlap is measured outside the announcer."""

    def __init__(self, seconds: float = 0.25) -> None:
        self.seconds = seconds
        self.intervals: list[tuple[float, float, Path]] = []
        self._playing = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, wav: Path) -> bool:
        with self._lock:
            self._playing += 1
            self.most_at_once = max(self.most_at_once, self._playing)
        start = time.monotonic()
        assert sox_stat(wav)["rms"] > SILENCE_RMS  # what is played is audible
        time.sleep(self.seconds)
        with self._lock:
            self._playing -= 1
            self.intervals.append((start, time.monotonic(), wav))
        return True


@pytest.fixture
def speaker() -> Speaker:
    return Speaker()


def test_announcement_text_spells_numbers_northern_style() -> None:
    assert announcement_text(1023, 3, english=False) == (
        "Mời công dân có số thứ tự một nghìn không trăm hai mươi ba đến quầy số ba"
    )
    assert announcement_text(15, 25) == "Mời công dân có số thứ tự mười lăm đến quầy số hai mươi lăm"
    bilingual = announcement_text(1023, 3, english=True)
    assert bilingual.startswith(announcement_text(1023, 3))
    assert bilingual.endswith("Ticket number 1023, please go to counter 3")
    assert not any(ch.isdigit() for ch in announcement_text(2014, 12))


def test_announcement_wav_is_chime_then_audible_speech(tmp_path: Path) -> None:
    announcer = Announcer(VoiceSettings(), tmp_path, player=play)  # real player: no sound card here
    try:
        assert announcer.submit("ev-1", 1023, 3)
        assert announcer.wait_idle()
    finally:
        announcer.close()
    (record,) = announcer.history
    assert record.error == "" and record.wav is not None and record.wav.exists()
    assert record.text == announcement_text(1023, 3)
    assert sox_info(record.wav) == (22_050, 1, 16)
    whole = sox_stat(record.wav)
    assert whole["length"] > 2.0
    assert whole["rms"] > SILENCE_RMS
    first_second = sox_stat(record.wav, 0.0, 1.0)
    assert first_second["rms"] > 0.05  # the chime rings in the first second
    assert first_second["freq"] > 500  # a tone, not speech (espeak-ng's voice sits far lower)
    assert record.started <= record.ready <= record.finished


def test_repeat_and_english_make_the_announcement_longer(tmp_path: Path, speaker: Speaker) -> None:
    single = Announcer(VoiceSettings(), tmp_path / "one", player=speaker)
    double = Announcer(VoiceSettings(repeat=2, english=True), tmp_path / "two", player=speaker)
    try:
        single.submit("a", 1023, 3)
        double.submit("a", 1023, 3)
        assert single.wait_idle() and double.wait_idle()
    finally:
        single.close()
        double.close()
    one = sox_stat(single.history[0].wav)["length"]
    two = sox_stat(double.history[0].wav)["length"]
    assert two > 2 * one + 2.0  # twice the Vietnamese plus the English sentence
    assert "Ticket number 1023" in double.history[0].text


def test_duplicate_event_is_announced_once_and_recall_again(tmp_path: Path, speaker: Speaker) -> None:
    announcer = Announcer(VoiceSettings(), tmp_path, player=speaker)
    try:
        assert announcer.submit("call-7", 1023, 3) is True
        assert announcer.submit("call-7", 1023, 3) is False  # QoS 1 redelivery
        assert announcer.wait_idle()
        assert announcer.submit("call-7", 1023, 3) is False  # still remembered afterwards
        assert announcer.submit("recall-8", 1023, 3) is True  # a recall is a new event
        assert announcer.wait_idle()
    finally:
        announcer.close()
    assert [a.event_id for a in announcer.history] == ["call-7", "recall-8"]
    assert len(speaker.intervals) == 2


def test_remembered_ids_are_bounded(tmp_path: Path, speaker: Speaker) -> None:
    speaker.seconds = 0.0
    announcer = Announcer(VoiceSettings(), tmp_path, player=speaker, remember_ids=3)
    try:
        for event_id in ("a", "b", "c", "d"):
            assert announcer.submit(event_id, 1, 1)
        assert announcer.submit("a", 1, 1) is True  # forgotten: the oldest id fell out of the LRU
        assert announcer.submit("d", 1, 1) is False
        assert announcer.wait_idle()
    finally:
        announcer.close()
    assert len(announcer.history) == 5


def test_simultaneous_calls_never_overlap(tmp_path: Path, speaker: Speaker) -> None:
    announcer = Announcer(VoiceSettings(), tmp_path, player=speaker)
    barrier = threading.Barrier(3)

    def call(event_id: str, number: int, counter: int) -> None:
        barrier.wait()
        announcer.submit(event_id, number, counter)

    threads = [threading.Thread(target=call, args=(f"e{i}", 1000 + i, i)) for i in range(1, 4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert announcer.wait_idle()
    finally:
        announcer.close()
    history = sorted(announcer.history, key=lambda a: a.started)
    assert len(history) == 3
    for before, after in zip(history, history[1:]):
        assert before.finished <= after.started
    assert speaker.most_at_once == 1
    played = sorted(speaker.intervals)
    for (_, end, _), (start, _, _) in zip(played, played[1:]):
        assert end <= start
    assert len({a.wav for a in history}) == 3


def test_bad_numbers_are_refused_by_submit(tmp_path: Path, speaker: Speaker) -> None:
    announcer = Announcer(VoiceSettings(), tmp_path, player=speaker)
    try:
        with pytest.raises(ValueError):
            announcer.submit("x", -5, 1)
        assert announcer.submit("x", 5, 1)  # the refused id was not remembered
        assert announcer.wait_idle()
    finally:
        announcer.close()


def test_a_failing_player_does_not_stop_the_announcer(tmp_path: Path) -> None:
    def broken(_wav: Path) -> bool:
        raise OSError("speaker unplugged")

    announcer = Announcer(VoiceSettings(), tmp_path, player=broken)
    try:
        announcer.submit("one", 1, 1)
        announcer.submit("two", 2, 2)
        assert announcer.wait_idle()
    finally:
        announcer.close()
    assert [(a.event_id, a.played) for a in announcer.history] == [("one", False), ("two", False)]
    assert all(a.wav is not None and a.wav.exists() for a in announcer.history)


def _luot(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "luot.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_cli_number_prints_both_readings() -> None:
    assert _luot("number", "1023") == {"number": 1023, "vi": "một nghìn không trăm hai mươi ba",
                                        "en": "one thousand twenty-three"}


def test_cli_number_refuses_out_of_range() -> None:
    done = subprocess.run([sys.executable, "-m", "luot.cli", "number", "1000000000"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "outside" in done.stderr and done.stdout == ""


def test_cli_announce_renders_the_full_wav(tmp_path: Path) -> None:
    out = tmp_path / "call.wav"
    result = _luot("announce", "--number", "1023", "--counter", "3", "--out", str(out))
    assert result["text"] == announcement_text(1023, 3)
    assert Path(result["wav"]) == out and out.exists()
    assert result["played"] is False or result["played"] is True
    stats = sox_stat(out)
    assert result["seconds"] == pytest.approx(stats["length"], abs=0.01)
    assert stats["length"] > 2.0 and stats["rms"] > SILENCE_RMS
    assert sox_stat(out, 0.0, 1.0)["rms"] > 0.05


def test_cli_announce_uses_the_centre_voice_settings(tmp_path: Path) -> None:
    sample = (ROOT / "assets" / "centre.sample.toml").read_text(encoding="utf-8")
    assert "\nrate = 150 " in sample
    slow = tmp_path / "slow.toml"
    slow.write_text(sample.replace("\nrate = 150 ", "\nrate = 100 ", 1), encoding="utf-8")
    default = _luot("announce", "--number", "7", "--counter", "2", "--out", str(tmp_path / "a.wav"))
    slower = _luot("announce", "--number", "7", "--counter", "2", "--out", str(tmp_path / "b.wav"),
                   "--config", str(slow))
    both = _luot("announce", "--number", "7", "--counter", "2", "--english", "--out", str(tmp_path / "c.wav"))
    assert slower["seconds"] > default["seconds"] + 0.5
    assert both["text"] == announcement_text(7, 2, english=True)
    assert both["text"].endswith("Ticket number 7, please go to counter 2")
    assert both["seconds"] > default["seconds"] + 1.0


def test_cli_announce_reports_a_broken_config(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    sample = (ROOT / "assets" / "centre.sample.toml").read_text(encoding="utf-8")
    broken.write_text(sample.replace("\nrate = 150 ", "\nrate = 5 ", 1), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "luot.cli", "announce", "--number", "7", "--counter", "2",
                           "--config", str(broken), "--out", str(tmp_path / "x.wav")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert "voice.rate" in done.stderr
    assert not (tmp_path / "x.wav").exists()
