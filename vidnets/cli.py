"""The ``vidnets`` command. Each subcommand is one call into the library.

Subcommands live beside the code they drive: every module in ``COMMAND_MODULES`` has a
``register(subparsers)`` function that adds its parsers and sets ``func`` to the callable that
runs them (``func(args) -> int`` exit status). Heavy imports happen inside those callables so
``vidnets --help`` stays quick.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMAND_MODULES = (
    "vidnets.models.commands",      # models
    "vidnets.data.commands",        # check, synth
    "vidnets.flow.commands",        # flow extract | show
    "vidnets.engine.commands",      # train, test, predict, demo
    "vidnets.engine.method_commands",  # fuse, features, svm, transfer
)


def build_parser() -> argparse.ArgumentParser:
    from vidnets import __version__

    parser = argparse.ArgumentParser(
        prog="vidnets",
        description="Video action recognition: C3D, Two-Stream, TSN, P3D, T3D, Res3D.",
    )
    parser.add_argument("--version", action="version", version=f"vidnets {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log messages (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that part of the tool is not installed in this build
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    level = logging.ERROR if args.quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
