"""The ``nanoquote`` command: one subcommand per feature, each living beside its code.

Every feature module exposes ``configure(parser)`` and ``run(args) -> int``; this file
only maps names to modules, imported lazily so that ``nanoquote replay`` never pays for
importing the hardware toolchain.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["COMMANDS", "main"]

#: name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "replay": ("nanoquote.host.apps.replay_cli", "replay JSON Lines events through a strategy"),
    "demo": ("nanoquote.host.apps.demo", "run the strategy on a seeded synthetic market"),
    "verilog": ("nanoquote.hw.verilog", "write the quote pipeline (or the top level) as Verilog"),
    "conformance": ("nanoquote.sim.conformance.cli", "check the pipeline against the golden model"),
    "regs": ("nanoquote.hw.contract.regs_cli", "print the register map as markdown, a C header or JSON"),
    "build": ("nanoquote.hw.fpga.build_cli", "synthesize, place and route for an ECP5 FPGA"),
    "bench": ("nanoquote.sim.bench", "measure the figures of docs/performance.md"),
}


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
        parser = argparse.ArgumentParser(prog=f"nanoquote {argv[0]}", description=help_text)
        module.configure(parser)
        return int(module.run(parser.parse_args(argv[1:])) or 0)
    args = build_parser().parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
