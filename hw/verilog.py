"""Verilog of the designs, and ``nanoquote verilog [--top pipeline|top] OUT.v``.

:func:`convert` is the project's one call of ``amaranth.back.verilog.convert``: the
simulator builds, the lint check, the FPGA flow and this command all go through it.
:func:`design` makes a design by name: ``pipeline`` (:class:`QuotePipeline`, top module
``quote_pipeline``) or ``top`` (:class:`NanoquoteTop`, the pipeline behind its AXI4-Lite
register block, top module ``nanoquote_top``) or ``board`` (:class:`BoardCore`, the top behind
the board's UART host link, with the simulators' cycles per bit and the board clock's
cycles per microsecond; top module ``nanoquote_board_core``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nanoquote.hw.contract.coefficients import DEFAULT_MAX_LEVELS, DEFAULT_PRICE_BITS

from nanoquote.cli import count, describe_os_error, write_stdout, write_text_file

__all__ = ["DESIGNS", "TOPLEVELS", "DEFAULT_ADDR_WIDTH", "design", "convert", "configure", "run"]

#: Design name -> module name of its generated top level (also the cocotb ``hdl_toplevel``).
TOPLEVELS = {"pipeline": "quote_pipeline", "top": "nanoquote_top", "board": "nanoquote_board_core"}
DESIGNS = tuple(TOPLEVELS)
#: Byte-address width of the top's AXI4-Lite port (``NanoquoteTop``'s default).
DEFAULT_ADDR_WIDTH = 12


def design(top: str, max_levels: int = DEFAULT_MAX_LEVELS, price_bits: int = DEFAULT_PRICE_BITS,
           addr_width: int = DEFAULT_ADDR_WIDTH):
    """A new component for design ``top`` (``pipeline``, ``top`` or ``board``).

    ``addr_width`` is the top's register-port width; the pipeline has no register port.
    """
    if top == "pipeline":
        from nanoquote.hw.gateware.pipeline import QuotePipeline

        return QuotePipeline(max_levels=max_levels, price_bits=price_bits)
    if top == "top":
        from nanoquote.hw.gateware.top import NanoquoteTop

        return NanoquoteTop(max_levels=max_levels, price_bits=price_bits, addr_width=addr_width)
    if top == "board":
        from nanoquote.hw.gateware.board import SIM_CYCLES_PER_BIT, BoardCore

        return BoardCore(SIM_CYCLES_PER_BIT, max_levels=max_levels, price_bits=price_bits,
                         addr_width=addr_width)
    raise ValueError(f"unknown design {top!r}: use {' or '.join(DESIGNS)}")


def convert(component, name: str, *, platform=None, emit_src: bool = False) -> str:
    """Verilog text of ``component`` with top module ``name``.

    ``emit_src=False`` leaves out the Python source locations, so the text (and a
    simulator build keyed on it) only changes when the design does. ``platform`` is
    what the design is elaborated for (``None``: the simulators' behavioural view).
    """
    from amaranth.back import verilog

    return verilog.convert(component, name=name, platform=platform, emit_src=emit_src)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, metavar="OUT.v", help="Verilog file to write ('-': stdout)")
    parser.add_argument("--top", choices=DESIGNS, default="pipeline",
                        help="design: the quote pipeline, or the top level with its AXI4-Lite "
                             "register block (default pipeline)")
    parser.add_argument("--max-levels", type=count, default=DEFAULT_MAX_LEVELS,
                        help=f"build-time maximum of num_levels (default {DEFAULT_MAX_LEVELS})")
    parser.add_argument("--price-bits", type=int, default=DEFAULT_PRICE_BITS,
                        help=f"price width; prices are 1..2**bits-1 (default {DEFAULT_PRICE_BITS})")
    parser.add_argument("--addr-width", type=int, default=DEFAULT_ADDR_WIDTH,
                        help=f"top: byte-address width of the register port (default {DEFAULT_ADDR_WIDTH})")
    parser.add_argument("--name", default=None,
                        help="top module name (default " + ", ".join(f"{v} for {k}" for k, v in TOPLEVELS.items())
                             + ")")


def run(args: argparse.Namespace) -> int:
    name = args.name or TOPLEVELS[args.top]
    try:
        text = convert(design(args.top, args.max_levels, args.price_bits, args.addr_width), name,
                       emit_src=True)
    except ValueError as exc:  # out-of-range build parameters
        print(f"nanoquote verilog: {exc}", file=sys.stderr)
        return 2
    if str(args.out) == "-":
        write_stdout(text)
    else:
        try:
            write_text_file(args.out, text)
        except OSError as exc:
            print(f"nanoquote verilog: error: cannot write {describe_os_error(exc, args.out)}", file=sys.stderr)
            return 2
        print(f"wrote {args.out} ({len(text.splitlines())} lines, top module {name})")
    return 0
