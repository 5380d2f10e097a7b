"""Every ``nanoquote`` command fails cleanly: bad counts are usage errors, I/O failures are
one line on stderr naming the file and the reason, a closed pipe ends quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nanoquote.cli import main

ROOT = Path(__file__).resolve().parents[1]


def nanoquote(*argv: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nanoquote.cli", *argv], capture_output=True, text=True,
                          input=stdin, timeout=timeout, cwd=ROOT)


def assert_one_clean_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


# -- counts below one are usage errors ------------------------------------------------------


@pytest.fixture
def no_work(monkeypatch):
    """Fail loudly if a command gets past its argument parsing."""
    from nanoquote.sim import bench
    from nanoquote.sim.conformance import cli as conformance_cli

    def refuse(*_args, **_kwargs):
        raise AssertionError("the command ran despite a bad count")

    monkeypatch.setattr(conformance_cli, "run_conformance", refuse)
    monkeypatch.setattr(bench, "run_bench", refuse)
    monkeypatch.setattr("nanoquote.host.apps.demo.run_demo", refuse)


@pytest.mark.parametrize("argv", [
    ["conformance", "--backend", "amaranth", "--vectors", "0"],
    ["conformance", "--backend", "amaranth", "--vectors", "-5"],
    ["conformance", "--backend", "amaranth", "--chunk", "0"],
    ["conformance", "--backend", "amaranth", "--max-levels", "0"],
    ["demo", "--events", "-5"],
    ["demo", "--events", "0"],
    ["regs", "--max-levels", "0"],
    ["verilog", "-", "--max-levels", "-1"],
    ["bench", "--verilator-vectors", "0"],
    ["bench", "--amaranth-vectors", "-3"],
    ["demo", "--events", "many"],
])
def test_counts_below_one_are_usage_errors(no_work, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    option = next(a for a in argv if a.startswith("--") and a != "--backend")
    assert exc.value.code == 2 and out == ""
    assert f"argument {option}" in err and "must be an integer >= 1" in err


# -- I/O failures ---------------------------------------------------------------------------


def test_replay_file_not_utf8(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"type":"arm"}\n{"type":"book","ts":1,"bid":1,"ask":5}\n\xff\xfe\n')
    proc = nanoquote("replay", str(path))
    assert_one_clean_error(proc, str(path), "line 3", "UTF-8")
    assert proc.returncode == 2 and proc.stdout == ""


def test_replay_stdin_not_utf8(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nanoquote.cli", "replay", "-"], capture_output=True,
                          input=b'{"type":"arm"}\n\xe9\n', cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and proc.stdout == b""
    err = proc.stderr.decode()
    assert "Traceback" not in err and err.count("\n") == 1 and "<stdin>" in err and "line 2" in err


def test_replay_toml_not_utf8(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_bytes(b'num_levels = 1\n# caf\xe9\n')
    events = tmp_path / "e.jsonl"
    events.write_text('{"type":"arm"}\n')
    proc = nanoquote("replay", str(events), "--config", str(toml))
    assert_one_clean_error(proc, str(toml), "UTF-8")
    assert proc.returncode == 2 and proc.stdout == ""


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_replay_unreadable_toml_and_events(tmp_path, what):
    bad = tmp_path / "nope" if what == "missing" else tmp_path
    events = tmp_path / "e.jsonl"
    events.write_text('{"type":"arm"}\n')
    assert_one_clean_error(nanoquote("replay", str(events), "--config", str(bad)), str(bad))
    assert_one_clean_error(nanoquote("replay", str(bad)), str(bad))


def test_verilog_output_in_a_missing_directory(tmp_path):
    out = tmp_path / "no" / "such" / "dir" / "q.v"
    proc = nanoquote("verilog", str(out), "--max-levels", "1")
    assert_one_clean_error(proc, str(out), "No such file or directory")
    assert not out.parent.exists()


def test_regs_output_under_a_file(tmp_path):
    (tmp_path / "plain").write_text("")
    out = tmp_path / "plain" / "regs.md"
    proc = nanoquote("regs", "--output", str(out))
    assert_one_clean_error(proc, str(out.parent))


def test_bench_json_under_a_file(tmp_path, monkeypatch, capsys):
    from nanoquote.sim import bench

    (tmp_path / "plain").write_text("")
    out = tmp_path / "plain" / "bench.json"
    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: _fake_bench_result())
    monkeypatch.setattr(bench, "rows", lambda result: [("figure", "value", "how")])
    assert main(["bench", "--json", str(out), "--build-json", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(out.parent) in err and err.strip().count("\n") == 0


def test_bench_json_is_strict(tmp_path, monkeypatch, capsys):
    from nanoquote.sim import bench

    out = tmp_path / "bench.json"
    result = _fake_bench_result()
    result["model"] = {"updates_per_s": float("inf")}
    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: result)
    monkeypatch.setattr(bench, "rows", lambda result: [("figure", "value", "how")])
    assert main(["bench", "--json", str(out), "--build-json", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert "non-finite" in err and "Infinity" not in (out.read_text() if out.exists() else "")


def _fake_bench_result() -> dict:
    return {"machine": {"cpu": "cpu", "cores": 2, "load_average": None, "python": "3.11"},
            "seconds": {"total": 1.0}, "verilator": {"mismatches": 0}, "amaranth": {"mismatches": 0},
            "model": {"updates_per_s": 1}}


# -- a closed pipe ends quietly -------------------------------------------------------------


def run_into_closed_pipe(*argv: str, stdin_path: Path | None = None) -> subprocess.CompletedProcess:
    """Run with stdout a pipe whose reading end is already closed (``| head -0``)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
        try:
            return subprocess.run([sys.executable, "-m", "nanoquote.cli", *argv], stdout=write_end,
                                  stderr=subprocess.PIPE, stdin=stdin, text=True, timeout=120, cwd=ROOT)
        finally:
            if stdin_path:
                stdin.close()
    finally:
        os.close(write_end)


def _events_file(tmp_path: Path, books: int = 50) -> Path:
    path = tmp_path / "e.jsonl"
    lines = [{"type": "arm"}] + [{"type": "book", "ts": i * 100_000_000, "bid": 50000 + 25 * (i % 3),
                                  "ask": 50025 + 25 * (i % 3)} for i in range(books)]
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    return path


@pytest.mark.parametrize("argv", [
    ["demo", "--backend", "golden", "--events", "10", "--out", "{out}"],  # small output: fails in the flush at exit
    ["regs", "--format", "json"],
    ["regs", "--format", "markdown"],
    ["replay", "{events}", "--state"],
])
def test_closed_pipe_exits_quietly(tmp_path, argv):
    argv = [a.replace("{events}", str(_events_file(tmp_path))).replace("{out}", str(tmp_path / "demo")) for a in argv]
    proc = run_into_closed_pipe(*argv)
    assert proc.returncode != 0
    assert proc.stderr == ""


def test_closed_pipe_replay_from_stdin(tmp_path):
    proc = run_into_closed_pipe("replay", "-", "--state", stdin_path=_events_file(tmp_path))
    assert proc.returncode != 0 and proc.stderr == ""


def test_closed_pipe_verilog_to_stdout():
    proc = run_into_closed_pipe("verilog", "-", "--max-levels", "1")
    assert proc.returncode != 0 and proc.stderr == ""


# -- TOML files -----------------------------------------------------------------------------


@pytest.mark.parametrize("text, key", [
    ("num_levels = 1\n[strategy]\nnum_levels = 2\n", "num_levels"),   # top level beside [strategy]
    ("[strategy]\nnum_levels = 2\n[risk]\ncollar_ticks = 5\n", "risk"),  # unknown table
    ("[strategy]\nnum_levels = 2\nlevels = 3\n", "levels"),            # unknown key in [strategy]
    ("levels = 3\n", "levels"),                                          # unknown key at top level
    ("[strategy.extra]\nx = 1\n", "extra"),                              # unknown sub-table
])
def test_toml_unknown_keys_and_tables_name_file_and_key(tmp_path, text, key):
    from nanoquote.host.strategy.config import ConfigError, MarketMakerConfig

    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        MarketMakerConfig.from_toml(path)
    assert str(path) in str(exc.value) and repr(key) in str(exc.value)


def test_toml_not_utf8_is_a_config_error(tmp_path):
    from nanoquote.host.strategy.config import ConfigError, MarketMakerConfig

    path = tmp_path / "c.toml"
    path.write_bytes(b"num_levels = 2 # \xff\n")
    with pytest.raises(ConfigError, match="cannot read config file.*UTF-8"):
        MarketMakerConfig.from_toml(path)


def test_toml_strategy_table_still_works(tmp_path):
    from nanoquote.host.strategy.config import MarketMakerConfig

    path = tmp_path / "c.toml"
    path.write_text("[strategy]\nnum_levels = 2\n")
    assert MarketMakerConfig.from_toml(path).num_levels == 2
    path.write_text("num_levels = 4\n")
    assert MarketMakerConfig.from_toml(path).num_levels == 4


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("argv", [["demo", "--backend", "golden", "--events", "10", "--out", "{out}"], ["regs"],
                                  ["replay", "{events}"]])
def test_unwritable_stdout_is_one_line(tmp_path, argv):
    argv = [a.replace("{events}", str(_events_file(tmp_path))).replace("{out}", str(tmp_path / "demo")) for a in argv]
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "nanoquote.cli", *argv], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120, cwd=ROOT)
    assert_one_clean_error(proc, "<stdout>", "No space left on device")


def test_a_backend_that_does_not_start_is_one_line(tmp_path, capsys, monkeypatch):
    """A failed simulator build or launch names the backend; no traceback."""
    import nanoquote.sim.servers.amaranth_server as amaranth_server

    from nanoquote.cli import main

    def failing_start(**_kwargs):
        raise RuntimeError("Verilator build of nanoquote_top failed")

    monkeypatch.setattr(amaranth_server, "start_amaranth_server", failing_start)
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "arm"}\n')
    assert main(["replay", str(events), "--backend", "amaranth"]) == 2
    err = capsys.readouterr().err
    assert "amaranth backend" in err and "did not start" in err and err.count("\n") == 1
