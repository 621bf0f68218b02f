"""Where a centre's files are: its centre file and its data directory, found the same way by
every command.

Before this module each command had its own ``--data`` default, so ``luot user add`` run from
another directory (or without the server's ``--data``) silently created a second, empty
database and the new account never worked. Now there is one rule, in this order:

centre file
    ``--config FILE``; else ``$LUOT_CONFIG``; else ``/etc/luot/centre.toml`` when it exists (a box
    set up by ``luot install``); else the shipped sample centre.
data directory
    ``--data DIR``; else ``$LUOT_DATA``; else the directory of ``[storage] path`` in the centre
    file (relative to the current directory when the path is relative); else ``var``.
database
    ``<data directory>/<file name of [storage] path>``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # luot.config (pydantic) is imported when a path is asked for, not when `luot` builds its parser
    from luot.config import CentreConfig

CONFIG_ENV = "LUOT_CONFIG"
DATA_ENV = "LUOT_DATA"
SYSTEM_CONFIG = Path("/etc/luot/centre.toml")
"""Where ``luot install`` puts the centre file of a box."""
SYSTEM_DATA = Path("/var/lib/luot")
"""Where ``luot install`` puts the data of a box (database, secrets, broker files)."""
DEFAULT_DATA = Path("var")


def config_file(given: str | Path | None = None) -> Path:
    """The centre file a command should read (see the module docstring for the order)."""
    if given:
        return Path(given)
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    if SYSTEM_CONFIG.is_file():
        return SYSTEM_CONFIG
    from luot.config import DEFAULT_CONFIG

    return DEFAULT_CONFIG


def centre_config(given: str | Path | None = None) -> CentreConfig:
    """Load and validate the centre file :func:`config_file` names."""
    from luot.config import load_config

    return load_config(config_file(given))


def data_dir(given: str | Path | None, config: CentreConfig | None = None) -> Path:
    """The centre's data directory (see the module docstring for the order)."""
    if given:
        return Path(given)
    from_env = os.environ.get(DATA_ENV)
    if from_env:
        return Path(from_env)
    if config is not None:
        return Path(config.storage.path).parent
    return DEFAULT_DATA


def secrets_file(given: str | Path | None, config: CentreConfig) -> Path:
    """The device secrets file: ``given``, else ``secrets.json`` in the data directory (the one the
    server writes and reads, so a helper command never creates a second set of secrets)."""
    return Path(given) if given else data_dir(None, config) / "secrets.json"


def database_file(data: Path, config: CentreConfig) -> Path:
    """The SQLite file of the centre whose data directory is ``data``."""
    return data / Path(config.storage.path).name


def add_location_arguments(parser: argparse.ArgumentParser, data_help: str = "the centre's data directory") -> None:
    """``--config`` and ``--data`` as every command of the server box takes them, with one help text."""
    parser.add_argument("--config", help=f"centre TOML file (default: ${CONFIG_ENV}, else {SYSTEM_CONFIG} "
                                          "if present, else the sample centre)")
    parser.add_argument("--data", help=f"{data_help} (default: ${DATA_ENV}, else the directory of [storage] path)")
