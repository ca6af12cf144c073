"""The ``fcn-course`` command line (also ``python -m fcn_course``).

Each sub-command lives in a module of :mod:`fcn_course.commands` that exposes
``register(subparsers)``; the module is imported only when the parser is built.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fcn_course import __version__

#: Modules of fcn_course.commands, in the order their sub-commands appear in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "exercises",
    "train",
    "bench",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="fcn-course",
        description="Fully Convolutional Networks course: train, evaluate, predict, benchmark "
        "and check exercises.",
    )
    parser.add_argument("--version", action="version", version=f"fcn-course {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"fcn_course.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
