"""The ``hyperlum`` command.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to the function that runs it.
A mistake by the user (bad file, bad option, bad value) ends with one line on stderr and exit
code 2, never a traceback.
"""

import argparse
import contextlib
import importlib
import math
import os
import sys
import warnings

_COMMANDS = ["fit", "eels", "info", "demo", "report"]


class UsageError(Exception):
    """A problem with what the user asked for: reported as one line, exit code 2."""


def finite_float(text):
    """An argparse ``type``: a float that is neither inf nor nan (``--tolerance nan`` fails)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def seed(text):
    """An argparse ``type``: a random seed, an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser():
    """Return the argument parser of the ``hyperlum`` command with every sub-command."""
    parser = _Parser(
        prog="hyperlum",
        description="Per-pixel peak fitting and analysis of CL and EELS spectrum images. "
        "New here? Run: hyperlum demo -o demo-out",
    )
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


@contextlib.contextmanager
def _one_line_warnings(command):
    """Show each warning as one line ``hyperlum COMMAND: warning: ...`` on stderr."""

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
        sys.stderr.write(f"hyperlum {command}: warning: {text}\n")

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv=None):
    """Run the ``hyperlum`` command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # plain `hyperlum`: say what it can do
        parser.print_help()
        return 0
    try:
        with _one_line_warnings(args.command):
            return args.func(args) or 0
    except (UsageError, ValueError, TypeError, OSError, KeyError) as err:
        sys.stderr.write(f"hyperlum {args.command}: error: {_first_line(err)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"hyperlum {args.command}: interrupted\n")
        return 130
    except Exception as err:  # a bug: one line, the traceback when asked for
        if os.environ.get("HYPERLUM_TRACEBACK"):
            raise
        sys.stderr.write(
            f"hyperlum {args.command}: internal error (please report it; HYPERLUM_TRACEBACK=1 "
            f"shows the traceback): {_reason(err)}\n"
        )
        return 1


def _reason(err):
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def _first_line(err):
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
