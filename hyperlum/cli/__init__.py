"""The ``hyperlum`` command.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to the function that runs it.
A mistake by the user (bad file, bad option, bad value) ends with one line on stderr and exit
code 2, never a traceback.
"""

import argparse
import importlib
import sys

_COMMANDS = ["fit", "eels", "info", "demo", "report"]


class UsageError(Exception):
    """A problem with what the user asked for: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser():
    """Return the argument parser of the ``hyperlum`` command with every sub-command."""
    parser = _Parser(prog="hyperlum", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv=None):
    """Run the ``hyperlum`` command; return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (UsageError, ValueError, TypeError, OSError, KeyError) as err:
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        sys.stderr.write(f"hyperlum {args.command}: error: {msg}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"hyperlum {args.command}: interrupted\n")
        return 130
