"""The ``vidnets`` command. Each subcommand is one call into the library.

Subcommands live beside the code they drive: every module in ``COMMAND_MODULES`` has a
``register(subparsers)`` function that adds its parsers and sets ``func`` to the callable that
runs them (``func(args) -> int`` exit status). Heavy imports happen inside those callables so
``vidnets --help`` stays quick.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
import warnings

COMMAND_MODULES = (
    "vidnets.models.commands",  # models
    "vidnets.data.commands",  # check, synth
    "vidnets.flow.commands",  # flow extract | show
    "vidnets.engine.commands",  # train, test, predict, demo
    "vidnets.methods.commands",  # fuse, features, svm, transfer
    "vidnets.deploy.commands",  # export, serve
)


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (what is wrong, where to read more) and exit status 2.
    Sub-parsers are of the same class."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from vidnets import __version__

    parser = OneLineErrorParser(
        prog="vidnets",
        description="Video action recognition: C3D, Two-Stream, TSN, P3D, T3D, Res3D.",
    )
    parser.add_argument("--version", action="version", version=f"vidnets {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="debug messages too (-vv: also those of the libraries vidnets uses)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only (no run header or progress lines)")
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
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version or a usage error (already printed)
        return done.code if isinstance(done.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging(verbose=args.verbose, quiet=args.quiet)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - user errors become one line; anything else re-raises
        message = user_error_message(error)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2


class ConsoleHandler(logging.Handler):
    """vidnets' log records as the command's output: progress (INFO) on stdout as plain lines,
    warnings and errors on stderr as ``warning: …``. The streams are looked up per record, so
    output follows ``sys.stdout`` / ``sys.stderr`` when they are replaced (as under pytest)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            if record.levelno >= logging.WARNING:
                sys.stderr.write(f"{record.levelname.lower()}: {message}\n")
            else:
                sys.stdout.write(message + "\n")
                sys.stdout.flush()
        except Exception:  # noqa: BLE001 - logging must never end the run
            self.handleError(record)


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """What the ``vidnets`` command shows: vidnets' progress lines and warnings (``-q``: errors only,
    ``-v``: debug messages too); other libraries' warnings (``-vv``: all their messages)."""
    level = logging.ERROR if quiet else (logging.DEBUG if verbose else logging.INFO)
    logger = logging.getLogger("vidnets")
    for handler in [h for h in logger.handlers if isinstance(h, ConsoleHandler)]:
        logger.removeHandler(handler)
    logger.addHandler(ConsoleHandler())
    logger.setLevel(level)
    logger.propagate = False
    others = logging.ERROR if quiet else (logging.DEBUG if verbose >= 2 else logging.WARNING)
    logging.basicConfig(level=others, format="%(levelname)s: %(name)s: %(message)s", stream=sys.stderr)
    warnings.formatwarning = one_line_warning  # a library's warning: one line, not its file and source line
    if quiet:
        warnings.simplefilter("ignore")


def one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001 - warnings' signature
    """A Python warning as the command shows it: ``warning: <message> (<category>, <module file>)``."""
    text = " ".join(str(message).split())
    return f"warning: {text} ({category.__name__}, {os.path.basename(filename)}:{lineno})\n"


#: OSError numbers that describe the user's files or disk, not a bug: reported in one line
USER_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EEXIST,
    errno.ENAMETOOLONG,
    errno.EFBIG,
}


def user_error_message(error: BaseException) -> str | None:
    """The one-line message for an error the user can fix (bad input, a full or read-only disk), else None.

    Library code raises ``ValueError`` subclasses (``ConfigError``, ``AnnotationError``,
    ``CheckpointError`` …) for bad input, ``VideoError`` for unreadable videos and ``OSError`` for
    files and disks; the traceback of anything else is kept, since it is a bug.
    """
    from vidnets.data.video import VideoError

    if isinstance(error, OSError):
        if error.errno not in USER_ERRNOS and not isinstance(error, FileNotFoundError):
            return None
        where = f"{error.filename}: " if error.filename else ""
        hint = {
            errno.ENOSPC: "free some space or choose another --out",
            errno.EDQUOT: "free some space or choose another --out",
            errno.EROFS: "the file system is read-only; choose another --out",
            errno.EACCES: "no permission; choose another --out or fix the permissions",
            errno.EPERM: "no permission; choose another --out or fix the permissions",
        }.get(error.errno)
        text = f"{where}{error.strerror or error}" if error.strerror else str(error)
        return _one_line(f"{text}{'; ' + hint if hint else ''}")
    if isinstance(error, (ValueError, VideoError)):
        return _one_line(str(error))
    if isinstance(error, RuntimeError) and str(error).startswith("Error(s) in loading state_dict"):
        return _one_line(
            f"the checkpoint's weights do not fit this model (another model or model.kwargs?): {str(error)[:300]}"
        )
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
