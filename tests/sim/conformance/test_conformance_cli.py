"""``nanoquote conformance`` and ``nanoquote verilog`` from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from nanoquote.sim.conformance import runs as conformance

from nanoquote.cli import main


def test_conformance_cli_amaranth_reports_vectors_and_mismatches(capsys) -> None:
    code = main(["conformance", "--backend", "amaranth", "--policy", "legacy",
                 "--vectors", "300", "--seed", "5", "--max-levels", "3"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "conformance: 300 vectors, 0 mismatches"
    assert code == 0
    assert "seed 5" in lines[0]


def test_conformance_cli_fails_on_mismatch(monkeypatch, capsys) -> None:
    """A corrupted expectation must be reported as mismatches with a non-zero exit."""
    real_expect = conformance.expect

    def corrupted(segments, widths):
        exp = real_expect(segments, widths)
        exp.golden[3] ^= 1 << 70  # flip one price bit of vector 3
        return exp

    monkeypatch.setattr(conformance, "expect", corrupted)
    code = main(["conformance", "--backend", "amaranth", "--policy", "exchange",
                 "--vectors", "40", "--seed", "9", "--max-levels", "2"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.strip().splitlines()[-1] == "conformance: 40 vectors, 1 mismatches"
    assert "--seed 9" in out


def test_verilog_cli_writes_the_pipeline(tmp_path: Path) -> None:
    out = tmp_path / "q.v"
    assert main(["verilog", str(out), "--max-levels", "2"]) == 0
    text = out.read_text()
    assert "module quote_pipeline(" in text and "o__payload" in text


@pytest.mark.parametrize("argv", [["verilog", "-", "--max-levels", "0"]])
def test_verilog_cli_rejects_bad_parameters(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "nanoquote.cli", *argv], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "--max-levels" in proc.stderr and "Traceback" not in proc.stderr
