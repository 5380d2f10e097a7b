"""``nanoquote bench``: every figure is measured and reported, fmax comes from the build."""

from __future__ import annotations

import json

import pytest
from nanoquote.hw.fpga.flow import ooc_verilog, verilog_sha
from nanoquote.hw.gateware.pipeline import QuotePipeline
from nanoquote.sim.bench import read_build, rows

from nanoquote.cli import main


def _build_json(tmp_path, fmax=212.5, passed=True, top="pipeline", sha="ab"):
    path = tmp_path / "build.json"
    path.write_text(json.dumps({
        "design": {"top": top, "class": "nanoquote.hw.gateware.pipeline.QuotePipeline", "verilog_sha256": sha,
                   "max_levels": 8, "price_bits": 31},
        "target": {"device": "LFE5UM5G-85F", "speed": 8, "package": "CABGA381", "freq_mhz": 200.0},
        "fmax_mhz": {"clk": fmax}, "fmax_by_seed": {"1": fmax}, "pass": passed,
        "latency": {"cycles": 5, "ns_at_fmax": round(5000 / fmax, 2), "ns_at_target": 25.0},
    }))
    return path


def _result(build):
    return {
        "sizes": {"golden_events": 10}, "golden_us_per_refresh": {"exchange": 40.0, "legacy": 30.0},
        "model": {"updates_per_s": 2_000_000, "updates": 1000},
        "bulk": {"wall_vectors_per_s": 2_000_000, "cpu_vectors_per_s": 1_000_000, "vectors": 10,
                 "golden_checked": 1, "mismatches": 0},
        "verilator": {"vectors_per_s": 9000, "wall_vectors_per_s": 3000, "vectors": 10, "mismatches": 0},
        "amaranth": {"vectors_per_s": 900, "wall_vectors_per_s": 800, "vectors": 10, "mismatches": 0},
        "latency_cycles": 5, "build": build,
    }


def test_read_build(tmp_path):
    assert read_build(tmp_path / "missing.json") is None
    build = read_build(_build_json(tmp_path), check_current=False)
    assert build["fmax_mhz"] == {"clk": 212.5} and build["pass"] and build["latency_ns_at_fmax"] == 23.53
    assert build["current"] is None


@pytest.mark.build  # elaborates the out-of-context wrapper as the build flow does
def test_a_build_of_another_design_is_flagged(tmp_path):
    _, text = ooc_verilog(QuotePipeline())
    assert read_build(_build_json(tmp_path, sha=verilog_sha(text)))["current"] is True
    build = read_build(_build_json(tmp_path, sha="0123"))
    assert build["current"] is False
    how = {name: how for name, _, how in rows(_result(build))}
    assert "STALE" in how["fmax"]


def test_rows_say_not_built_without_a_build():
    table = dict((name, value) for name, value, _ in rows(_result(None)))
    assert table["fmax"] == "not built"
    assert "tick-to-quote latency" not in table


def test_rows_give_fmax_and_latency_in_ns(tmp_path):
    build = read_build(_build_json(tmp_path, 190.0, False), check_current=False)
    table = dict((name, value) for name, value, _ in rows(_result(build)))
    assert table["fmax"] == "190.0 MHz (misses 200)"
    assert table["tick-to-quote latency"] == "26.3 ns"
    assert table["pipeline latency"] == "5 cycles"


@pytest.mark.rtl
def test_quick_bench_measures_every_figure(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--quick", "--json", str(out), "--build-json", str(_build_json(tmp_path))])
    result = json.loads(out.read_text())
    assert code == 0, result
    assert result["golden_us_per_refresh"]["exchange"] > 0 and result["golden_us_per_refresh"]["legacy"] > 0
    assert result["model"]["updates_per_s"] > 0
    for backend in ("verilator", "amaranth"):
        assert result[backend]["vectors_per_s"] > 0 and result[backend]["mismatches"] == 0
    bulk = result["bulk"]
    assert bulk["vectors"] == 20_000 and bulk["mismatches"] == 0 and bulk["golden_checked"] >= 1
    assert bulk["wall_vectors_per_s"] > 0 and bulk["cpu_vectors_per_s"] > 0
    assert result["latency_cycles"] >= 1
    assert result["build"]["fmax_mhz"] == {"clk": 212.5}
    assert result["machine"]["cores"] >= 1 and result["machine"]["packages"]["amaranth"]
    printed = capsys.readouterr().out
    assert "vectors/s" in printed and "212.5 MHz" in printed
