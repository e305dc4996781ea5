"""The `installation` command. Each command lives in the module that owns its work, which registers
it with `add_commands(subparsers)`; heavy imports (torch, GL) happen inside the command, not here."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .errors import UserError

# Modules that register commands, in the order `installation --help` lists them.
COMMAND_MODULES = (
    "installation.show",
    "installation.osc",
    "installation.segment",
    "installation.training.cli",
    "installation.soak",
    "installation.service",
    "installation.state",
    "installation.bench",
    "installation.latency_test",
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


def dispatch(args: argparse.Namespace, verbose: bool = False) -> int:
    """Run a parsed command: user mistakes print one line and exit 2, never a traceback."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"error: {e.render()}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # the machine's side (a device, a folder, a port): one line; -v shows where it came from
        if verbose:
            raise
        where = f" ({e.filename})" if e.filename and str(e.filename) not in str(e) else ""
        print(f"error: {e.strerror or e}{where} [{type(e).__name__}; -v for the traceback]", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
