"""The hall's spoken call: "Mời công dân có số thứ tự ... đến quầy số ...", after a chime.

Why it is shaped like this:

* One queue and ONE worker thread: two calls a second apart must be heard one after the other,
  never on top of each other, so rendering and playing are strictly sequential.
* Call events arrive over MQTT with QoS 1, so the same event can be delivered twice; an event id
  already announced is ignored (bounded LRU, ~1000 ids). A recall from the counter is a NEW event
  with a new id and is announced again, as the officer intends.
* Numbers are spelled into Northern Vietnamese words (luot.vinumber) before espeak-ng sees them,
  because espeak-ng reads digits the Southern way ("ngàn") or wrongly ("mười năm").
* Without a sound card the WAV is still rendered and its path logged (luot.speech.play), so an
  operator can check what would have been said.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from luot.config import VoiceSettings
from luot.speech import SpeechRenderer, chime, join_wavs, play, wav_seconds
from luot.vinumber import read_number, read_number_en, read_ticket

log = logging.getLogger(__name__)

Player = Callable[[Path], bool]
"""Plays a WAV and says whether it was heard; ``luot.speech.play`` on real displays."""

PART_GAP = 0.3
"""Seconds of silence between chime, Vietnamese and English parts: one breath."""


def _vietnamese(number: int, counter: int) -> str:
    return f"Mời công dân có số thứ tự {read_ticket(number)} đến quầy số {read_number(counter)}"


def _english(number: int, counter: int) -> str:
    return f"Ticket number {number}, please go to counter {counter}"


def announcement_text(number: int, counter: int, english: bool = False) -> str:
    """The announcement as text (for logs and screens); Vietnamese first, English appended."""
    text = _vietnamese(number, counter)
    return f"{text}. {_english(number, counter)}" if english else text


def spoken_parts(number: int, counter: int, english: bool = False) -> list[tuple[str, str]]:
    """(voice, words) pairs actually spoken; English numbers are spelled too, so every voice says
    exactly what ``luot number`` prints (espeak's own English adds a British "and")."""
    parts = [("vi", _vietnamese(number, counter))]
    if english:
        parts.append(("en", f"Ticket number {read_number_en(number)}, please go to counter {read_number_en(counter)}"))
    return parts


class AnnouncementRenderer:
    """Renders one announcement WAV: (chime, Vietnamese[, English]) x repeat.

    Separate from the queueing ``Announcer`` so ``luot announce`` renders exactly the same audio.
    """

    def __init__(self, settings: VoiceSettings, work_dir: Path) -> None:
        self.settings = settings
        # Fail at start-up, not at the first call, if a voice is wrong.
        self._renderers = {"vi": SpeechRenderer(settings.voice, settings.rate, settings.volume)}
        if settings.english:
            self._renderers["en"] = SpeechRenderer("en", settings.rate, settings.volume)
        work_dir.mkdir(parents=True, exist_ok=True)
        self.chime_path = chime(work_dir / "chime.wav")

    def render(self, number: int, counter: int, out: Path) -> Path:
        speech: list[Path] = []
        try:
            for index, (voice, words) in enumerate(spoken_parts(number, counter, self.settings.english)):
                part = out.with_name(f".{out.stem}.part{index}.wav")
                speech.append(self._renderers[voice].render(words, part))
            return join_wavs([self.chime_path, *speech] * self.settings.repeat, out, gap=PART_GAP)
        finally:
            for part in speech:
                part.unlink(missing_ok=True)


@dataclass(frozen=True)
class Announcement:
    """One announcement as it happened; monotonic times let tests prove nothing overlapped."""

    event_id: str
    number: int
    counter: int
    text: str
    wav: Path | None
    submitted: float
    started: float  # the worker took it (rendering begins)
    ready: float  # the whole WAV is on disk: first audio sample available
    finished: float  # the player returned
    played: bool
    error: str = ""


@dataclass(frozen=True)
class _Call:
    event_id: str
    number: int
    counter: int
    submitted: float


_STOP = object()


class Announcer:
    """Turns call events into chime + speech, one at a time, each event id at most once."""

    def __init__(
        self,
        voice_settings: VoiceSettings | None = None,
        out_dir: str | Path = "var/announcements",
        player: Player = play,
        remember_ids: int = 1000,
        keep_files: int = 200,
    ) -> None:
        self.settings = voice_settings or VoiceSettings()
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.player = player
        self.renderer = AnnouncementRenderer(self.settings, self.out_dir)
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._remember_ids = remember_ids
        self._files: collections.deque[Path] = collections.deque()
        self._keep_files = keep_files  # a busy day is ~1000 calls of ~300 KB: keep only recent WAVs
        self._history: collections.deque[Announcement] = collections.deque(maxlen=1000)
        self._lock = threading.Lock()
        self._queue: "queue.Queue[_Call | object]" = queue.Queue()
        self._sequence = 0
        self._thread = threading.Thread(target=self._work, name="luot-announcer", daemon=True)
        self._thread.start()

    # -- producer side (MQTT thread) ---------------------------------------------------------
    def submit(self, event_id: str, number: int, counter: int) -> bool:
        """Queue a call; False (and nothing queued) if this event id was already accepted."""
        # Refuse unreadable numbers here, in the caller's thread, where the error can be reported.
        read_number(number)
        read_number(counter)
        with self._lock:
            if event_id in self._seen:
                self._seen.move_to_end(event_id)
                log.info("duplicate call event %s ignored", event_id)
                return False
            self._seen[event_id] = None
            while len(self._seen) > self._remember_ids:
                self._seen.popitem(last=False)
        self._queue.put(_Call(event_id, number, counter, time.monotonic()))
        return True

    @property
    def history(self) -> list[Announcement]:
        """Announcements finished so far, oldest first (the last 1000)."""
        with self._lock:
            return list(self._history)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every queued call has been announced; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop the worker."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    # -- the one worker ----------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            call = self._queue.get()
            try:
                if call is _STOP:
                    return
                assert isinstance(call, _Call)
                self._announce(call)
            except Exception:  # noqa: BLE001 - the announcer must outlive any one bad call
                log.exception("announcement failed")
            finally:
                self._queue.task_done()

    def _announce(self, call: _Call) -> None:
        started = time.monotonic()
        text = announcement_text(call.number, call.counter, self.settings.english)
        self._sequence += 1
        wav: Path | None = self.out_dir / f"call-{self._sequence:06d}-{call.number}-q{call.counter}.wav"
        error, played = "", False
        try:
            assert wav is not None
            self.renderer.render(call.number, call.counter, wav)
            self._remember_file(wav)
        except Exception as failure:  # noqa: BLE001 - logged and recorded; screens still show it
            log.error("could not render announcement %s: %s", call.event_id, failure)
            error, wav = str(failure), None
        ready = time.monotonic()
        if wav is not None:
            try:
                played = bool(self.player(wav))
            except Exception as failure:  # noqa: BLE001 - a broken player must not stop calls
                log.error("player failed on %s: %s", wav, failure)
            if not played:
                log.info("announcement %s (%.1f s) not heard; WAV at %s", call.event_id, wav_seconds(wav), wav)
        finished = time.monotonic()
        record = Announcement(call.event_id, call.number, call.counter, text, wav,
                              call.submitted, started, ready, finished, played, error)
        with self._lock:
            self._history.append(record)

    def _remember_file(self, wav: Path) -> None:
        self._files.append(wav)
        while len(self._files) > self._keep_files:
            self._files.popleft().unlink(missing_ok=True)
