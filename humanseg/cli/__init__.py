"""`python -m humanseg COMMAND ...`: one module per subcommand under humanseg/cli/.

Each command module defines `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`.
Modules are imported only when their command runs, so `--help` stays fast and light.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, str] = {
    "evaluate": "humanseg.cli.evaluate",
    "segment": "humanseg.cli.segment",
    "anonymise": "humanseg.cli.anonymise",
    "models": "humanseg.cli.models",
    "train": "humanseg.cli.train",
    "export": "humanseg.cli.export",
    "site-benchmark": "humanseg.cli.site_benchmark",
}

#: Each command's output options: (argparse dest, option, "dir" or "file"). They are checked before the command
#: runs, so an output path that is a file (or lies under one) fails in a second, not after the work is done.
OUTPUTS: dict[str, list[tuple[str, str, str]]] = {
    "evaluate": [("json", "--json", "file"), ("chart", "--chart", "file"), ("save_masks", "--save-masks", "dir")],
    "segment": [("out", "--out", "dir")],
    "anonymise": [("out", "--out", "file")],
    "train": [("out", "--out", "dir")],
    "export": [("onnx", "--onnx", "file"), ("rembg", "--rembg", "file")],
    "site-benchmark": [("out", "--out", "dir")],
}


def check_outputs(command: str, args: argparse.Namespace) -> None:
    """Refuse (``ValueError``) an output path of ``command`` that cannot be written (see :data:`OUTPUTS`)."""
    from humanseg.checks import check_output_dir, check_output_file

    for dest, option, kind in OUTPUTS.get(command, []):
        value = getattr(args, dest, None)
        if value is not None:
            (check_output_dir if kind == "dir" else check_output_file)(value, option)


def check_clip_options(args: argparse.Namespace) -> None:
    """The frame-range and margin options shared by ``segment`` and ``anonymise``: refused with the bad value."""
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.step < 1:
        raise ValueError(f"--step must be >= 1, got {args.step}")
    if args.margin is not None and args.margin < 0:
        raise ValueError(f"--margin must be >= 0 pixels, got {args.margin}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m humanseg", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if command is not None and name != command:
            sub.add_parser(name, help=f"(see `python -m humanseg {name} --help`)")
            continue
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if a in COMMANDS), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command])
    try:
        check_outputs(args.command, args)
        return int(module.run(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        # User mistakes: one clear line, no traceback.
        print(f"error: {err}", file=sys.stderr)
        return 2
