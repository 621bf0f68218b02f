"""The ``luot`` command line: one entry point, one module per subcommand.

Every module in ``luot/commands/`` is a subcommand named after it (``check_config`` ->
``check-config``). A module has a one-line ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``, and keeps heavy imports (Kivy, the web server) inside ``run`` so that
``luot number 1023`` starts in a blink. Subcommands that map input to output print JSON so
operators can script and check them.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import luot.commands


def command_modules() -> dict[str, str]:
    """Subcommand name -> module name, discovered from the luot.commands package."""
    return {
        info.name.replace("_", "-"): f"luot.commands.{info.name}"
        for info in pkgutil.iter_modules(luot.commands.__path__)
        if not info.name.startswith("_")
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="luot", description="Luot: queue, kiosk and announcements for a public service centre")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in sorted(command_modules().items()):
        module = importlib.import_module(module_name)
        help_text = getattr(module, "HELP", None) or (module.__doc__ or "").strip().splitlines()[0]
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(_module=module_name)
        module.add_arguments(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    from luot.config import ConfigError

    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except ConfigError as error:  # a broken centre file: say what is wrong, key by key, and stop
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
