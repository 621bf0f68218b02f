"""The kiosk's spoken prompts: every guided screen and every greeter answer is read aloud.

Rendering (espeak-ng through :mod:`luot.speech`) and playing happen on one worker thread so the
screen never freezes, and a new prompt replaces one not yet started (a visitor who taps on does
not hear a queue of stale sentences). Machines without a sound card are normal: ``play`` says it
could not play and the WAV's path is logged, so an operator can still check what was said.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger("luot.kiosk.voice")


class Speaker:
    def __init__(self, out_dir: Path, voice: str = "vi", rate: int = 140, volume: float = 1.0,
                 on_speaking: Callable[[bool], None] | None = None, enabled: bool = True) -> None:
        self.out_dir = out_dir
        self.voice, self.rate, self.volume = voice, rate, volume
        self.on_speaking = on_speaking
        self.enabled = enabled
        self.spoken: list[tuple[str, Path | None, bool]] = []  # (text, wav, played) for tests and logs
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._renderer = None
        self._thread = threading.Thread(target=self._run, name="luot-kiosk-voice", daemon=True)
        self._count = 0
        self._interrupt = threading.Event()
        if enabled:
            self._thread.start()

    def say(self, text: str) -> None:
        if not self.enabled or not text.strip():
            return
        while True:  # drop prompts not yet started: only the newest screen matters
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(text)
        self._interrupt.set()

    def stop(self) -> None:
        if self.enabled:
            self._queue.put(None)
            self._thread.join(timeout=5)

    def idle(self) -> bool:
        return self._queue.empty() and not getattr(self, "_busy", False)

    def _notify(self, speaking: bool) -> None:
        if self.on_speaking:
            try:
                self.on_speaking(speaking)
            except Exception:  # noqa: BLE001
                log.exception("speaking callback")

    def _run(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        while True:
            text = self._queue.get()
            if text is None:
                return
            self._busy = True
            try:
                self._speak(text)
            finally:
                self._busy = False

    def _speak(self, text: str) -> None:
        try:
            from luot.speech import SpeechRenderer, play, wav_seconds
        except ImportError:
            log.info("speech module not installed; prompt not spoken: %s", text)
            self.spoken.append((text, None, False))
            self._interrupt.clear()
            self._notify(True)  # the face still "reads" the sentence shown on screen
            self._interrupt.wait(min(len(text) * 0.06, 6.0))
            self._notify(False)
            return
        try:
            if self._renderer is None:
                self._renderer = SpeechRenderer(self.voice, self.rate, self.volume)
            self._count += 1
            wav = self._renderer.render(text, self.out_dir / f"prompt-{self._count % 20:02d}.wav")
        except Exception as error:  # noqa: BLE001 - a broken voice must never stop the kiosk
            log.warning("could not render speech (%s): %s", error, text)
            self.spoken.append((text, None, False))
            return
        self._interrupt.clear()
        self._notify(True)
        started = time.monotonic()
        played = play(wav)
        self.spoken.append((text, wav, played))
        if not played:
            log.info("no sound card: prompt audio is at %s", wav)
            # keep the face talking about as long as the sentence lasts, even when silent;
            # a newer prompt cuts it short
            self._interrupt.wait(max(0.0, min(wav_seconds(wav), 6.0) - (time.monotonic() - started)))
        self._notify(False)
