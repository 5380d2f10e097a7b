"""``nanoquote mutate``'s own logic: the catalogue applies to today's sources, a mutant in a copy
is what the copy imports (and the checkout is untouched), and the score decides the exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from nanoquote.sim import mutation
from nanoquote.sim.mutation import (
    CATALOGUE,
    TARGET_FILES,
    Mutant,
    ProbeError,
    Result,
    RunOutcome,
    StaleMutant,
    Workspace,
    apply_mutant,
    exit_status,
    select,
    stale_mutants,
    summarize,
)

from nanoquote.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_every_catalogue_entry_matches_the_sources_exactly_once():
    assert stale_mutants(ROOT) == {}
    names = [m.name for m in CATALOGUE]
    assert len(names) == len(set(names)) >= 40
    for path in TARGET_FILES:
        assert sum(m.path == path for m in CATALOGUE) >= 3, path
    for m in CATALOGUE:
        assert m.path in TARGET_FILES and m.find != m.replace and m.description, m.name
        assert not m.equivalent or len(m.equivalent) > 40, f"{m.name}: an equivalence needs its argument"


def test_a_snippet_that_does_not_occur_exactly_once_is_stale(tmp_path):
    m = Mutant("x:y", "hw/gateware/arith.py", "a + b", "a - b", "sum")
    assert apply_mutant("c = a + b\n", m) == "c = a - b\n"
    for text in ("c = a - b\n", "c = a + b\nd = a + b\n"):
        with pytest.raises(StaleMutant, match="x:y"):
            apply_mutant(text, m)
    target = tmp_path / m.path
    target.parent.mkdir(parents=True)
    target.write_text("nothing to mutate\n")
    assert list(stale_mutants(tmp_path, [m])) == ["x:y"]


def test_select_by_glob_or_substring():
    assert select([]) == list(CATALOGUE)
    assert {m.path for m in select(["arith:*"])} == {"hw/gateware/arith.py"}
    assert [m.name for m in select(["odd-chunk"])] == ["arith:odd-chunk-dropped"]


def _probe(ws: Workspace, env: dict[str, str]) -> RunOutcome:
    """What a run in ``ws`` imports, as the plugin records it (without running pytest)."""
    probe = Path(env[mutation._PROBE_ENV])
    cmd = [sys.executable, "-c", "from nanoquote.sim import mutation; mutation.pytest_configure(None)"]
    proc = subprocess.run(cmd, cwd=ws.src, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return RunOutcome("survived", 0.0, 0, "", "", json.loads(probe.read_text()))


def test_a_mutant_in_a_copy_is_what_the_copy_imports(tmp_path):
    mutant = next(m for m in CATALOGUE if m.name == "arith:odd-chunk-dropped")
    checkout_text = (ROOT / mutant.path).read_text()
    ws = Workspace(ROOT, parent=tmp_path)
    try:
        text = ws.apply(mutant)
        assert mutant.replace in (ws.src / mutant.path).read_text()
        env = ws.env(tmp_path / "probe.json")
        outcome = _probe(ws, env)
        ws.check_probe(outcome, {mutant.path: text})  # imported from the copy, mutated
        assert outcome.probe["nanoquote.hw.gateware.arith"]["file"] == str((ws.src / mutant.path).resolve())
        with pytest.raises(ProbeError, match="content is not the mutant's"):
            ws.check_probe(outcome, {mutant.path: checkout_text})
        # without the package root the copy's tree is not what is imported: the probe says so
        plain = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
        with pytest.raises(ProbeError, match="not from the copy"):
            ws.check_probe(_probe(ws, plain))
        ws.restore()
        assert (ws.src / mutant.path).read_text() == checkout_text
    finally:
        ws.remove()
    assert (ROOT / mutant.path).read_text() == checkout_text  # the checkout is never touched
    assert not ws.dir.exists()


def _result(name: str, verdict: str, equivalent: str = "") -> Result:
    return Result(name, "hw/gateware/arith.py", "", verdict, equivalent=equivalent)


def test_score_counts_timeouts_as_killed_and_leaves_equivalents_out():
    results = [_result(f"k{i}", "killed") for i in range(17)] + [
        _result("t", "timeout"), _result("s1", "survived"), _result("e", "survived", "because"),
        _result("old", "stale")]
    summary = summarize(results)
    assert (summary.tried, summary.killed, summary.timeout, summary.survived) == (20, 17, 1, 1)
    assert (summary.equivalent, summary.stale, summary.survivors) == (1, 1, ["s1"])
    assert summary.score == pytest.approx(18 / 19)
    assert exit_status(summary, 0.94) == 1  # a stale entry fails the run whatever the score
    fresh = summarize(results[:-1])
    assert exit_status(fresh, 0.94) == 0 and exit_status(fresh, 0.95) == 1
    contradicted = summarize([*results[:-1], _result("e2", "killed", "an argument shown wrong")])
    assert contradicted.equivalent_killed == ["e2"] and exit_status(contradicted, 0.5) == 1
    assert exit_status(summarize([*results[:-1], _result("x", "error")]), 0.5) == 1


def test_list_names_every_mutant(capsys):
    assert main(["mutate", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(m.name in out for m in CATALOGUE)
    assert f"{len(CATALOGUE)} mutants" in out and "0 stale" in out


@pytest.mark.slow
def test_one_mutant_killed_end_to_end(tmp_path, capsys):
    """The whole command on one mutant and one test: self-check, baseline, verdict, report."""
    report = tmp_path / "report.json"
    test = "tests/hw/gateware/test_pipeline.py::test_one_update_per_clock_and_fixed_latency"
    assert main(["mutate", "--only", "arith:table-width", "--tests", test, "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    assert [(m["name"], m["verdict"]) for m in data["mutants"]] == [("arith:table-width", "killed")]
    assert data["summary"]["score"] == 1.0
    assert "self-check" in capsys.readouterr().out
