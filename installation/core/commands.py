"""Running a parsed command: the one place where user mistakes become one line and an exit code (the
`installation` command and the trainer's own `python -m` entry both end here)."""

from __future__ import annotations

import argparse
import logging
import sys

from installation.core.errors import UserError


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
    except KeyboardInterrupt as e:  # the trainer's Interrupted says where it stopped
        print(f"interrupted: {e}" if str(e) else "interrupted", file=sys.stderr)
        return 130
