"""The `installation` command. Each command lives in the module that owns its work, which registers
it with `add_commands(subparsers)`; heavy imports (torch, GL) happen inside the command, not here."""

from __future__ import annotations

import argparse
import importlib
import sys

from installation.core.commands import dispatch

# Modules that register commands, in the order `installation --help` lists them.
COMMAND_MODULES = (
    "installation.app",
    "installation.ops.showcheck",
    "installation.ops.shownew",
    "installation.ops.osc_map",
    "installation.vision.segment_cli",
    "installation.training.cli",
    "installation.ops.soak",
    "installation.ops.service",
    "installation.ops.state_reset",
    "installation.ops.bench",
    "installation.ops.latency_test",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="installation", description="A real-time runtime for camera-driven image-to-image installations.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after the first `--` belongs to a child command (supervise -> run), split off before
    # argparse sees it: a REMAINDER positional would also swallow the command's own options after SHOW.
    passed: list[str] | None = None
    if "--" in argv:
        cut = argv.index("--")
        argv, passed = argv[:cut], argv[cut + 1:]
    args, unknown = parser.parse_known_args(argv)
    takes_child_flags = hasattr(args, "run_args")
    if unknown:
        hint = " (the show's own flags go after --: supervise SHOW -- --headless)" if takes_child_flags else ""
        parser.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    if passed is not None:
        if not takes_child_flags:
            parser.error(f"`--` is only for commands that pass flags on (supervise): {' '.join(passed)}")
        args.run_args = passed
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return dispatch(args, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
