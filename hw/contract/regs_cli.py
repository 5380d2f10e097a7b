"""``nanoquote regs``: print the register map as Markdown, a C header or JSON.

Every artifact comes from :func:`nanoquote.hw.contract.register_map.register_map`; this module only
chooses the renderer and fills in the build parameters. ``BUILD.latency`` is the quote
pipeline's latency when the pipeline is importable (0 otherwise, so that the command
works on a host-only install).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nanoquote.hw.contract.register_map import (
    RegisterMap,
    register_map,
    render_c_header,
    render_json,
    render_markdown,
)

from nanoquote.cli import count, describe_os_error, write_stdout, write_text_file

__all__ = ["RENDERERS", "pipeline_latency", "build_map", "render", "configure", "run"]

#: format name -> renderer
RENDERERS = {"markdown": render_markdown, "c": render_c_header, "json": render_json}


def pipeline_latency() -> int:
    """``QuotePipeline.LATENCY`` (imported here: the other formats need no gateware)."""
    from nanoquote.hw.gateware.pipeline import QuotePipeline

    return int(QuotePipeline.LATENCY)


def build_map(max_levels: int = 8, price_bits: int = 31) -> RegisterMap:
    """The register map of a build, with the pipeline's latency in ``BUILD``."""
    return register_map(max_levels, price_bits, pipeline_latency())


def render(fmt: str, max_levels: int = 8, price_bits: int = 31) -> str:
    """The text ``nanoquote regs --format fmt`` prints."""
    return RENDERERS[fmt](build_map(max_levels, price_bits))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=sorted(RENDERERS), default="markdown",
                        help="output format (default: markdown)")
    parser.add_argument("--max-levels", type=count, default=8, metavar="N",
                        help="build-time maximum ladder levels, 1..16 (default: 8)")
    parser.add_argument("--price-bits", type=int, default=31, metavar="BITS",
                        help="price width of the build (default: 31)")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE",
                        help="write to FILE instead of standard output")


def run(args: argparse.Namespace) -> int:
    try:
        text = render(args.format, args.max_levels, args.price_bits)
    except ValueError as exc:
        print(f"nanoquote regs: {exc}", file=sys.stderr)
        return 2
    if args.output is None:
        write_stdout(text)
    else:
        try:
            write_text_file(args.output, text, make_parents=True)
        except OSError as exc:
            print(f"nanoquote regs: error: cannot write {describe_os_error(exc, args.output)}", file=sys.stderr)
            return 2
    return 0
