"""The layout documents name what the tree holds, and nothing points outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hw", "sim", "host")


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if p.name != "__init__.py")


def test_architecture_names_every_module():
    text = (ROOT / "docs" / "architecture.md").read_text()
    missing = [str(p.relative_to(ROOT)) for p in _modules() if not re.search(rf"\b{p.stem}\b", text)]
    assert not missing, f"docs/architecture.md does not name {missing}"


def test_readme_layout_lists_every_package_folder():
    text = (ROOT / "README.md").read_text()
    folders = sorted({p.parent.relative_to(ROOT).as_posix() for p in _modules()})
    missing = [f for f in folders if f"`{f}/`" not in text]
    assert not missing, f"README.md's layout table lacks {missing}"


def test_nothing_refers_outside_the_repository():
    tracked = subprocess.run(["git", "ls-files", "*.py", "*.md", "*.toml", "Makefile", ".ci/run"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    outside = re.compile(r"\.\./shared|SPEC\.md|TOOLCHAIN\.md|DESIGN\.md|\bSPEC \d")
    hits = [f"{name}:{n}" for name in tracked for n, line in enumerate((ROOT / name).read_text().splitlines(), 1)
            if outside.search(line) and name != "tests/test_docs_match_tree.py"]
    assert not hits, f"references outside the repository: {hits}"
