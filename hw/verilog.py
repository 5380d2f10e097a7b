"""``nanoquote verilog OUT.v``: write the quote pipeline as Verilog (amaranth.back.verilog)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nanoquote.hw.contract.coefficients import DEFAULT_MAX_LEVELS, DEFAULT_PRICE_BITS

__all__ = ["TOPLEVEL", "pipeline_verilog", "configure", "run"]

#: Module name of the generated top level (also the cocotb ``hdl_toplevel``).
TOPLEVEL = "quote_pipeline"


def pipeline_verilog(
    max_levels: int = DEFAULT_MAX_LEVELS, price_bits: int = DEFAULT_PRICE_BITS,
    name: str = TOPLEVEL, emit_src: bool = True,
) -> str:
    """Verilog text of ``QuotePipeline(max_levels, price_bits)`` with top module ``name``.

    ``emit_src=False`` leaves out the Python source locations, so the text (and a
    simulator build keyed on it) only changes when the design does.
    """
    from amaranth.back import verilog
    from nanoquote.hw.gateware.pipeline import QuotePipeline

    return verilog.convert(QuotePipeline(max_levels, price_bits), name=name, emit_src=emit_src)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, metavar="OUT.v", help="Verilog file to write ('-': stdout)")
    parser.add_argument("--max-levels", type=int, default=DEFAULT_MAX_LEVELS,
                        help=f"build-time maximum of num_levels (default {DEFAULT_MAX_LEVELS})")
    parser.add_argument("--price-bits", type=int, default=DEFAULT_PRICE_BITS,
                        help=f"price width; prices are 1..2**bits-1 (default {DEFAULT_PRICE_BITS})")
    parser.add_argument("--name", default=TOPLEVEL, help=f"top module name (default {TOPLEVEL})")


def run(args: argparse.Namespace) -> int:
    try:
        text = pipeline_verilog(args.max_levels, args.price_bits, args.name)
    except ValueError as exc:  # out-of-range build parameters
        print(f"nanoquote verilog: {exc}", file=sys.stderr)
        return 2
    if str(args.out) == "-":
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        print(f"wrote {args.out} ({len(text.splitlines())} lines, top module {args.name})")
    return 0
