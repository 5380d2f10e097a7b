"""The ``nanoquote`` command: one subcommand per feature, each living beside its code.

Every feature module exposes ``configure(parser)`` and ``run(args) -> int``; this file
only maps names to modules, imported lazily so that ``nanoquote replay`` never pays for
importing the hardware toolchain.

How every command fails (docs/replay.md, "Errors"): a bad argument is a usage error
(argparse, exit 2); a file that cannot be read or written is one line on stderr naming
the file and the reason; output into a closed pipe (``| head``) ends quietly with exit
status 141 (128 + SIGPIPE, what a shell reports for a tool killed by the signal).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["COMMANDS", "EXIT_BROKEN_PIPE", "STDOUT", "count", "describe_os_error", "write_text_file",
           "write_stdout", "main"]

#: name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "replay": ("nanoquote.host.apps.replay_cli", "replay JSON Lines events through a strategy"),
    "demo": ("nanoquote.host.apps.demo", "trade a simulated market through the strategy on a backend, with a report"),
    "verilog": ("nanoquote.hw.verilog", "write the quote pipeline (or the top level) as Verilog"),
    "conformance": ("nanoquote.sim.conformance.cli", "check the pipeline against the golden model"),
    "regs": ("nanoquote.hw.contract.regs_cli", "print the register map as markdown, a C header or JSON"),
    "build": ("nanoquote.hw.fpga.build_cli", "synthesize, place and route for an ECP5 FPGA"),
    "bench": ("nanoquote.sim.bench", "measure the figures of docs/performance.md"),
    "mutate": ("nanoquote.sim.mutation", "how many gateware mutants the tests kill"),
    "sweep": ("nanoquote.sim.sweep", "run seeded sessions over a grid of configurations on Dask"),
}

#: exit status after output into a closed pipe
EXIT_BROKEN_PIPE = 141


def count(text: str) -> int:
    """argparse ``type`` of a count (vectors, updates, levels, ...): an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def describe_os_error(exc: OSError, path: object = None) -> str:
    """``'FILE': reason`` for an I/O failure (the file the error names, else ``path``)."""
    name = exc.filename if exc.filename is not None else path
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{str(name)!r}: {reason}" if name is not None else reason


def write_text_file(path: Path, text: str, *, make_parents: bool = False) -> None:
    """Write ``text`` to ``path``; any failure is an ``OSError`` naming the file."""
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


#: how an error names standard output
STDOUT = "<stdout>"


def write_stdout(text: str) -> None:
    """Write ``text`` to standard output and flush; a failure (other than a closed pipe,
    which :func:`main` ends quietly) is an ``OSError`` naming ``<stdout>``."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write: {exc.strerror}", STDOUT) from None


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the flush at exit cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. captured in tests)
        pass


def _run(prog: str, fn: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a command; a closed pipe or an unhandled I/O failure ends it cleanly."""
    try:
        try:
            code = int(fn(args) or 0)
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            print(f"{prog}: error: {describe_os_error(exc)}", file=sys.stderr)
            code = 2
        try:
            sys.stdout.flush()  # here, not at exit, so that a failure is seen in this try
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            print(f"{prog}: error: cannot write {describe_os_error(exc, STDOUT)}", file=sys.stderr)
            _silence_stdout()
            return 2
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nanoquote", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Import only the module of the chosen command when it is known, so that a
    # missing optional toolchain never breaks unrelated commands.
    if argv and argv[0] in COMMANDS:
        module_name, help_text = COMMANDS[argv[0]]
        module = importlib.import_module(module_name)
        prog = f"nanoquote {argv[0]}"
        parser = argparse.ArgumentParser(prog=prog, description=help_text)
        module.configure(parser)
        return _run(prog, module.run, parser.parse_args(argv[1:]))
    args = build_parser().parse_args(argv)
    return _run(f"nanoquote {args.command}", args._run, args)


if __name__ == "__main__":
    sys.exit(main())
