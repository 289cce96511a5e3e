"""Command line: ``tsfmicro`` / ``python -m tsfmicro``.

Each subcommand lives beside the code it drives; this module only wires them together.
"""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tsfmicro",
        description="TSFmicro micro-expression recognition: data, training, evaluation, reports.",
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from tsfmicro.data import _cli as data_cli
    from tsfmicro.engine import _cli as engine_cli

    data_cli.register(subcommands)    # synth, preprocess
    engine_cli.register(subcommands)  # train, evaluate, report
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (FileNotFoundError, ValueError, KeyError) as error:
        # User errors (bad paths, unknown names, malformed files) are reported plainly;
        # anything else is a bug and keeps its traceback.
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"tsfmicro {args.command}: error: {message}", file=sys.stderr)
        return 2
