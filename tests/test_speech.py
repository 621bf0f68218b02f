"""The voice layer with real espeak-ng and pyttsx3: audible WAVs in the one format, measured by sox."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.soxstat import sox_info, sox_stat

from luot.speech import SpeechRenderer, _EngineWorker, chime, join_wavs, play
from luot.vinumber import read_number

SENTENCE = f"Mời công dân có số thứ tự {read_number(1023)} đến quầy số {read_number(3)}"
SILENCE_RMS = 0.01  # espeak-ng speech measures ~0.1; an empty or near-silent file is far below


def _wait_idle() -> None:
    """Let a job abandoned by a timeout test finish, so later tests meet a free engine."""
    worker = _EngineWorker.shared()
    for _ in range(500):
        if worker.idle:
            return
        threading.Event().wait(0.01)


def test_vietnamese_sentence_is_audible_speech(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    renderer = SpeechRenderer("vi", rate=150, volume=1.0)
    out = renderer.render(SENTENCE, tmp_path / "speech.wav")
    assert out == tmp_path / "speech.wav"
    assert renderer.last_method == "pyttsx3"
    assert sox_info(out) == (22_050, 1, 16)
    stats = sox_stat(out)
    assert stats["length"] > 2.0
    assert stats["rms"] > SILENCE_RMS
    # pyttsx3's "Audio saved to ..." must not pollute stdout (the CLI prints JSON there).
    assert "Audio saved" not in capfd.readouterr().out
    assert not list(tmp_path.glob(".*tmp*")), "temp files must be renamed or removed"


def test_voice_names_resolve_to_espeak_voices() -> None:
    assert SpeechRenderer("vi").voice_id == "aav/vi"  # Northern
    assert SpeechRenderer("aav/vi").voice_id == "aav/vi"
    assert SpeechRenderer("vi-vn-x-south").voice_id == "aav/vi-vn-x-south"
    assert SpeechRenderer("en").voice_id == "gmw/en"


def test_voice_choice_changes_the_audio(tmp_path: Path) -> None:
    """pyttsx3 silently keeps the old voice on a bad name; check the voice really switches."""
    north = SpeechRenderer("vi").render(SENTENCE, tmp_path / "north.wav")
    english = SpeechRenderer("en").render(SENTENCE, tmp_path / "english.wav")
    north_again = SpeechRenderer("vi").render(SENTENCE, tmp_path / "north2.wav")
    assert sox_stat(english)["length"] != pytest.approx(sox_stat(north)["length"], abs=0.2)
    assert sox_stat(north_again)["length"] == pytest.approx(sox_stat(north)["length"], abs=0.1)


def test_rate_and_volume_are_applied(tmp_path: Path) -> None:
    normal = sox_stat(SpeechRenderer("vi", rate=150).render(SENTENCE, tmp_path / "a.wav"))
    slow = sox_stat(SpeechRenderer("vi", rate=90).render(SENTENCE, tmp_path / "b.wav"))
    quiet = sox_stat(SpeechRenderer("vi", rate=150, volume=0.3).render(SENTENCE, tmp_path / "c.wav"))
    assert slow["length"] > normal["length"] * 1.3
    assert SILENCE_RMS < quiet["rms"] < normal["rms"] * 0.6


def test_unknown_voice_and_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown voice 'klingon'"):
        SpeechRenderer("klingon")
    with pytest.raises(ValueError, match="rate"):
        SpeechRenderer("vi", rate=10)
    with pytest.raises(ValueError, match="volume"):
        SpeechRenderer("vi", volume=2.0)
    with pytest.raises(ValueError, match="empty"):
        SpeechRenderer("vi").render("   ", "/tmp/never.wav")


def test_timeout_falls_back_to_espeak_cli(tmp_path: Path) -> None:
    renderer = SpeechRenderer("vi", timeout=0.0)  # no time for the engine: the CLI must answer
    try:
        out = renderer.render(SENTENCE, tmp_path / "cli.wav")
    finally:
        _wait_idle()
    assert renderer.last_method == "espeak-ng"
    assert sox_info(out) == (22_050, 1, 16)
    stats = sox_stat(out)
    assert stats["length"] > 2.0 and stats["rms"] > SILENCE_RMS


def test_unwritable_destination_raises_instead_of_hanging(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(OSError):
        SpeechRenderer("vi").render(SENTENCE, blocker / "speech.wav")


def test_concurrent_renders_share_one_engine_thread(tmp_path: Path) -> None:
    renderer = SpeechRenderer("vi")
    with ThreadPoolExecutor(max_workers=6) as pool:
        outs = list(pool.map(lambda i: renderer.render(f"{SENTENCE} {read_number(i)}", tmp_path / f"{i}.wav"), range(12)))
    for out in outs:
        assert sox_stat(out)["rms"] > SILENCE_RMS
    engines = [t for t in threading.enumerate() if t.name == "luot-tts-engine"]
    assert len(engines) == 1


def test_chime_is_a_falling_two_tone_with_fade_out(tmp_path: Path) -> None:
    out = chime(tmp_path / "chime.wav")
    assert sox_info(out) == (22_050, 1, 16)
    whole = sox_stat(out)
    assert whole["length"] == pytest.approx(1.2, abs=0.01)
    assert whole["rms"] > 0.05
    ding, dong = sox_stat(out, 0.0, 0.4), sox_stat(out, 0.5, 0.4)
    assert ding["rms"] > 0.05 and dong["rms"] > 0.05
    assert ding["freq"] > dong["freq"] * 1.1  # the second tone is lower: "ding-dong"
    assert sox_stat(out, 1.15)["max"] < 0.02  # faded out, no click at the end


def test_join_wavs_concatenates_with_gaps(tmp_path: Path) -> None:
    ding = chime(tmp_path / "chime.wav")
    speech = SpeechRenderer("vi").render(SENTENCE, tmp_path / "speech.wav")
    joined = join_wavs([ding, speech, ding], tmp_path / "joined.wav", gap=0.25)
    expected = 1.2 + sox_stat(speech)["length"] + 1.2 + 2 * 0.25
    assert sox_stat(joined)["length"] == pytest.approx(expected, abs=0.01)
    assert sox_stat(joined, 0.0, 1.0)["rms"] > 0.05  # the chime comes first


def test_join_wavs_refuses_mixed_formats(tmp_path: Path) -> None:
    odd = tmp_path / "8k.wav"
    with wave.open(str(odd), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(1600))
    with pytest.raises(ValueError, match="8k.wav"):
        join_wavs([chime(tmp_path / "c.wav"), odd], tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()


def test_play_never_raises_and_says_where_the_audio_is(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = chime(tmp_path / "chime.wav")
    with caplog.at_level(logging.WARNING, logger="luot.speech"):
        played = play(out)
    if not played:  # no sound card here (the usual case on these machines): the path is logged
        assert str(out) in caplog.text
    assert play(tmp_path / "missing.wav") is False


def test_configured_rate_holds_in_fresh_processes(tmp_path: Path) -> None:
    """Regression: rate set as a pyttsx3 property was ignored (200 wpm) in about one fresh
    process in three; the engine's speech must match the espeak-ng CLI at the same settings."""
    cli = SpeechRenderer("vi", rate=120, volume=0.8, timeout=0.0)
    try:
        reference = sox_stat(cli.render(SENTENCE, tmp_path / "cli.wav"))
    finally:
        _wait_idle()
    assert cli.last_method == "espeak-ng"
    script = (
        "import sys, time; from luot.speech import SpeechRenderer; r = SpeechRenderer('vi', rate=120, volume=0.8); "
        "time.sleep(float(sys.argv[2])); r.render(sys.argv[1], sys.argv[3]); print(r.last_method)"
    )
    root = Path(__file__).resolve().parent.parent
    for index, pause in enumerate(("0", "0.3", "0.6", "0", "0.3", "0.6")):
        out = tmp_path / f"fresh{index}.wav"
        done = subprocess.run([sys.executable, "-c", script, SENTENCE, pause, str(out)], cwd=root,
                              capture_output=True, text=True, timeout=60, check=True)
        assert done.stdout.strip() == "pyttsx3"  # and nothing else on stdout
        stats = sox_stat(out)
        assert stats["length"] == pytest.approx(reference["length"], abs=0.15), index
        assert stats["rms"] == pytest.approx(reference["rms"], rel=0.15), index


def test_decomposed_vietnamese_is_spoken_like_composed(tmp_path: Path) -> None:
    """Text typed on some phones arrives decomposed (NFD); espeak-ng reads that differently."""
    import unicodedata

    renderer = SpeechRenderer("vi")
    composed = sox_stat(renderer.render(SENTENCE, tmp_path / "nfc.wav"))
    decomposed = sox_stat(renderer.render(unicodedata.normalize("NFD", SENTENCE), tmp_path / "nfd.wav"))
    assert decomposed["length"] == pytest.approx(composed["length"], abs=0.03)
