"""Offline text-to-speech to WAV files, a chime, WAV joining and best-effort playback.

Why it is built this way (measured, see shared/notes/platform-findings.md, "Voice"):

* pyttsx3 2.99 on espeak-ng fails silently: two engines in one process lose files or hang, the
  first ``runAndWait`` can return before the file exists, a few WAVs in a thousand come out empty
  with no exception, an unwritable path hangs forever, a bad voice name raises nothing, and it
  prints "Audio saved to" on stdout. What held 1,000/1,000 under load is reproduced here: ONE
  engine owned by ONE worker thread for the whole process, render to a temp file in the target
  directory, check its frame count, retry once, rename atomically; a timeout or failure falls back
  to the ``espeak-ng`` command line (same audio, about 10 ms a phrase).
* Machines often have no sound card, so speech is always rendered to a WAV first and ``play``
  reports (never raises) whether a player actually played it; the WAV path is logged otherwise.
* Everything is 22,050 Hz mono 16-bit, espeak-ng's native format, so chime and speech can be
  joined by copying frames with the ``wave`` module (no sox at run time).
"""

from __future__ import annotations

import array
import logging
import math
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import unicodedata
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger(__name__)

SAMPLE_RATE = 22_050
CHANNELS = 1
SAMPLE_WIDTH = 2  # bytes: 16-bit signed PCM
MIN_SPEECH_FRAMES = SAMPLE_RATE // 20
"""A rendered phrase shorter than 50 ms is treated as the silent-empty-file failure."""

ENGINE_TIMEOUT = 5.0
"""Seconds to wait for the pyttsx3 worker before using the CLI; a phrase takes ~10-40 ms."""


class SpeechError(RuntimeError):
    """Speech could not be rendered by either pyttsx3 or the espeak-ng command line."""


# ---------------------------------------------------------------------------------------------
# WAV helpers
# ---------------------------------------------------------------------------------------------


def wav_frames(path: str | Path) -> int:
    """Number of audio frames in a WAV file; 0 for a missing, empty or unreadable file."""
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes()
    except (OSError, EOFError, wave.Error):
        return 0


def wav_seconds(path: str | Path) -> float:
    """Duration of a WAV file in seconds (0.0 when unreadable)."""
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / float(wav.getframerate())
    except (OSError, EOFError, wave.Error):
        return 0.0


def _temp_beside(path: Path) -> Path:
    """A fresh, already-created temp file in ``path``'s directory, so the final rename is atomic.

    Creating it here also proves the directory is writable before pyttsx3 is involved (pyttsx3
    hangs forever on an unwritable path).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.wav", dir=path.parent)
    os.close(handle)
    return Path(name)


def _write_pcm(path: Path, samples: array.array) -> Path:
    """Write 16-bit mono samples to ``path`` atomically."""
    tmp = _temp_beside(path)
    try:
        with wave.open(str(tmp), "wb") as wav:
            wav.setnchannels(CHANNELS)
            wav.setsampwidth(SAMPLE_WIDTH)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(samples.tobytes())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def chime(path: str | Path, seconds: float = 1.2, volume: float = 0.5) -> Path:
    """Write a two-tone "ding-dong" chime (E5 then C5, bell-like decay, faded out).

    The chime tells waiting citizens to look up before the number is spoken; two falling tones
    are the sound people already know from stations and banks.
    """
    path = Path(path)
    total = int(seconds * SAMPLE_RATE)
    strikes = ((0.0, 659.25), (0.42, 523.25))  # (start second, fundamental Hz): ding, dong
    partials = ((1.0, 1.0), (2.0, 0.35), (3.0, 0.12))  # (frequency multiple, relative amplitude)
    norm = sum(amplitude for _, amplitude in partials)
    fade_start = int(total * 0.7)
    samples = array.array("h", bytes(2 * total))
    for start, frequency in strikes:
        first = int(start * SAMPLE_RATE)
        for index in range(first, total):
            t = (index - first) / SAMPLE_RATE
            envelope = min(1.0, t / 0.008) * math.exp(-3.2 * t)  # 8 ms attack, bell decay
            value = sum(a * math.sin(2 * math.pi * frequency * m * t) for m, a in partials) / norm
            samples[index] = max(-32767, min(32767, samples[index] + int(value * envelope * volume * 32767)))
    for index in range(fade_start, total):  # linear fade-out so the file never ends on a click
        samples[index] = int(samples[index] * (total - index) / (total - fade_start))
    return _write_pcm(path, samples)


def join_wavs(parts: Sequence[str | Path], out: str | Path, gap: float = 0.0) -> Path:
    """Concatenate WAV files into ``out`` with ``gap`` seconds of silence between them.

    All parts must share rate, channels and sample width (mixing formats would play at the wrong
    speed); a mismatch raises ``ValueError`` naming the odd file.
    """
    if not parts:
        raise ValueError("join_wavs needs at least one WAV file")
    out = Path(out)
    params: tuple[int, int, int] | None = None
    chunks: list[bytes] = []
    for part in parts:
        with wave.open(str(part), "rb") as wav:
            these = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
            if params is None:
                params = these
            elif these != params:
                raise ValueError(
                    f"{part}: format {these} (channels, bytes/sample, Hz) differs from {params}; "
                    "all parts must match"
                )
            chunks.append(wav.readframes(wav.getnframes()))
    assert params is not None
    channels, width, rate = params
    silence = bytes(int(gap * rate) * channels * width)
    tmp = _temp_beside(out)
    try:
        with wave.open(str(tmp), "wb") as wav:
            wav.setnchannels(channels)
            wav.setsampwidth(width)
            wav.setframerate(rate)
            for index, chunk in enumerate(chunks):
                if index and silence:
                    wav.writeframes(silence)
                wav.writeframes(chunk)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def play(path: str | Path, timeout: float | None = None) -> bool:
    """Play a WAV with ``aplay -q``; True only if aplay exited 0.

    Never raises: a hall display must keep announcing on screen when the speaker is missing. On
    a machine with no sound card aplay exits 1 (espeak-ng and pyttsx3 would pretend success),
    so its exit code is what we trust; otherwise the WAV's path is logged for the operator.
    """
    path = Path(path)
    player = shutil.which("aplay")
    if player is None:
        log.warning("no audio player (aplay) installed; announcement audio is at %s", path)
        return False
    limit = timeout if timeout is not None else wav_seconds(path) + 10.0
    try:
        done = subprocess.run([player, "-q", str(path)], capture_output=True, timeout=limit, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("could not play %s (%s); the WAV is kept there", path, error)
        return False
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        log.warning("no sound played (aplay exit %s: %s); announcement audio is at %s",
                    done.returncode, reason[-1] if reason else "no message", path)
        return False
    return True


# ---------------------------------------------------------------------------------------------
# The process's single pyttsx3 engine
# ---------------------------------------------------------------------------------------------


@dataclass
class _Job:
    """One phrase for the engine worker; ``abandoned`` is set by a caller that timed out."""

    text: str
    voice_id: str
    rate: int
    volume: float
    target: Path
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    abandoned: bool = False


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: its id (``aav/vi``) and its first language (``vi``)."""

    id: str
    language: str


class _EngineWorker:
    """Owns the one pyttsx3 engine of the process on one daemon thread.

    pyttsx3 keeps global espeak state (one synth callback per process), so every render from
    every ``SpeechRenderer`` goes through this single queue.
    """

    _instance: "_EngineWorker | None" = None
    _instance_lock = threading.Lock()

    @classmethod
    def shared(cls) -> "_EngineWorker":
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self) -> None:
        self._jobs: "queue.Queue[_Job]" = queue.Queue()
        self._ready = threading.Event()
        self.voices: list[Voice] = []
        self.failure: BaseException | None = None
        self._current: _Job | None = None  # the job inside runAndWait right now
        self._thread = threading.Thread(target=self._run, name="luot-tts-engine", daemon=True)
        self._thread.start()
        self._ready.wait(ENGINE_TIMEOUT)
        if not self._ready.is_set():
            self.failure = TimeoutError("pyttsx3 engine did not start")

    @property
    def available(self) -> bool:
        """False when pyttsx3 failed to start or is still busy with a job a caller gave up on
        (a hung engine): renders then go straight to the CLI instead of queueing behind it."""
        current = self._current
        return self.failure is None and not (current is not None and current.abandoned)

    @property
    def idle(self) -> bool:
        return self._current is None and self._jobs.empty()

    def submit(self, job: _Job) -> None:
        self._jobs.put(job)

    def _run(self) -> None:
        try:
            import pyttsx3
            import pyttsx3.drivers.espeak as espeak_driver

            engine: Any = pyttsx3.init("espeak")
            # The driver announces every file with print(); send that to the log instead of
            # stdout (which carries JSON for the CLI). Module-level, so other threads' prints
            # are untouched, unlike swapping sys.stdout.
            espeak_driver.print = lambda *args, **_kw: log.debug(" ".join(map(str, args)))  # type: ignore[attr-defined]
            self.voices = [
                Voice(v.id, (v.languages or [""])[0].lower()) for v in engine.getProperty("voices")
            ]
            # Set by the driver after the WAV is written and closed. The driver runs espeak-ng in
            # its asynchronous mode, so runAndWait() may return before the file exists.
            finished = threading.Event()
            engine.connect("finished-utterance", lambda completed=False, **_kw: completed and finished.set())
        except BaseException as error:  # noqa: BLE001 - any start failure means "use the CLI"
            log.warning("pyttsx3 unavailable, using the espeak-ng command line: %s", error)
            self.failure = error
            self._ready.set()
            return
        self._ready.set()
        while True:
            job = self._jobs.get()
            if job.abandoned:
                job.target.unlink(missing_ok=True)
                continue
            self._current = job
            try:
                finished.clear()
                # Voice changes are synchronous in espeak-ng. Rate and volume set through
                # pyttsx3 properties are NOT reliable: they travel through espeak-ng's async
                # command queue and, in about one process in three (measured), every phrase
                # kept the driver's default 200 wpm. Embedded commands (Ctrl-A + value + S/A)
                # travel inside the text itself, so each phrase carries its own speed/volume.
                engine.setProperty("voice", job.voice_id)
                engine.save_to_file(_embedded_prosody(job.rate, job.volume) + job.text, str(job.target))
                engine.runAndWait()
                if not finished.wait(ENGINE_TIMEOUT):
                    raise TimeoutError("pyttsx3 never reported the end of the utterance")
            except BaseException as error:  # noqa: BLE001 - reported to the waiting caller
                job.error = error
            finally:
                self._current = None
                job.done.set()
                if job.abandoned:
                    job.target.unlink(missing_ok=True)


def _embedded_prosody(rate: int, volume: float) -> str:
    """espeak-ng embedded commands: speed in words a minute (S) and amplitude 0-200 (A), with
    the same scale as the CLI's ``-s`` and ``-a`` so both paths sound alike."""
    return f"\x01{rate}S\x01{round(volume * 100)}A"


def _clean(text: str) -> str:
    """NFC (espeak-ng reads composed Vietnamese letters; phones and some keyboards send
    decomposed ones) and no control characters (a stray Ctrl-A is an espeak-ng command)."""
    text = unicodedata.normalize("NFC", text)
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)


def list_voices() -> list[Voice]:
    """The espeak-ng voices pyttsx3 can use here (empty when pyttsx3 cannot start)."""
    return list(_EngineWorker.shared().voices)


def resolve_voice(name: str) -> str:
    """Turn a configured voice ("vi", "en", "aav/vi", "vi-vn-x-south") into an espeak-ng voice id.

    pyttsx3 accepts any voice name and silently keeps the previous voice, so the name is checked
    here, against the installed voices, and a mistake is reported at start-up.
    """
    wanted = name.strip().lower()
    voices = list_voices()
    if not voices:  # pyttsx3 unavailable: let the espeak-ng CLI judge the name itself
        return wanted
    for matches in (
        lambda v: v.id == wanted,
        lambda v: v.id.rsplit("/", 1)[-1] == wanted,
        lambda v: v.language == wanted,
    ):
        found = [v for v in voices if matches(v) and not v.id.startswith("mb/")]
        if found:
            return found[0].id
    known = sorted({v.id.rsplit("/", 1)[-1] for v in voices if not v.id.startswith("mb/")})
    raise ValueError(f"unknown voice {name!r}; installed espeak-ng voices include: {', '.join(known[:40])} ...")


class SpeechRenderer:
    """Render text to a 22,050 Hz mono 16-bit WAV with one voice, rate and volume.

    Cheap to create: all renderers share the process's single engine worker.
    """

    def __init__(self, voice: str = "vi", rate: int = 150, volume: float = 1.0,
                 timeout: float = ENGINE_TIMEOUT) -> None:
        if not 60 <= rate <= 400:
            raise ValueError(f"rate {rate} words a minute is outside 60..400")
        if not 0.0 <= volume <= 1.0:
            raise ValueError(f"volume {volume} is outside 0.0..1.0")
        self.voice_id = resolve_voice(voice)
        self.rate = rate
        self.volume = volume
        self.timeout = timeout
        self.last_method = ""  # "pyttsx3" or "espeak-ng": which path produced the last file

    def render(self, text: str, path: str | Path) -> Path:
        """Speak ``text`` into the WAV ``path`` (replaced atomically) and return the path."""
        text = _clean(text)
        if not text.strip():
            raise ValueError("nothing to say: the text is empty")
        path = Path(path)
        worker = _EngineWorker.shared()
        for attempt in (1, 2):  # retry once: pyttsx3 rarely writes an empty file, silently
            if not worker.available:
                break
            tmp = _temp_beside(path)
            job = _Job(text, self.voice_id, self.rate, self.volume, tmp)
            worker.submit(job)
            if not job.done.wait(self.timeout):
                job.abandoned = True
                if job.done.is_set():  # finished just now, after our wait: the worker won't clean up
                    tmp.unlink(missing_ok=True)
                log.warning("pyttsx3 did not finish within %.1f s; using espeak-ng CLI", self.timeout)
                break
            if job.error is None and self._good(tmp):
                os.replace(tmp, path)
                self.last_method = "pyttsx3"
                return path
            tmp.unlink(missing_ok=True)
            log.warning("pyttsx3 attempt %d gave no usable audio (%s)", attempt, job.error or "empty file")
        return self._render_cli(text, path)

    def _render_cli(self, text: str, path: Path) -> Path:
        """The fallback: the espeak-ng program itself, text on stdin (so a leading '-' is text)."""
        tmp = _temp_beside(path)
        command = ["espeak-ng", "-v", self.voice_id, "-s", str(self.rate),
                   "-a", str(round(self.volume * 100)), "-w", str(tmp), "--stdin"]
        try:
            done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True,
                                  timeout=max(self.timeout, 10.0), check=False)
            # espeak-ng exits 0 even when it cannot write: trust only the file it wrote.
            if done.returncode == 0 and self._good(tmp):
                os.replace(tmp, path)
                self.last_method = "espeak-ng"
                return path
            reason = done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}, no audio"
        except (OSError, subprocess.SubprocessError) as error:
            reason = str(error)
        finally:
            tmp.unlink(missing_ok=True)
        raise SpeechError(f"could not render speech to {path}: {reason}")

    @staticmethod
    def _good(path: Path) -> bool:
        """Audio present and in the one format the rest of the voice layer joins and plays."""
        try:
            with wave.open(str(path), "rb") as wav:
                return (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (
                    CHANNELS, SAMPLE_WIDTH, SAMPLE_RATE) and wav.getnframes() >= MIN_SPEECH_FRAMES
        except (OSError, EOFError, wave.Error):
            return False

