"""Everything wrong with a centre file, at once, including what would only break at run time.

:func:`luot.config.load_config` refuses a file at start-up; this module is what ``luot
check-config`` adds on top, so an operator fixes the file in one go before the centre opens:

- every validation problem, not just those of the first broken section: a section that fails its
  own checks is set aside and the file is validated again, so the cross-field problems (a counter
  serving an unknown group, a repeated letter) show up in the same report;
- what the schema cannot know: the web server and the broker on the same port, a voice or a
  language espeak-ng on this machine cannot speak (read from ``espeak-ng --voices``), a kiosk
  printer given as a path that is not there or not writable.

Each problem carries its key, what is wrong and how to fix it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from luot.config import CentreConfig, HttpSettings, MqttSettings, VoiceSettings, error_items

SAMPLE = "assets/centre.sample.toml"
OPTIONAL_SECTIONS = ("hours", "queue", "priority_classes", "devices", "mqtt", "http", "storage", "voice",
                     "region", "metrics")
LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"}


@dataclass(frozen=True)
class Problem:
    key: str
    message: str
    fix: str
    severity: str = "error"  # "warning": worth knowing, the centre still runs

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


# ------------------------------------------------------------------------------ validation problems
def _fix_for(item: dict[str, Any]) -> tuple[str, str]:
    """(message, fix) of one validation item: the fix is the part after "; " when the validator
    wrote one, else what pydantic's error type asks for."""
    message, ctx, kind = item["message"], item.get("ctx") or {}, item["type"]
    if kind == "extra_forbidden":
        return "unknown key (a typo?)", f"remove it or correct its spelling; {SAMPLE} lists every key"
    if kind == "missing":
        return "required key is missing", f"add it (see {SAMPLE} for an example)"
    if "; " in message:
        what, _, fix = message.partition("; ")
        return what, fix
    if item.get("got") is not None:
        message = f"{message} (got {item['got']!r})"
    fixes = {
        "greater_than": f"use a number greater than {ctx.get('gt')}",
        "greater_than_equal": f"use a number of at least {ctx.get('ge')}",
        "less_than_equal": f"use a number of at most {ctx.get('le')}",
        "less_than": f"use a number below {ctx.get('lt')}",
        "string_pattern_mismatch": "use only the characters the key allows (lowercase letters, digits, '-')",
        "literal_error": f"use one of {ctx.get('expected')}",
        "too_short": "give at least one entry",
    }
    return message, fixes.get(kind, f"correct the value (see {SAMPLE})")


def validation_problems(data: dict[str, Any]) -> tuple[CentreConfig | None, list[Problem]]:
    """The validated config (None if invalid) and every validation problem found.

    Pydantic runs the cross-field checks only once every field is valid; so a failing optional
    section is dropped and the rest validated again, until no new problem appears."""
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    trial = dict(data)
    config: CentreConfig | None = None
    for _ in range(len(OPTIONAL_SECTIONS) + 1):
        try:
            validated = CentreConfig.model_validate(trial)
        except ValidationError as error:
            items = error_items(error)
        else:
            if trial == data:
                config = validated
            break
        for item in items:
            message, fix = _fix_for(item)
            if (item["key"], message) not in seen:
                seen.add((item["key"], message))
                problems.append(Problem(item["key"], message, fix))
        failing = {_section(item["key"]) for item in items} & set(OPTIONAL_SECTIONS) & set(trial)
        if not failing:
            break
        for section in failing:
            trial.pop(section)
    return config, problems


def _section(key: str) -> str:
    return key.split(".")[0].split("[")[0]


def _section_model(data: dict[str, Any], name: str, model: type[BaseModel]) -> Any:
    """One section validated on its own (its defaults when absent), or None if it is invalid
    (already reported): run-time checks still look at the sections that are fine."""
    try:
        return model.model_validate(data.get(name, {}))
    except ValidationError:
        return None


# ------------------------------------------------------------------------------ run-time problems
def port_problems(http: HttpSettings | None, mqtt: MqttSettings | None) -> list[Problem]:
    """The web server and a broker on this machine cannot listen on the same port."""
    if http is None or mqtt is None or http.port == 0 or http.port != mqtt.port:
        return []
    local_broker = mqtt.host is None or mqtt.host in LOOPBACK or mqtt.host == http.host
    if not local_broker:
        return []
    who = "the broker the server starts" if mqtt.host is None else f"the broker at {mqtt.host}"
    return [Problem("http.port", f"port {http.port} is also mqtt.port, {who}: the second to start cannot listen",
                    f"give them different ports, e.g. http.port = 8080 and mqtt.port = {mqtt.port if mqtt.port != 8080 else 18830}")]


@dataclass(frozen=True)
class EspeakVoice:
    language: str
    file: str

    def names(self) -> set[str]:
        """What a config may call this voice (as luot/speech.py resolves it)."""
        return {self.language, self.file, self.file.rsplit("/", 1)[-1]}


def espeak_voices(run: Callable[[list[str]], str] | None = None) -> list[EspeakVoice] | None:
    """The voices ``espeak-ng --voices`` lists (lower case), or None when espeak-ng is missing.

    MBROLA voices (``mb/``) are left out: they need extra packages the announcer does not use."""
    if run is None:
        if shutil.which("espeak-ng") is None:
            return None

        def run(argv: list[str]) -> str:
            return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True).stdout

    try:
        text = run(["espeak-ng", "--voices"])
    except (OSError, subprocess.SubprocessError):
        return None
    voices = []
    for line in text.splitlines()[1:]:  # Pty Language Age/Gender VoiceName File Other-languages
        parts = line.split()
        if len(parts) >= 5 and not parts[4].startswith("mb/"):
            voices.append(EspeakVoice(parts[1].lower(), parts[4].lower()))
    return voices


def voice_problems(voice: VoiceSettings | None, languages: list[str] | None,
                   voices: list[EspeakVoice] | None) -> list[Problem]:
    """The announcer speaks Vietnamese with ``voice.voice`` and, when ``voice.english``, English with
    espeak-ng's "en": each must be a voice this machine has, and the first must be Vietnamese."""
    if voice is None:
        return []
    if voices is None:
        return [Problem("voice.voice", "espeak-ng is not installed here, so the voices cannot be checked "
                        "and this machine cannot announce calls",
                        "install it (apt-get install espeak-ng) on the machine that announces, and check again there",
                        "warning")]
    problems = []
    wanted = voice.voice.strip().lower()
    found = [v for v in voices if wanted in v.names()]
    vietnamese = sorted({v.file.rsplit("/", 1)[-1] for v in voices if v.language.startswith("vi")})
    if not found:
        problems.append(Problem("voice.voice", f"espeak-ng has no voice {voice.voice!r} (espeak-ng --voices)",
                                f"use one of its Vietnamese voices: {', '.join(vietnamese) or 'none installed'}"))
    elif not any(v.language.startswith("vi") for v in found):
        problems.append(Problem("voice.voice", f"voice {voice.voice!r} speaks {found[0].language}, not Vietnamese: it would "
                                "read the Vietnamese calls with the wrong pronunciation",
                                f"use a Vietnamese voice: {', '.join(vietnamese)}"))
    if voice.english and not any("en" in v.names() for v in voices):
        problems.append(Problem("voice.english", "espeak-ng has no English voice ('en') to say the calls in English",
                                "install espeak-ng-data with English, or set english = false"))
    for index, language in enumerate(languages or []):
        if not any(v.language == language or v.language.startswith(language + "-") for v in voices):
            problems.append(Problem(f"centre.languages[{index}]", f"espeak-ng cannot speak {language!r}",
                                    f"remove {language!r} or install its espeak-ng voice"))
    if voice.english and languages is not None and "en" not in languages:
        problems.append(Problem("voice.english", "calls are announced in English but 'en' is not in centre.languages "
                                "(screens and tickets stay Vietnamese only)",
                                "add \"en\" to centre.languages, or set english = false", "warning"))
    return problems


def printer_problems(targets: list[str]) -> list[Problem]:
    """Kiosk printer targets (as ``luot kiosk --printer``) that are files: is the path there and
    writable? A bare path is what an operator often types; the kiosk would refuse it."""
    problems = []
    for index, target in enumerate(targets):
        key = f"--printer[{index}]"
        kind, _, rest = target.partition(":")
        if kind in ("none", "network", "usb"):
            continue
        if kind != "file" and target.startswith("/"):
            problems.append(Problem(key, f"{target!r} is a path without its kind; the kiosk would refuse it",
                                    f"write file:{target}"))
            rest = target
        elif kind != "file" or not rest:
            problems.append(Problem(key, f"printer target {target!r} not understood",
                                    "use file:/dev/usb/lp0, network:HOST:9100, usb:0xVID:0xPID or none"))
            continue
        path = Path(rest)
        if not path.exists():
            problems.append(Problem(key, f"{path} does not exist: tickets could not be printed",
                                    "plug in and power the printer, check `ls -l /dev/usb/`, or correct the path"))
        elif path.is_dir():
            problems.append(Problem(key, f"{path} is a directory, not a printer device",
                                    "give the printer's device file, e.g. file:/dev/usb/lp0"))
        elif not os.access(path, os.W_OK):
            problems.append(Problem(key, f"{path} is not writable by this user",
                                    "add the kiosk's user to the group that owns it (usually lp), then log in again"))
    return problems


# ------------------------------------------------------------------------------ all of it
def check(data: dict[str, Any], printers: list[str] | None = None,
          voices: list[EspeakVoice] | None | str = "detect") -> tuple[CentreConfig | None, list[Problem]]:
    """Every problem of the centre file ``data`` (parsed TOML): validation, ports, voices, printers."""
    config, problems = validation_problems(data)
    centre = data.get("centre") if isinstance(data.get("centre"), dict) else {}
    languages = centre.get("languages", ["vi", "en"])
    languages = languages if isinstance(languages, list) and all(isinstance(x, str) for x in languages) else None
    problems += port_problems(_section_model(data, "http", HttpSettings), _section_model(data, "mqtt", MqttSettings))
    problems += voice_problems(_section_model(data, "voice", VoiceSettings), languages,
                               espeak_voices() if voices == "detect" else voices)  # type: ignore[arg-type]
    problems += printer_problems(printers or [])
    return config, problems
