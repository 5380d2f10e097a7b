"""``nanoquote regs``: generated artifacts are current, compile, and round-trip the map."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from nanoquote.hw.contract.register_map import MAGIC, VERSION_MAJOR, VERSION_MINOR, Access
from nanoquote.hw.contract.regs_cli import build_map, render

from nanoquote.cli import main

ROOT = Path(__file__).resolve().parents[3]
REGISTERS_MD = ROOT / "docs" / "registers.md"


def test_docs_registers_md_is_current():
    expected = render("markdown")
    assert REGISTERS_MD.read_text() == expected, (
        "docs/registers.md is stale: regenerate it with "
        "`nanoquote regs --format markdown --output docs/registers.md`")


def test_build_latency_comes_from_the_pipeline():
    from nanoquote.hw.gateware.pipeline import QuotePipeline

    assert build_map()["BUILD"].field("latency").reset == QuotePipeline.LATENCY


@pytest.mark.parametrize("fmt", ["markdown", "c", "json"])
def test_command_writes_the_rendered_text(tmp_path, capsys, fmt):
    out = tmp_path / "sub" / f"regs.{fmt}"
    assert main(["regs", "--format", fmt, "--max-levels", "4", "--output", str(out)]) == 0
    assert out.read_text() == render(fmt, max_levels=4)
    assert main(["regs", "--format", fmt, "--max-levels", "4"]) == 0
    assert capsys.readouterr().out == render(fmt, max_levels=4)


def test_command_rejects_a_bad_build_parameter(capsys):
    assert main(["regs", "--max-levels", "17"]) == 2
    assert "max_levels" in capsys.readouterr().err


@pytest.mark.parametrize("max_levels", [1, 8, 16])
def test_json_round_trips_the_map(max_levels):
    rmap = build_map(max_levels)
    data = json.loads(render("json", max_levels))
    assert data["magic"] == MAGIC and data["version"] == [VERSION_MAJOR, VERSION_MINOR]
    assert (data["max_levels"], data["price_bits"], data["size"]) == (max_levels, 31, rmap.size)
    assert data["latency"] == rmap.latency == rmap["BUILD"].field("latency").reset
    assert [r["name"] for r in data["registers"]] == [r.name for r in rmap]
    for reg, item in zip(rmap, data["registers"], strict=True):
        assert (item["address"], item["words"], Access(item["access"]), item["staged"], item["group"],
                item["doc"]) == (reg.address, reg.words, reg.access, reg.staged, reg.group, reg.doc)
        assert item["counts_per"] == (reg.counter.source if reg.counter else None)
        fields = [(f["name"], f["offset"], f["width"], f["reset"], f["signed"], f["doc"],
                   tuple(f["commit_range"]) if f["commit_range"] else None, f["set_by"])
                  for f in item["fields"]]
        assert fields == [(f.name, f.offset, f.width, f.reset, f.signed, f.doc, f.commit_range, f.set_by)
                          for f in reg.fields]


def _compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (install build-essential)")
    return cc


# A small driver-style use of the header: field insert/extract and word addressing.
_PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
#include "nanoquote_regs.h"

#define FIELD_SET(reg, fld, v) \
    (((uint32_t)(v) << NQ_##reg##_##fld##_SHIFT) & NQ_##reg##_##fld##_MASK)
#define FIELD_GET(reg, fld, w) \
    (((uint32_t)(w) & NQ_##reg##_##fld##_MASK) >> NQ_##reg##_##fld##_SHIFT)

static uint32_t regs[NQ_MAP_SIZE / 4];

int main(void) {
    regs[NQ_MAGIC_ADDR / 4] = NQ_MAGIC;
    regs[NQ_ORDER_ADDR / 4] = FIELD_SET(ORDER, ORDER_SIZE, 5) | FIELD_SET(ORDER, NUM_LEVELS, 3);
    regs[NQ_CONTROL_ADDR / 4] = NQ_CONTROL_COMMIT_MASK;
    printf("magic %lu\n", (unsigned long)regs[NQ_MAGIC_ADDR / 4]);
    printf("order %lu\n", (unsigned long)regs[NQ_ORDER_ADDR / 4]);
    printf("num_levels %lu\n", (unsigned long)FIELD_GET(ORDER, NUM_LEVELS, regs[NQ_ORDER_ADDR / 4]));
    printf("control %lu\n", (unsigned long)regs[NQ_CONTROL_ADDR / 4]);
    printf("skew_coef_words %lu\n", (unsigned long)NQ_SKEW_COEF_WORDS);
    printf("max_levels %lu\n", (unsigned long)NQ_MAX_LEVELS);
    return 0;
}
"""


def _compile_and_run(tmp_path: Path, source: str, header: str) -> str:
    (tmp_path / "nanoquote_regs.h").write_text(header)
    (tmp_path / "prog.c").write_text(source)
    exe = tmp_path / "prog"
    build = subprocess.run(
        [_compiler(), "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", str(tmp_path),
         str(tmp_path / "prog.c"), "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout


def test_c_header_compiles_and_its_macros_work(tmp_path):
    rmap = build_map()
    out = dict(line.split() for line in _compile_and_run(tmp_path, _PROGRAM, render("c")).splitlines())
    order = rmap["ORDER"]
    assert int(out["magic"]) == MAGIC
    assert int(out["order"]) == order.pack(order_size=5, num_levels=3)
    assert int(out["num_levels"]) == 3
    assert int(out["control"]) == rmap["CONTROL"].pack(commit=1)
    assert int(out["skew_coef_words"]) == rmap["SKEW_COEF"].words == 3
    assert int(out["max_levels"]) == rmap.max_levels


def test_c_header_matches_the_map_everywhere(tmp_path):
    """Every address, size, shift, width and mask the header defines equals the map's."""
    rmap = build_map(16)
    lines, expected = [], []
    for reg in rmap:
        lines.append(f'printf("%lu %lu\\n", (unsigned long)NQ_{reg.name}_ADDR, (unsigned long)NQ_{reg.name}_WORDS);')
        expected.append(f"{reg.address} {reg.words}")
        for f in reg.fields:
            key = f"NQ_{reg.name}_{f.name.upper()}"
            mask = f"(unsigned long){key}_MASK" if f.offset + f.width <= 32 else "0ul"
            lines.append(f'printf("%lu %lu %lu\\n", (unsigned long){key}_SHIFT, (unsigned long){key}_WIDTH, {mask});')
            expected.append(f"{f.offset} {f.width} {f.mask if f.offset + f.width <= 32 else 0}")
    source = ('#include <stdio.h>\n#include "nanoquote_regs.h"\nint main(void) {\n'
              + "\n".join(lines) + '\nprintf("%lu\\n", (unsigned long)NQ_MAP_SIZE);\nreturn 0;\n}\n')
    expected.append(str(rmap.size))
    assert _compile_and_run(tmp_path, source, render("c", 16)).splitlines() == expected

