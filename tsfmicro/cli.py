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
    from tsfmicro import _study_cli as study_cli
    from tsfmicro import explore
    from tsfmicro.data import _cli as data_cli
    from tsfmicro.engine import _cli as engine_cli

    data_cli.register(subcommands)    # synth, preprocess
    engine_cli.register(subcommands)  # train, evaluate, report
    study_cli.register(subcommands)   # plan, run
    explore.register(subcommands)     # explore
    return parser


def main(argv: list[str] | None = None) -> int:
    from tsfmicro.engine.execute import ExecutorError, FoldFailed
    from tsfmicro._io import NoSpaceLeft
    from tsfmicro.engine.folds import RunFolderNotWritable

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (FileNotFoundError, ValueError, KeyError, ExecutorError, RunFolderNotWritable, NoSpaceLeft) as error:
        # User errors (bad paths, unknown names, malformed files, executor settings, a runs folder
        # that cannot be written, a full disk) are reported plainly; anything else is a bug and keeps
        # its traceback.
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"tsfmicro {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:  # Ctrl-C outside training (face cropping, planning): no traceback
        kept = str(error) or "finished work is kept"  # tsfmicro.data.cache.CroppingInterrupted says what
        print(f"tsfmicro {args.command}: interrupted; {kept}: run the same command to continue", file=sys.stderr)
        return 130
    except FoldFailed as error:  # names the fold and why; finished folds are kept
        print(f"tsfmicro {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
